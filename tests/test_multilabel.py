"""Multi-label targets: per-label weights, the per-label BCE, the estimator in
scikit-learn's model selection, and the errors for targets it cannot take."""

import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import fast, read_only
from sklearn.datasets import make_multilabel_classification
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skweighted import (
    EffectiveNumber,
    PerBatch,
    WeightedCrossEntropyLoss,
    WeightedNeuralNetClassifier,
)
from skweighted.class_weight import resolve_label_weight
from skweighted.losses import MultiLabelBCELoss

X, Y = make_multilabel_classification(
    n_samples=120, n_features=6, n_classes=4, n_labels=1, random_state=0
)
X, Y = read_only(X.astype(np.float32)), read_only(Y)  # fit must not modify them
#: The default batch of 128: one batch an epoch.
MULTILABEL = fast(max_epochs=8, batch_size=128, module__hidden_units=(16,))


def _hand_pos_weight(Y, formula):
    """pos_weight of each label from its own counts, one label at a time."""
    out = []
    for column in np.asarray(Y).T:
        n_pos = int(sum(v == 1 for v in column))
        n_neg = len(column) - n_pos
        out.append(formula(n_neg, n_pos))
    return np.array(out)


FORMULAS = {
    "balanced": lambda neg, pos: neg / pos,
    "inverse": lambda neg, pos: neg / pos,
    "inverse_sqrt": lambda neg, pos: (neg / pos) ** 0.5,
    EffectiveNumber(0.99): lambda neg, pos: (1 - 0.99**neg) / (1 - 0.99**pos),
}


# -- the per-label weights ----------------------------------------------------------


@pytest.mark.parametrize("spec", list(FORMULAS), ids=str)
def test_scheme_weights_equal_the_hand_formula(spec):
    weights = resolve_label_weight(spec, Y)
    assert weights.shape == (4, 2)
    np.testing.assert_array_equal(weights[:, 0], 1.0)
    np.testing.assert_allclose(
        weights[:, 1], _hand_pos_weight(Y, FORMULAS[spec]), rtol=1e-12
    )


def test_dicts_and_callables_give_both_weights_per_label():
    spec = [{0: 0.5, 1: 2.0}, {1: 3.0}, {}, {0: 2.0}]
    expected = [[0.5, 2.0], [1.0, 3.0], [1.0, 1.0], [2.0, 1.0]]
    np.testing.assert_array_equal(resolve_label_weight(spec, Y), expected)
    np.testing.assert_array_equal(
        resolve_label_weight(lambda y: spec[: y.shape[1]], Y), expected
    )
    np.testing.assert_array_equal(resolve_label_weight(None, Y), np.ones((4, 2)))


def test_each_fold_gets_weights_from_its_own_y():
    clf = WeightedNeuralNetClassifier(class_weight="balanced", **MULTILABEL)
    for train, _ in KFold(3, shuffle=True, random_state=0).split(X):
        fitted = clf.fit(X[train], Y[train])
        expected = _hand_pos_weight(Y[train], FORMULAS["balanced"])
        np.testing.assert_allclose(fitted.class_weight_[:, 1], expected, rtol=1e-12)
        crit = fitted.net_.criterion_
        assert isinstance(crit, MultiLabelBCELoss)
        np.testing.assert_allclose(crit.pos_weight.numpy(), expected, rtol=1e-6)


def test_a_label_without_positives_weighs_one_and_warns():
    Yf = Y.copy()
    Yf[:, 2] = 0  # label 2 never occurs in this "fold"
    Yf[:, 3] = 1  # label 3 always does
    with pytest.warns(
        UserWarning, match=r"labels \[2\] have no positive.*labels \[3\]"
    ):
        weights = resolve_label_weight("balanced", Yf)
    np.testing.assert_array_equal(weights[2:], 1.0)
    np.testing.assert_allclose(
        weights[:2, 1], _hand_pos_weight(Yf[:, :2], FORMULAS["balanced"])
    )
    with pytest.warns(UserWarning, match=r"labels \[2\] have no positive"):
        clf = WeightedNeuralNetClassifier(class_weight="balanced", **MULTILABEL).fit(
            X, Yf
        )
    np.testing.assert_array_equal(clf.class_weight_[2], [1.0, 1.0])
    # the network only ever saw label 2 absent and label 3 present
    proba = clf.predict_proba(X)
    assert proba[:, 2].max() < 0.5 < proba[:, 3].min()
    # an explicit weight is defined whatever the fold holds: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_label_weight([{1: 2.0}] * 4, Yf)


# -- the loss --------------------------------------------------------------------


def _hand_loss(z, y, W, s=None, normalization="mean"):
    """Per-label weighted BCE written out entry by entry."""
    total, weight_sum = 0.0, 0.0
    for i in range(len(z)):
        for j in range(len(z[i])):
            p = 1 / (1 + np.exp(-z[i][j]))
            ell = -np.log(p) if y[i][j] == 1 else -np.log(1 - p)
            v = W[j][y[i][j]] * (1.0 if s is None else s[i])
            total += v * ell
            weight_sum += v
    n = len(z) * len(z[0])
    return total / (n if normalization == "mean" else weight_sum)


Z = [[0.5, -1.0, 2.0], [-0.3, 0.8, -2.0], [1.5, 0.0, -0.7], [-2.2, 1.1, 0.4]]
T = [[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0]]
W = [[0.5, 2.0], [1.0, 3.0], [2.0, 1.0]]
S = [1.0, 0.0, 2.5, 0.5]


@pytest.mark.parametrize("normalization", ["mean", "weighted_mean"])
@pytest.mark.parametrize("s", [None, S])
def test_loss_equals_the_hand_written_weighted_bce(normalization, s):
    loss = MultiLabelBCELoss(weight=W, normalization=normalization)
    got = loss(
        torch.tensor(Z, dtype=torch.float64),
        torch.tensor(T),
        None if s is None else torch.tensor(s, dtype=torch.float64),
    )
    assert float(got) == pytest.approx(_hand_loss(Z, T, W, s, normalization), rel=1e-12)


def test_pos_weight_form_equals_torch_bce_with_logits():
    p = [4.0, 1.0, 9.0]
    z, y = torch.tensor(Z), torch.tensor(T)
    ours = MultiLabelBCELoss(pos_weight=p)(z, y)
    theirs = F.binary_cross_entropy_with_logits(
        z, y.float(), pos_weight=torch.tensor(p)
    )
    torch.testing.assert_close(ours, theirs)
    assert MultiLabelBCELoss()(z, y) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(z, y.float())), rel=1e-6
    )


def test_the_fitted_net_uses_its_weights_and_sample_weights():
    sw = np.linspace(0.5, 2.0, len(X)).astype(np.float32)
    clf = WeightedNeuralNetClassifier(class_weight="balanced", **MULTILABEL)
    clf.fit(X, Y, sample_weight=sw)
    net = clf.net_
    rows = slice(0, 4)
    with torch.no_grad():
        z = net.infer(torch.tensor(X[rows]))
        got = net.get_loss(
            z,
            torch.tensor(Y[rows]),
            X={
                "X": torch.tensor(X[rows]),
                "sample_weight": torch.from_numpy(sw[rows]),
            },
        )
    expected = _hand_loss(
        z.double().numpy(), Y[rows], clf.class_weight_, sw[rows].astype(float)
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_loss_bad_input():
    with pytest.raises(ValueError, match="not both"):
        MultiLabelBCELoss(weight=W, pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="normalization"):
        MultiLabelBCELoss(normalization="sum")


# -- the estimator -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    return WeightedNeuralNetClassifier(class_weight="balanced", **MULTILABEL).fit(X, Y)


def test_predict_returns_the_indicator_format(fitted):
    pred = fitted.predict(X)
    assert pred.shape == Y.shape and pred.dtype == Y.dtype
    assert set(np.unique(pred)) <= {0, 1}
    proba = fitted.predict_proba(X)
    assert proba.shape == Y.shape and proba.dtype == np.float64
    assert ((proba > 0) & (proba < 1)).all()
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert fitted.classes_.tolist() == [0, 1, 2, 3]
    assert fitted.net_.module_(torch.tensor(X[:2])).shape == (2, 4)
    # subset accuracy, as scikit-learn's classifiers score multi-label data
    assert fitted.score(X, Y) == pytest.approx(np.mean((pred == Y).all(axis=1)))
    # boolean indicators come back as booleans
    clf = WeightedNeuralNetClassifier(max_epochs=1).fit(X, Y.astype(bool))
    assert clf.predict(X[:3]).dtype == bool


def test_the_weights_change_what_is_learned(fitted):
    plain = WeightedNeuralNetClassifier(**MULTILABEL).fit(X, Y)
    # up-weighting the positives predicts more positives
    assert fitted.predict(X).sum() > plain.predict(X).sum()


def test_warm_start_pickle_and_skops(fitted):
    sio = pytest.importorskip("skops.io")
    from skweighted.persistence import SKOPS_TRUSTED_TYPES

    loaded = sio.loads(sio.dumps(fitted), trusted=SKOPS_TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    clf = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))
    clf.set_params(warm_start=True, max_epochs=2).fit(X[:60], Y[:60])
    assert len(clf.net_.history) == MULTILABEL["max_epochs"] + 2
    np.testing.assert_allclose(
        clf.class_weight_[:, 1], _hand_pos_weight(Y[:60], FORMULAS["balanced"])
    )
    with pytest.raises(
        ValueError, match="warm_start=True.*multi-label y.*single-label"
    ):
        clf.fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="predicts 4 labels, but y has 3 columns"):
        clf.fit(X, Y[:, :3])


def test_pipeline_cross_val_score_and_grid_search():
    pipe = make_pipeline(
        StandardScaler(),
        WeightedNeuralNetClassifier(class_weight="balanced", **MULTILABEL),
    )
    scores = cross_val_score(pipe, X, Y, cv=3, scoring="f1_macro")
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    grid = GridSearchCV(
        WeightedNeuralNetClassifier(**MULTILABEL),
        {"class_weight": [None, "balanced", [{1: 2.0}] * 4]},
        cv=2,
        scoring="f1_macro",
        n_jobs=2,
    ).fit(X, Y)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.predict(X).shape == Y.shape


@pytest.mark.parametrize(
    "y, kwargs, match",
    [
        # formats that do not mix with the indicator matrix
        ([[0, 1]] * 60 + [[1]] * 60, {}, "legacy multi-label"),
        (np.where(np.arange(4) == 3, 2 * Y, Y), {}, "'multiclass-multioutput'"),
        (2 * Y, {}, r"0/1 indicator matrix, but it holds the values \[0, 2\]"),
        (Y * 0.5, {}, "'continuous-multioutput'"),
        (np.where(Y == 1, "yes", "no"), {}, "not one"),
        # weights that do not fit the labels
        (Y, {"class_weight": {0: 1.0, 1: 2.0}}, "list of 4 dicts"),
        (Y, {"class_weight": [{1: 2.0}] * 3}, "3 dicts but y has 4 labels"),
        (
            Y,
            {"class_weight": [{1: 2.0, 2: 1.0}] * 4},
            r"keys that are not classes: \[2\]",
        ),
        (Y, {"class_weight": [{1: -1.0}] * 4}, "negative"),
        (Y, {"class_weight": PerBatch()}, "not supported for a multi-label y"),
        (Y, {"sampler": "balanced"}, "sampler='balanced' draws rows by their class"),
        (Y, {"classes": [0, 1, 2, 3]}, "classes= lists the labels"),
        (Y, {"criterion": WeightedCrossEntropyLoss}, "single-label loss"),
        (Y[:, 0], {"criterion": MultiLabelBCELoss}, "is a multi-label loss"),
    ],
)
def test_bad_targets_and_specs(y, kwargs, match):
    clf = WeightedNeuralNetClassifier(max_epochs=1, **kwargs)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")

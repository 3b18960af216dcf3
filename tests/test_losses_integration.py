"""Every loss trained through WeightedNeuralNetClassifier; decision rules at
predict time; scale invariance of the class weights in training; GridSearchCV."""

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import fast
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skweighted import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    EffectiveNumber,
    FocalLoss,
    InversePower,
    LogitAdjustedLoss,
    RealWorldWeightCrossEntropyLoss,
    WeightedCrossEntropyLoss,
    WeightedNeuralNetClassifier,
)

FOUR_EPOCHS = fast(max_epochs=4)
SMALL = dict(module__hidden_units=(16,))


def _counts(y, classes):
    c = Counter(y.tolist())
    return np.array([c[k] for k in classes], dtype=np.float32)


@pytest.mark.parametrize(
    "criterion, params, data",
    [
        (BinaryCrossEntropyLoss, {}, "binary"),
        (BinaryFocalLoss, {"criterion__gamma": 1.0}, "binary"),
        (FocalLoss, {"criterion__gamma": 2.0}, "three"),
        (RealWorldWeightCrossEntropyLoss, {"criterion__cost_matrix": None}, "three"),
        (LogitAdjustedLoss, {"criterion__tau": 1.0}, "three"),
        (WeightedCrossEntropyLoss, {"criterion__normalization": "mean"}, "three"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_each_loss_trains_through_the_classifier(criterion, params, data, request):
    X, y = request.getfixturevalue(data)
    classes = np.unique(y)
    if "criterion__cost_matrix" in params:  # a cost matrix aligned with classes_
        params = {"criterion__cost_matrix": [[0, 1, 1], [2, 0, 1], [8, 4, 0]]}
    sw = np.linspace(0.5, 1.5, len(y))
    clf = WeightedNeuralNetClassifier(
        criterion=criterion, class_weight="balanced", **FOUR_EPOCHS, **SMALL, **params
    ).fit(X, y, sample_weight=sw)
    crit = clf.net_.criterion_
    assert isinstance(crit, criterion)
    np.testing.assert_allclose(crit.weight.numpy(), clf.class_weight_, rtol=1e-6)
    losses = [e["train_loss"] for e in clf.net_.history]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]

    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(classes))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    out = clf.net_.module_.layers[-1].out_features
    assert out == (1 if criterion in (BinaryCrossEntropyLoss, BinaryFocalLoss) else 3)
    decision = getattr(crit, "decision", None)
    expected = proba.argmax(axis=1) if decision is None else decision(proba)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[expected])
    if decision is None:  # better than chance (a cost rule optimises cost)
        assert balanced_accuracy_score(y, clf.predict(X)) > 0.5
    if criterion is LogitAdjustedLoss:
        np.testing.assert_array_equal(crit.class_counts.numpy(), _counts(y, classes))


def test_cost_sensitive_predict_uses_expected_cost(binary):
    X, y = binary  # classes_ = ["fraud", "ok"]: a missed fraud costs 20
    cost = [[0.0, 20.0], [1.0, 0.0]]
    clf = WeightedNeuralNetClassifier(
        criterion=RealWorldWeightCrossEntropyLoss,
        criterion__cost_matrix=cost,
        **FOUR_EPOCHS,
        **SMALL,
    ).fit(X, y)
    proba = clf.predict_proba(X)
    by_hand = np.where(proba[:, 0] * 20.0 > proba[:, 1] * 1.0, "fraud", "ok")
    np.testing.assert_array_equal(clf.predict(X), by_hand)
    argmax = clf.classes_[proba.argmax(axis=1)]
    assert (clf.predict(X) == "fraud").sum() > (argmax == "fraud").sum()


def test_logit_adjustment_gets_the_prior_of_each_fit(three):
    X, y = three
    posthoc = WeightedNeuralNetClassifier(
        criterion=LogitAdjustedLoss,
        criterion__tau=0.0,
        criterion__posthoc_tau=1.0,
        **FOUR_EPOCHS,
        **SMALL,
    ).fit(X, y)
    counts = _counts(y, posthoc.classes_)
    crit = posthoc.net_.criterion_
    np.testing.assert_array_equal(crit.class_counts.numpy(), counts)
    proba = posthoc.predict_proba(X)
    adjusted = np.log(proba) - np.log(counts / counts.sum())
    np.testing.assert_array_equal(
        posthoc.predict(X), posthoc.classes_[adjusted.argmax(axis=1)]
    )
    # an instance with no counts is filled too; counts the user set are kept
    inst = WeightedNeuralNetClassifier(
        criterion=LogitAdjustedLoss(tau=0.5), max_epochs=1, random_state=0
    ).fit(X[:150], y[:150])
    np.testing.assert_array_equal(
        inst.net_.criterion_.class_counts.numpy(), _counts(y[:150], inst.classes_)
    )
    assert inst.net_.criterion_.tau == 0.5
    user = WeightedNeuralNetClassifier(
        criterion=LogitAdjustedLoss,
        criterion__class_counts=[1.0, 1.0, 1.0],
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_array_equal(user.net_.criterion_.class_counts.numpy(), 1.0)
    warm = WeightedNeuralNetClassifier(
        criterion=LogitAdjustedLoss, warm_start=True, max_epochs=1, random_state=0
    )
    warm.fit(X, y).fit(X[:100], y[:100])  # the prior follows the y of each fit
    np.testing.assert_array_equal(
        warm.net_.criterion_.class_counts.numpy(), _counts(y[:100], warm.classes_)
    )


def test_bad_loss_setups_fail_before_training(three):
    X, y = three
    with pytest.raises(ValueError, match="binary loss"):
        WeightedNeuralNetClassifier(criterion=BinaryFocalLoss, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(2, 2\) but there are 3 classes"):
        WeightedNeuralNetClassifier(
            criterion=RealWorldWeightCrossEntropyLoss,
            criterion__fn_cost=5.0,
            criterion__fp_cost=1.0,
            max_epochs=1,
        ).fit(X, y)


# -- only the ratios of the class weights matter, in training too -------------
def _params(clf):
    return torch.cat([p.detach().reshape(-1) for p in clf.net_.module_.parameters()])


def test_balanced_inverse_and_normalised_inverse_train_identically(three):
    X, y = three
    fits = {
        name: WeightedNeuralNetClassifier(class_weight=cw, **FOUR_EPOCHS, **SMALL).fit(
            X, y
        )
        for name, cw in [
            ("balanced", "balanced"),
            ("inverse", "inverse"),
            ("normalised", InversePower(normalize=True)),
        ]
    }
    ref = _params(fits["balanced"])
    for name in ("inverse", "normalised"):
        torch.testing.assert_close(_params(fits[name]), ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(
            fits[name].predict(X), fits["balanced"].predict(X)
        )
    # The tutorials' sum(w*l)/N is not scale-invariant: with plain SGD the
    # weights' scale is a learning-rate factor, and the runs differ.
    sgd = dict(FOUR_EPOCHS, optimizer=torch.optim.SGD, criterion__normalization="mean")
    a = WeightedNeuralNetClassifier(class_weight="balanced", **sgd, **SMALL).fit(X, y)
    b = WeightedNeuralNetClassifier(class_weight="inverse", **sgd, **SMALL).fit(X, y)
    assert not torch.allclose(_params(a), _params(b), rtol=1e-2, atol=1e-3)


# -- GridSearchCV over schemes and criteria ------------------------------------
def test_grid_search_over_schemes_and_criteria(binary):
    X, y = binary
    grid = {
        "class_weight": [
            None,
            "balanced",
            EffectiveNumber(0.99),
            EffectiveNumber(0.9999),
        ],
        "criterion": [WeightedCrossEntropyLoss(), FocalLoss(gamma=2.0)],
    }
    search = GridSearchCV(
        WeightedNeuralNetClassifier(
            max_epochs=2, batch_size=64, random_state=0, **SMALL
        ),
        grid,
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        scoring="balanced_accuracy",
    ).fit(X, y)
    shown = {str(v) for v in search.cv_results_["param_class_weight"]}
    assert shown == {
        "None",
        "balanced",
        "EffectiveNumber(beta=0.99)",
        "EffectiveNumber(beta=0.9999)",
    }
    criteria = {str(v) for v in search.cv_results_["param_criterion"]}
    assert criteria == {
        "WeightedCrossEntropyLoss(normalization='weighted_mean')",
        "FocalLoss(gamma=2.0, normalization='weighted_mean')",
    }
    assert len(search.cv_results_["mean_test_score"]) == 8
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert isinstance(best.net_.criterion_, type(search.best_params_["criterion"]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    "criterion, params",
    [
        (BinaryFocalLoss, {}),
        (RealWorldWeightCrossEntropyLoss, {"criterion__cost_matrix": [[0, 9], [1, 0]]}),
        (LogitAdjustedLoss, {"criterion__posthoc_tau": 1.0}),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_loss_buffers_live_on_the_gpu(binary, criterion, params):
    X, y = binary
    clf = WeightedNeuralNetClassifier(
        criterion=criterion,
        class_weight="balanced",
        device="cuda",
        **FOUR_EPOCHS,
        **SMALL,
        **params,
    ).fit(X, y)
    for name, buffer in clf.net_.criterion_.named_buffers():
        assert buffer.device.type == "cuda", name
    proba = clf.predict_proba(X)
    decision = getattr(clf.net_.criterion_, "decision", None)
    expected = proba.argmax(axis=1) if decision is None else decision(proba)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[expected])

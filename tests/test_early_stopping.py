"""Early stopping: parameters, the split, the rule, the best weights, the
resampler that never touches validation rows, skorch's scorers on the net."""

import warnings

import numpy as np
import pytest
import torch
from conftest import FAST
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from skorch.callbacks import EarlyStopping, EpochScoring
from skorch.dataset import ValidSplit
from skorch.helper import SliceDataset

from skweighted import Deferred, FocalLoss, PerBatch, WeightedNeuralNetClassifier
from skweighted._classifier import _seed
from skweighted._early_stopping import validation_split
from skweighted._fit_rows import fit_rows
from skweighted.losses import BinaryCrossEntropyLoss, LogitAdjustedLoss

#: stops within a few epochs on the small fixtures
ES = dict(
    FAST,
    max_epochs=200,
    lr=0.05,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=2,
)


def _codes(y):
    return np.unique(y, return_inverse=True)[1]


@pytest.fixture(scope="module")
def stopped(three):
    X, y = three
    return WeightedNeuralNetClassifier(class_weight="balanced", **ES).fit(X, y)


def test_stops_and_reports_its_curves(stopped):
    clf = stopped
    assert clf.n_iter_ < 200
    assert clf.n_iter_ == len(clf.net_.history) == len(clf.loss_curve_)
    # MLPClassifier's rule: n_iter_no_change + 1 epochs without improvement
    assert clf.n_iter_ - clf.best_iteration_ == ES["n_iter_no_change"] + 1
    scores = clf.validation_scores_
    assert len(scores) == clf.n_iter_
    assert clf.best_validation_score_ == max(scores)
    assert scores[clf.best_iteration_ - 1] == clf.best_validation_score_
    # scoring='loss': the score is the negative class-weighted validation loss
    np.testing.assert_allclose(
        scores, [-h["valid_loss"] for h in clf.net_.history], rtol=1e-6
    )
    assert clf.net_.train_split is None  # the split belonged to the fit


def test_best_epoch_weights_are_restored(three, stopped):
    """The stopped model predicts exactly as a fit of ``best_iteration_``
    epochs on its training rows alone."""
    X, y = three
    train, _ = validation_split(_codes(y), ES["validation_fraction"], _seed(0))
    params = dict(ES, early_stopping=False, max_epochs=stopped.best_iteration_)
    again = WeightedNeuralNetClassifier(class_weight="balanced", **params)
    again.fit(X[train], y[train])
    np.testing.assert_array_equal(again.predict_proba(X), stopped.predict_proba(X))
    np.testing.assert_array_equal(again.class_weight_, stopped.class_weight_)


def test_split_is_stratified_seeded_and_disjoint(three):
    _, y = three
    codes = _codes(y)
    train, valid = validation_split(codes, 0.2, 7)
    assert len(np.intersect1d(train, valid)) == 0
    assert len(train) + len(valid) == len(y)
    expected = np.bincount(codes) * 0.2
    assert np.all(np.abs(np.bincount(codes[valid]) - expected) <= 1)
    np.testing.assert_array_equal(validation_split(codes, 0.2, 7)[1], valid)
    assert not np.array_equal(validation_split(codes, 0.2, 8)[1], valid)


def test_multilabel_split_by_label_sets():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < [0.5, 0.2, 0.05]).astype(int)
    train, valid = validation_split(y, 0.25, 0)
    assert len(np.intersect1d(train, valid)) == 0 and len(valid) == 50
    X = rng.normal(size=(200, 4)).astype(np.float32)
    clf = WeightedNeuralNetClassifier(**ES).fit(X, y)
    assert clf.predict(X).shape == y.shape and clf.validation_scores_


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "average_precision"])
def test_scorer_names(binary, scoring):
    X, y = binary
    clf = WeightedNeuralNetClassifier(scoring=scoring, **ES).fit(X, y)
    assert all(0 <= s <= 1 for s in clf.validation_scores_)
    history = clf.net_.history[:, "valid_score"]
    assert history == clf.validation_scores_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"n_iter_no_change": -1}, "n_iter_no_change"),
        ({"early_stopping": "yes"}, "early_stopping"),
        ({"train_split": ValidSplit(0.2)}, "train_split"),
        ({"scoring": "no_such_metric"}, "no_such_metric"),
    ],
)
def test_bad_parameters_fail_before_training(binary, params, match, monkeypatch):
    X, y = binary
    monkeypatch.setattr("skweighted._net.train", lambda *a, **k: pytest.fail("trained"))
    clf = WeightedNeuralNetClassifier(**{**ES, **params})
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_a_class_too_rare_to_split(binary):
    X, y = binary
    rare = y.copy()
    rare[0] = "once"
    with pytest.raises(ValueError, match=r"\['once'\] have only 1"):
        WeightedNeuralNetClassifier(**ES).fit(X, rare)
    big = np.repeat(X, 5, axis=0), np.repeat(y, 5)
    big[1][0] = "once"  # 'auto' on 1,200 rows: warns, trains to max_epochs
    params = dict(ES, early_stopping="auto", max_epochs=2)
    with pytest.warns(UserWarning, match="without early stopping"):
        clf = WeightedNeuralNetClassifier(**params).fit(*big)
    assert clf.n_iter_ == 2 and clf.validation_scores_ is None


def test_auto_follows_the_number_of_samples(binary):
    X, y = binary
    params = dict(ES, early_stopping="auto", max_epochs=3)
    small = WeightedNeuralNetClassifier(**params).fit(X, y)
    assert small.validation_scores_ is None
    big = WeightedNeuralNetClassifier(**params).fit(
        np.repeat(X, 5, axis=0), np.repeat(y, 5)
    )
    assert big.validation_scores_ is not None


def test_partial_fit_and_warm_start(binary):
    X, y = binary
    with pytest.raises(ValueError, match="partial_fit does not stop early"):
        WeightedNeuralNetClassifier(**ES).partial_fit(X, y, classes=["fraud", "ok"])
    auto = WeightedNeuralNetClassifier(**{**ES, "early_stopping": "auto"})
    auto.partial_fit(X, y, classes=["fraud", "ok"])
    assert auto.n_iter_ == 1 and auto.validation_scores_ is None
    warm = WeightedNeuralNetClassifier(warm_start=True, **ES).fit(X, y)
    first = warm.n_iter_
    warm.fit(X, y)
    assert warm.n_iter_ > first  # epochs count on across warm fits
    assert first < warm.best_iteration_ <= warm.n_iter_
    assert len(warm.validation_scores_) == warm.n_iter_ - first


def test_caller_data_is_not_modified(three):
    X, y = three
    sw = np.linspace(0.5, 2, len(y))
    sw.flags.writeable = False
    before = X.copy(), y.copy(), sw.copy()
    WeightedNeuralNetClassifier(resampler=RandomOverSampler(), **ES).fit(
        X, y, sample_weight=sw
    )
    for a, b in zip((X, y, sw), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("form", ["array", "dict", "dataset"])
def test_every_input_form(three, form):
    X, y = three
    images = X.reshape(len(X), 1, 2, 3)
    data = {
        "array": images,
        "dict": {"X": X},
        "dataset": SliceDataset(torch.utils.data.TensorDataset(torch.tensor(X))),
    }[form]
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    if form == "dict":

        class DictNet(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(6, 3)

            def forward(self, X):
                return self.linear(X)

        module = DictNet()
    clf = WeightedNeuralNetClassifier(module, **ES).fit(data, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert set(clf.predict(data)) <= set(y)


# -- validation rows are never resampled ----------------------------------------
@pytest.mark.parametrize(
    "sampler", [RandomOverSampler(random_state=0), SMOTE(random_state=0)]
)
def test_validation_rows_are_never_resampled(three, sampler):
    X, y = three
    codes, classes = _codes(y), np.unique(y)
    train, valid = validation_split(codes, 0.2, 0)
    rows = fit_rows(
        X, codes, None, train=train, valid=valid, resampler=sampler, seed=0,
        classes=classes,
    )  # fmt: skip
    X_valid, y_valid = rows.X[rows.valid], rows.y[rows.valid]
    # the validation rows are the original rows, at the original class ratio
    np.testing.assert_array_equal(X_valid, X[valid])
    np.testing.assert_array_equal(y_valid, codes[valid])
    # the training part was resampled: balanced classes
    assert len(set(np.bincount(rows.y[rows.train]))) == 1
    X_train = rows.X[rows.train]
    # no validation row is a copy of a training row ...
    same = (X_valid[:, None, :] == X_train[None, :, :]).all(-1)
    assert not same.any()
    # ... nor a neighbour a synthetic row was made from: the sampler saw the
    # training rows alone (the same sampler on them gives the same rows)
    X_alone, y_alone = sampler.fit_resample(X[train], y[train])
    np.testing.assert_array_equal(X_train, X_alone)
    np.testing.assert_array_equal(classes[rows.y[rows.train]], y_alone)


def test_resampler_in_a_pipeline_weights_follow_the_resampled_rows(three):
    X, y = three
    clf = WeightedNeuralNetClassifier(
        class_weight="balanced",
        resampler=RandomUnderSampler(),
        **{**ES, "early_stopping": False, "max_epochs": 2},
    ).fit(X, y)
    assert len(set(clf.class_counts_)) == 1  # trained on balanced rows
    np.testing.assert_allclose(clf.class_weight_, 1.0)


def test_resampler_refused_where_it_cannot_run(three):
    X, y = three
    clf = WeightedNeuralNetClassifier(resampler=RandomOverSampler(), **ES)
    with pytest.raises(ValueError, match="partial_fit trains on each chunk"):
        clf.set_params(early_stopping=False).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="no sample_weight"):
        WeightedNeuralNetClassifier(resampler=SMOTE(), **ES).fit(
            X, y, sample_weight=np.ones(len(y))
        )


# -- skorch's own callbacks ------------------------------------------------------
def test_skorch_epoch_scoring_reports_label_metrics(binary):
    X, y = binary
    clf = WeightedNeuralNetClassifier(
        early_stopping=False,
        train_split=ValidSplit(0.2, stratified=True, random_state=0),
        callbacks=[
            EpochScoring("balanced_accuracy", lower_is_better=False),
            EpochScoring("average_precision", lower_is_better=False),
        ],
        **{**FAST, "max_epochs": 2},
    ).fit(X, y)
    for name in ("balanced_accuracy", "average_precision"):
        values = clf.net_.history[:, name]
        assert all(0 <= v <= 1 for v in values)


def test_users_skorch_early_stopping_keeps_working(binary):
    X, y = binary
    clf = WeightedNeuralNetClassifier(
        early_stopping=False,
        train_split=ValidSplit(0.2, stratified=True, random_state=0),
        callbacks=[EarlyStopping(patience=2, load_best=True)],
        **{k: v for k, v in ES.items() if k != "early_stopping"},
    ).fit(X, y)
    assert clf.n_iter_ < 200 and clf.validation_scores_ is None


# -- searches and comparisons ----------------------------------------------------
def test_a_search_warns_once_why_its_fits_train_separately(binary):
    from skweighted.model_selection import GridSearchCV

    X, y = binary
    search = GridSearchCV(
        WeightedNeuralNetClassifier(**{**ES, "class_weight": PerBatch()}),
        {"lr": [0.01, 0.02]},
        cv=2,
    )
    with pytest.warns(UserWarning, match="trained separately") as record:
        search.fit(X, y)
    mine = [w for w in record if "trained separately" in str(w.message)]
    assert len(mine) == 1 and "PerBatch" in str(mine[0].message)
    assert search.stacking_["n_stacked"] == 0


def test_compare_reports_the_epochs_of_each_fit(binary):
    from skweighted import compare
    from skweighted.comparison import default_estimator

    X, y = binary
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every fit stacked: no warning
        result = compare(
            X, y, strategies=["none", "random_over"], cv=2, random_state=0,
            estimator=default_estimator(max_epochs=4), progress=False,
        )  # fmt: skip
    epochs = result.results["epochs"]
    assert epochs.between(1, 4).all()
    assert "epochs" in result.table().columns


# -- inside the stack ------------------------------------------------------------
class _DropoutBatchNorm(torch.nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear."""

    def __init__(self, n_features_in, n_classes, running=True):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(n_features_in, 16, bias=False),
            torch.nn.BatchNorm1d(16, track_running_stats=running),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.2),
        )
        self.out = torch.nn.Linear(16, n_classes)

    def forward(self, X):
        return self.out(self.body(X))


class _ConvBatchNorm(torch.nn.Module):
    """Conv2d -> BatchNorm2d -> ReLU -> Dropout2d -> Flatten -> Linear on
    1 x 2 x 3 images: the stack runs it as grouped convolutions."""

    def __init__(self, n_classes):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.Dropout2d(0.2),
            torch.nn.Flatten(),
            torch.nn.Linear(24, n_classes),
        )

    def forward(self, X):
        return self.net(X)


@pytest.mark.parametrize(
    "extra",
    [
        {"class_weight": "balanced"},
        # the weights change between epochs: each epoch's validation loss
        # takes its own (a stack lays them out per step)
        {"class_weight": Deferred("balanced", start_epoch=2)},
        {"resampler": RandomOverSampler(random_state=0), "sampler": "balanced"},
        # validated as in eval mode: no dropout, BatchNorm's running statistics
        {"module": _DropoutBatchNorm, "class_weight": "balanced"},
        {"module": _ConvBatchNorm, "class_weight": "balanced"},  # X as images
        # each model's criterion scores its validation rows: its own buffers
        # (a logit-adjusted loss's class counts, fold by fold), "mean"
        {"criterion": LogitAdjustedLoss, "criterion__normalization": "mean"},
        {"criterion": FocalLoss, "class_weight": "balanced"},
        # a scorer on each model's validation predictions
        {"scoring": "balanced_accuracy", "class_weight": "balanced"},
        {"scoring": "neg_log_loss"},
    ],
)
def test_stacked_early_stopping_equals_separate_fits(three, extra):
    from sklearn.model_selection import cross_validate as sk_cross_validate

    from skweighted.model_selection import cross_validate

    X, y = three
    if extra.get("module") is _ConvBatchNorm:
        X = X.reshape(len(X), 1, 2, 3)
    clf = WeightedNeuralNetClassifier(**{**ES, **extra})
    kwargs = dict(cv=3, return_estimator=True)
    stacked = cross_validate(clf, X, y, **kwargs, return_stacking=True)
    assert stacked["stacking"]["n_stacked"] == 3, stacked["stacking"]
    separate = sk_cross_validate(clf, X, y, **kwargs)
    stops = []
    for a, b in zip(stacked["estimator"], separate["estimator"]):
        assert a.n_iter_ == b.n_iter_ and a.best_iteration_ == b.best_iteration_
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)
        np.testing.assert_allclose(
            a.validation_scores_, b.validation_scores_, rtol=1e-4
        )
        # a model that stopped took no step since: the optimizer's state is
        # the separate fit's when it stopped
        sa = list(a.net_.optimizer_.state.values())
        sb = list(b.net_.optimizer_.state.values())
        assert [float(x["step"]) for x in sa] == [float(x["step"]) for x in sb]
        for x, z in zip(sa, sb):
            np.testing.assert_allclose(x["exp_avg"], z["exp_avg"], atol=1e-5)
        stops.append(a.n_iter_)
    assert len(set(stops)) > 1  # each model stopped on its own
    assert max(stops) < ES["max_epochs"]


@pytest.mark.parametrize("kind", ["binary cross-entropy", "multi-label"])
def test_stacked_early_stopping_other_targets(binary, kind):
    from sklearn.datasets import make_multilabel_classification
    from sklearn.model_selection import cross_validate as sk_cross_validate

    from skweighted.model_selection import cross_validate

    if kind == "multi-label":
        X, y = make_multilabel_classification(240, 6, n_classes=3, random_state=0)
        extra = {}
    else:
        (X, y), extra = binary, {"criterion": BinaryCrossEntropyLoss}
    clf = WeightedNeuralNetClassifier(**{**ES, **extra}, class_weight="balanced")
    kwargs = dict(cv=2, return_estimator=True)
    stacked = cross_validate(
        clf, X.astype(np.float32), y, **kwargs, return_stacking=True
    )
    assert stacked["stacking"]["n_stacked"] == 2, stacked["stacking"]
    separate = sk_cross_validate(clf, X.astype(np.float32), y, **kwargs)
    for a, b in zip(stacked["estimator"], separate["estimator"]):
        assert a.n_iter_ == b.n_iter_ < ES["max_epochs"]
        np.testing.assert_allclose(
            a.validation_scores_, b.validation_scores_, rtol=1e-4
        )
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize(
    "extra, reason",
    [
        ({"module": _DropoutBatchNorm, "module__running": False}, "BatchNorm1d"),
        ({"class_weight": PerBatch()}, "PerBatch"),
    ],
)
def test_what_a_stack_cannot_validate_trains_separately(three, extra, reason):
    """A stack's validation pass is each model's criterion with the layers as
    in eval mode: PerBatch weights or a BatchNorm that normalises each
    evaluation batch by its own statistics would give another validation loss
    than the separate fit's."""
    from skweighted.model_selection import cross_validate

    X, y = three
    clf = WeightedNeuralNetClassifier(**{**ES, "max_epochs": 3, **extra})
    got = cross_validate(clf, X, y, cv=2, return_stacking=True)["stacking"]
    assert got["n_stacked"] == 0
    assert all(why.startswith("early stopping with") for why in got["separate"])
    assert all(reason in why for why in got["separate"]), got["separate"]


def test_a_search_stacks_early_stopping_fits(binary):
    from skweighted.model_selection import GridSearchCV

    X, y = binary
    search = GridSearchCV(
        WeightedNeuralNetClassifier(**ES), {"lr": [0.02, 0.05]}, cv=2
    ).fit(X, y)
    assert search.stacking_["n_stacked"] == search.stacking_["n_fits"] == 5


def test_an_early_stopped_model_saves_and_loads(stopped, three, tmp_path):
    import skops.io

    from skweighted.persistence import SKOPS_TRUSTED_TYPES

    X, _ = three
    path = tmp_path / "model.skops"
    skops.io.dump(stopped, path)
    loaded = skops.io.load(path, trusted=SKOPS_TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.predict_proba(X), stopped.predict_proba(X))
    assert loaded.best_iteration_ == stopped.best_iteration_


def _epochs(estimator, X, y):
    return estimator.n_iter_


def test_a_stack_retires_its_stopped_models(three, monkeypatch):
    """Models that stop leave the stack: the others' blocks of optimizer
    settings, momentum buffers and schedules follow them (each fit equals its
    separate fit), and the stack computes only the steps of models still
    training (a window at most after each stop)."""
    from sklearn.model_selection import GridSearchCV as SkGridSearchCV

    from skweighted._stacking import _engine
    from skweighted._stacking._optim import StackedOptimizer
    from skweighted.model_selection import GridSearchCV

    X, y = three
    clf = WeightedNeuralNetClassifier(
        **{**ES, "max_epochs": 30}, optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
    )  # fmt: skip
    grid = {"lr": [0.02, 0.05], "early_stopping": [True, False]}
    scoring = {"log_loss": "neg_log_loss", "epochs": _epochs}
    kwargs = dict(cv=3, scoring=scoring, refit=False)
    computed = []
    step = StackedOptimizer.step

    def counting(self, grad, n_active=None):
        computed.append(grad.shape[0] if n_active is None else n_active)
        return step(self, grad, n_active)

    monkeypatch.setattr(StackedOptimizer, "step", counting)
    stacked = GridSearchCV(clf, grid, **kwargs).fit(X, y)
    monkeypatch.undo()
    separate = SkGridSearchCV(clf, grid, **kwargs).fit(X, y)
    assert stacked.stacking_["n_stacked"] == stacked.stacking_["n_fits"] == 12
    for k in range(3):
        for name in ("log_loss", "epochs"):
            key = f"split{k}_test_{name}"
            np.testing.assert_allclose(
                stacked.cv_results_[key], separate.cv_results_[key], rtol=1e-4
            )
    epochs = np.array([stacked.cv_results_[f"split{k}_test_epochs"] for k in range(3)])
    early = np.asarray(stacked.cv_results_["param_early_stopping"], bool)
    stops = epochs[:, early]
    assert (epochs[:, ~early] == 30).all() and len(np.unique(stops)) > 2
    # each fit's steps (160 training rows, batch 32: 5 a epoch; 200 rows
    # without the validation split: 7), and a window at most after each stop
    steps = np.where(early, epochs * 5, epochs * 7).sum()
    assert steps <= sum(computed) <= steps + stops.size * _engine.WINDOW

"""WeightedNeuralNetClassifier: the scikit-learn surface and the training path."""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from conftest import fast, make_imbalanced
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from skweighted import MLP, WeightedCrossEntropyLoss, WeightedNeuralNetClassifier

#: For 600 rows: larger batches and more epochs than FAST.
TRAIN = fast(max_epochs=5, batch_size=64)


@pytest.fixture(scope="module")
def imbalanced():
    return make_imbalanced(
        [0.8, 0.15, 0.05],
        ["common", "middle", "rare"],
        600,
        n_features=8,
        n_informative=5,
        n_redundant=2,
    )


@pytest.fixture(scope="module")
def fitted(imbalanced):
    """Fit once, assert many."""
    X, y = imbalanced
    return WeightedNeuralNetClassifier(class_weight="balanced", **TRAIN).fit(X, y)


def test_labels_in_labels_out(fitted, imbalanced):
    X, y = imbalanced
    assert list(fitted.classes_) == ["common", "middle", "rare"]
    assert set(fitted.predict(X)) <= set(y)
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(
        fitted.predict(X), fitted.classes_[proba.argmax(axis=1)]
    )
    assert fitted.score(X, y) == pytest.approx(np.mean(fitted.predict(X) == y))


def test_balanced_equals_sklearn(fitted, imbalanced):
    _, y = imbalanced
    expected = compute_class_weight("balanced", classes=fitted.classes_, y=y)
    np.testing.assert_array_equal(fitted.class_weight_, expected)


def test_weight_buffer_is_float32_on_module_device(fitted):
    weight = fitted.net_.criterion_.weight
    assert weight.dtype == torch.float32
    assert weight.device == next(fitted.net_.module_.parameters()).device
    np.testing.assert_allclose(weight.cpu().numpy(), fitted.class_weight_, rtol=1e-6)
    assert isinstance(fitted.net_.criterion_, WeightedCrossEntropyLoss)


def test_default_module_sized_from_data(fitted):
    module = fitted.net_.module_
    assert isinstance(module, MLP)
    assert module.layers[0].in_features == 8
    assert module.layers[-1].out_features == 3
    assert fitted.n_features_in_ == 8


def test_history_complete(fitted):
    history = fitted.net_.history
    assert len(history) == TRAIN["max_epochs"]
    n_batches = int(np.ceil(600 / TRAIN["batch_size"]))
    assert history[-1, "train_batch_count"] == n_batches
    losses = history[-1, "batches", :, "train_loss"]
    assert all(isinstance(v, float) and np.isfinite(v) for v in losses)
    assert history[-1, "train_loss"] < history[0, "train_loss"]


def test_loss_equals_hand_written_formula():
    torch.manual_seed(0)
    logits = torch.randn(7, 3)
    target = torch.tensor([0, 1, 2, 2, 1, 0, 2])
    w = torch.tensor([0.5, 2.0, 4.0])
    loss = WeightedCrossEntropyLoss(weight=w)(logits, target)
    num = sum(w[t] * -torch.log_softmax(z, 0)[t] for z, t in zip(logits, target))
    den = sum(w[t] for t in target)
    torch.testing.assert_close(loss, num / den)
    torch.testing.assert_close(
        loss, nn.functional.cross_entropy(logits, target, weight=w)
    )


def test_weights_reach_the_loss_of_the_trained_net(imbalanced):
    """The fitted criterion applies the resolved weights to a fixed batch."""
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(class_weight={"rare": 7.0}, **TRAIN).fit(X, y)
    Xb = torch.tensor(X[:32], dtype=torch.float32)  # X is read-only
    yb = torch.as_tensor(np.searchsorted(clf.classes_, y[:32]))
    logits = clf.net_.module_(Xb)
    w = torch.tensor([1.0, 1.0, 7.0])[yb]
    expected = (w * -torch.log_softmax(logits, 1)[torch.arange(32), yb]).sum() / w.sum()
    torch.testing.assert_close(clf.net_.get_loss(logits, yb, X=Xb), expected)


def test_extreme_weights_move_predictions(imbalanced):
    X, y = imbalanced
    plain = WeightedNeuralNetClassifier(**TRAIN).fit(X, y)
    favour = WeightedNeuralNetClassifier(
        class_weight={"rare": 1000.0, "common": 0.001, "middle": 0.001}, **TRAIN
    ).fit(X, y)
    assert np.mean(favour.predict(X) == "rare") > 0.8
    assert np.mean(favour.predict(X) == "rare") > 3 * np.mean(
        plain.predict(X) == "rare"
    )


def test_weights_recomputed_at_every_fit(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(class_weight="balanced", **TRAIN)
    clf.fit(X, y)
    first = clf.class_weight_.copy()
    keep = np.flatnonzero(y != "common")[:60].tolist() + list(range(100))
    clf.fit(X[keep], y[keep])
    assert not np.allclose(first, clf.class_weight_)
    np.testing.assert_array_equal(
        clf.class_weight_,
        compute_class_weight("balanced", classes=clf.classes_, y=y[keep]),
    )


def test_random_state_reproducible_and_global_rng_untouched(imbalanced):
    X, y = imbalanced
    state = torch.get_rng_state()
    a = WeightedNeuralNetClassifier(**TRAIN).fit(X, y).predict_proba(X)
    assert torch.equal(state, torch.get_rng_state())
    b = WeightedNeuralNetClassifier(**TRAIN).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = WeightedNeuralNetClassifier(**{**TRAIN, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a, c.predict_proba(X))


def test_sklearn_pipeline_float64(imbalanced):
    X, y = imbalanced
    pipe = Pipeline(
        [("scale", StandardScaler()), ("clf", WeightedNeuralNetClassifier(**TRAIN))]
    )
    pipe.fit(X.astype(np.float64), y)
    assert pipe.score(X, y) > 0.8


@pytest.mark.parametrize(
    "sampler", [SMOTE(random_state=0), RandomUnderSampler(random_state=0)]
)
def test_imblearn_pipeline_weights_follow_resampled_y(imbalanced, sampler):
    X, y = imbalanced
    pipe = ImbPipeline(
        [
            ("sample", sampler),
            # every resampled row trains (no validation split)
            (
                "clf",
                WeightedNeuralNetClassifier(
                    class_weight="inverse", early_stopping=False, **TRAIN
                ),
            ),
        ]
    ).fit(X, y)
    _, y_res = clone(sampler).fit_resample(X, y)
    counts = np.unique(y_res, return_counts=True)[1]
    assert len(set(counts)) == 1  # the sampler balanced the classes
    np.testing.assert_allclose(pipe[-1].class_weight_, 1.0 / counts)
    # on the original y, 'inverse' weights would differ by class
    assert not np.allclose(
        pipe[-1].class_weight_, 1.0 / np.unique(y, return_counts=True)[1]
    )


def test_grid_search_strings_dataframe_n_jobs(imbalanced):
    X, y = imbalanced
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    pipe = Pipeline(
        [("scale", StandardScaler()), ("clf", WeightedNeuralNetClassifier(**TRAIN))]
    )
    grid = {
        "clf__class_weight": [None, "balanced", {"rare": 10}],
        "clf__module__hidden_units": [(16,), (32, 16)],
    }
    search = GridSearchCV(
        pipe, grid, cv=3, scoring="balanced_accuracy", n_jobs=2, error_score="raise"
    ).fit(df, y)
    assert len(search.cv_results_["params"]) == 6
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert list(search.best_estimator_.feature_names_in_) == list(df.columns)
    assert set(search.predict(df)) <= set(y)
    by_weight = {}
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"]
    ):
        by_weight.setdefault(repr(params["clf__class_weight"]), []).append(score)
    # weighting for the minority helps balanced accuracy on this data
    assert max(by_weight["'balanced'"]) > max(by_weight["None"])


def test_dataframe_input_keeps_feature_names(imbalanced):
    X, y = imbalanced
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = WeightedNeuralNetClassifier(**TRAIN).fit(df, pd.Series(y))
    assert list(clf.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_array_equal(clf.predict(df), clf.predict(X))


def test_prefixed_params_roundtrip():
    clf = WeightedNeuralNetClassifier(
        module__hidden_units=(8,), optimizer__weight_decay=0.1
    )
    params = clf.get_params()
    assert params["module__hidden_units"] == (8,)
    assert params["optimizer__weight_decay"] == 0.1
    clf.set_params(module__hidden_units=(4, 4), iterator_train__shuffle=False)
    assert clf.get_params()["module__hidden_units"] == (4, 4)
    assert clone(clf).get_params()["iterator_train__shuffle"] is False
    assert "module__hidden_units=(4, 4)" in repr(clf)


def test_prefixed_params_reach_the_net(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(
        module__hidden_units=(5,), optimizer__weight_decay=0.25, **TRAIN
    ).fit(X, y)
    assert clf.net_.module_.layers[0].out_features == 5
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 0.25


def test_unknown_extra_param_rejected_at_construction():
    with pytest.raises(TypeError, match="unknown parameter 'modul__hidden_units'"):
        WeightedNeuralNetClassifier(modul__hidden_units=(5,))


def test_sample_weight_multiplies_class_weight(imbalanced):
    X, y = imbalanced
    sw = np.linspace(0.5, 2.0, len(y))
    sw_orig = sw.copy()
    clf = WeightedNeuralNetClassifier(class_weight="balanced", **TRAIN)
    clf.fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(sw, sw_orig)
    # per-sample weight = class weight * sample weight, inside the loss
    Xb = torch.tensor(X[:16], dtype=torch.float32)
    yb = torch.as_tensor(np.searchsorted(clf.classes_, y[:16]))
    swb = torch.as_tensor(sw[:16], dtype=torch.float32)
    logits = clf.net_.module_(Xb)
    v = torch.as_tensor(clf.class_weight_, dtype=torch.float32)[yb] * swb
    nll = -torch.log_softmax(logits, 1)[torch.arange(16), yb]
    got = clf.net_.get_loss(logits, yb, X={"X": Xb, "sample_weight": swb})
    torch.testing.assert_close(got, (v * nll).sum() / v.sum())


def test_sample_weight_zero_equals_dropping_rows(imbalanced):
    X, y = imbalanced
    params = {**TRAIN, "batch_size": 1024, "iterator_train__shuffle": False}
    sw = np.ones(len(y))
    sw[::3] = 0
    a = WeightedNeuralNetClassifier(**params).fit(X, y, sample_weight=sw)
    b = WeightedNeuralNetClassifier(**params).fit(X[sw > 0], y[sw > 0])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


def test_sample_weight_metadata_routing(imbalanced):
    X, y = imbalanced
    sw = np.where(y == "rare", 5.0, 1.0)

    def search(request):
        clf = WeightedNeuralNetClassifier(**TRAIN).set_fit_request(
            sample_weight=request
        )
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        scoring = get_scorer("balanced_accuracy").set_score_request(sample_weight=False)
        pipe = Pipeline([("scale", scaler), ("clf", clf)])
        fit_params = {"sample_weight": sw} if request else {}
        return GridSearchCV(pipe, {"clf__lr": [0.01]}, cv=2, scoring=scoring).fit(
            X, y, **fit_params
        )

    with sklearn.config_context(enable_metadata_routing=True):
        weighted, unweighted = search(True), search(False)
    assert np.mean(weighted.predict(X) == "rare") > np.mean(
        unweighted.predict(X) == "rare"
    )


def test_clone_and_pickle_roundtrip(fitted, imbalanced):
    X, _ = imbalanced
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.class_weight_, fitted.class_weight_)
    unfitted = clone(fitted)
    assert not hasattr(unfitted, "net_")
    assert unfitted.get_params()["class_weight"] == "balanced"


def test_classes_param_covers_a_fold_missing_a_class(imbalanced):
    X, y = imbalanced
    keep = y != "rare"
    clf = WeightedNeuralNetClassifier(
        class_weight="balanced", classes=["common", "middle", "rare"], **TRAIN
    ).fit(X[keep], y[keep])
    assert list(clf.classes_) == ["common", "middle", "rare"]
    assert clf.predict_proba(X).shape == (len(X), 3)
    assert clf.net_.module_.layers[-1].out_features == 3
    present = compute_class_weight(
        "balanced", classes=np.array(["common", "middle"]), y=y[keep]
    )
    np.testing.assert_array_equal(clf.class_weight_[:2], present)
    assert clf.class_weight_[2] == 1.0


def test_grid_search_with_classes_when_folds_miss_a_class(small_three):
    X, y = small_three
    y = np.where(y == 2, "b", "a").astype(object)
    y[:2] = "rare"  # two rare samples: most training folds of a 5-fold CV miss one
    clf = WeightedNeuralNetClassifier(classes=["a", "b", "rare"], **TRAIN)
    search = GridSearchCV(
        clf, {"class_weight": [None, "balanced"]}, cv=StratifiedKFold(2)
    )
    search.fit(X, y)
    assert search.predict_proba(X).shape[1] == 3


def test_module_class_and_instance(imbalanced):
    X, y = imbalanced

    class Net(nn.Module):
        def __init__(self, n_features_in, n_classes, width=6):
            super().__init__()
            self.lin = nn.Sequential(
                nn.Linear(n_features_in, width), nn.ReLU(), nn.Linear(width, n_classes)
            )

        def forward(self, X):
            return self.lin(X)

    clf = WeightedNeuralNetClassifier(Net, module__width=3, **TRAIN).fit(X, y)
    assert clf.net_.module_.lin[0].out_features == 3

    instance = nn.Sequential(nn.Linear(8, 3))
    before = instance[0].weight.detach().clone()
    clf = WeightedNeuralNetClassifier(instance, **TRAIN).fit(X, y)
    assert torch.equal(instance[0].weight, before)  # the caller's module is not trained
    assert not torch.equal(clf.net_.module_[0].weight, before)


def test_torch_criterion_class_gets_weights(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(
        criterion=nn.CrossEntropyLoss, class_weight="balanced", **TRAIN
    ).fit(X, y)
    assert isinstance(clf.net_.criterion_, nn.CrossEntropyLoss)
    np.testing.assert_allclose(
        clf.net_.criterion_.weight.numpy(), clf.class_weight_, rtol=1e-6
    )


def test_validation_split_and_early_stopping_on_request(imbalanced):
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(
        train_split=ValidSplit(5, stratified=True),
        callbacks=[EarlyStopping(patience=2)],
        **{**TRAIN, "max_epochs": 40},
    ).fit(X, y)
    history = clf.net_.history
    assert "valid_loss" in history[-1]
    assert (
        len(history) < 40
        or history[-1, "valid_loss"] <= min(history[:, "valid_loss"]) + 1e-9
    )
    # no validation split by default
    assert (
        "valid_loss"
        not in WeightedNeuralNetClassifier(**TRAIN).fit(X, y).net_.history[-1]
    )


def test_balanced_sampler_draws_classes_evenly(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(sampler="balanced", **TRAIN).fit(X, y)
    it = clf.net_.get_iterator(
        clf.net_.make_dataset(X, np.searchsorted(clf.classes_, y)), training=True
    )
    drawn = torch.cat([yb for _, yb in it]).numpy()
    share = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(share, 1 / 3, atol=0.06)


def test_warm_start_continues_training(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(warm_start=True, **TRAIN).fit(X, y)
    module = clf.net_.module_
    clf.fit(X, y)
    assert clf.net_.module_ is module
    assert len(clf.net_.history) == 2 * TRAIN["max_epochs"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_weights_on_cuda(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(
        class_weight="balanced", device="cuda", **TRAIN
    ).fit(X, y)
    assert clf.net_.criterion_.weight.device.type == "cuda"
    assert (
        clf.net_.criterion_.weight.device == next(clf.net_.module_.parameters()).device
    )
    assert clf.get_params()["device"] == "cuda"
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(
        restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6
    )


def test_predict_proba_rows_sum_to_one_in_float64():
    import warnings

    from sklearn.metrics import log_loss

    X, y = make_imbalanced(
        None, ["a", "b", "c", "d"], 200, n_features=20, n_informative=4, n_redundant=2
    )
    clf = WeightedNeuralNetClassifier(max_epochs=2, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "y_prob values do not sum to one"
        log_loss(y, proba)


def test_warm_start_picks_up_new_settings_and_weights(imbalanced):
    X, y = imbalanced
    clf = WeightedNeuralNetClassifier(warm_start=True, **TRAIN).fit(X, y)
    clf.set_params(lr=0.5, max_epochs=2, class_weight="balanced", sampler="balanced")
    clf.fit(X, y)
    net = clf.net_
    assert net.optimizer_.param_groups[0]["lr"] == 0.5
    assert len(net.history) == TRAIN["max_epochs"] + 2
    np.testing.assert_allclose(
        net.criterion_.weight.numpy(), clf.class_weight_, rtol=1e-6
    )
    np.testing.assert_allclose(net.plan_.sampling_weight, clf.class_weight_)

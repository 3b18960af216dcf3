"""skweighted.calibration: undoing class weights and resampling on fixed arrays."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import fast, make_imbalanced
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from imblearn.under_sampling import RandomUnderSampler
from scipy.special import softmax
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from skweighted import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    Deferred,
    FocalLoss,
    LogitAdjustedLoss,
    PerBatch,
    RealWorldWeightCrossEntropyLoss,
    WeightedNeuralNetClassifier,
    compare,
    load_imbalanced,
)
from skweighted.calibration import shift_prior, unweight_proba
from skweighted.comparison import default_estimator

Q = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]])


def test_unweight_divides_by_the_weights_and_renormalises():
    w = np.array([1.0, 4.0, 2.0])
    expected = np.array(
        [
            [0.2 / 1, 0.5 / 4, 0.3 / 2],
            [0.6 / 1, 0.3 / 4, 0.1 / 2],
            [1 / 3, 1 / 12, 1 / 6],
        ]
    )
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(unweight_proba(Q, w), expected)


def test_it_is_the_softmax_of_the_logits_minus_log_weights():
    # exact for the weighted cross-entropy: q = softmax(z), p = softmax(z - log w)
    z = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    w = np.array([0.5, 3.0, 1.5])
    np.testing.assert_allclose(
        unweight_proba(softmax(z, axis=1), w), softmax(z - np.log(w), axis=1)
    )


def test_only_weight_ratios_matter_and_equal_weights_change_nothing():
    w = np.array([1.0, 4.0, 2.0])
    np.testing.assert_allclose(unweight_proba(Q, w), unweight_proba(Q, 7.5 * w))
    np.testing.assert_allclose(unweight_proba(Q, [3.0, 3.0, 3.0]), Q)


def test_reweighting_then_unweighting_is_the_identity():
    w = np.array([0.3, 2.0, 5.0])
    weighted = Q * w / (Q * w).sum(axis=1, keepdims=True)  # q ∝ w p
    np.testing.assert_allclose(unweight_proba(weighted, w), Q)


def test_shift_prior_undoes_resampling():
    # balanced (undersampled) training data, true prior 95:5
    q = np.array([[0.5, 0.5], [0.2, 0.8]])
    p = shift_prior(q, train_prior=[50, 50], prior=[950, 50])
    np.testing.assert_allclose(p[0], [0.95, 0.05])
    odds = 0.8 / 0.2 * (50 / 950)
    np.testing.assert_allclose(p[1], [1 / (1 + odds), odds / (1 + odds)])
    # counts or frequencies: the same
    np.testing.assert_allclose(shift_prior(q, [0.5, 0.5], [0.95, 0.05]), p)
    np.testing.assert_allclose(shift_prior(q, [1, 1], [1, 1]), q)


def test_inputs_are_not_modified():
    q, w = Q.copy(), np.array([1.0, 4.0, 2.0])
    unweight_proba(q, w)
    shift_prior(q, w, w[::-1].copy())
    np.testing.assert_array_equal(q, Q)
    np.testing.assert_array_equal(w, [1.0, 4.0, 2.0])


@pytest.mark.parametrize(
    "proba, weight, match",
    [
        (Q, [1.0, 2.0], "weight must hold one value per class"),
        (Q, [1.0, 0.0, 2.0], "strictly positive"),
        (Q, [1.0, np.nan, 2.0], "strictly positive"),
        (Q[0], [1.0, 1.0, 1.0], r"shape \(n_samples, n_classes\)"),
        (-Q, [1.0, 1.0, 1.0], "non-negative"),
        (np.zeros((1, 3)), [1.0, 1.0, 1.0], "row of zeros"),
    ],
)
def test_bad_input_is_a_clear_error(proba, weight, match):
    with pytest.raises(ValueError, match=match):
        unweight_proba(proba, weight)


def test_shift_prior_names_the_bad_prior():
    with pytest.raises(ValueError, match="train_prior"):
        shift_prior(Q, [0, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="prior must hold one value"):
        shift_prior(Q, [1, 1, 1], [1, 1])


# -- the estimator's correct_proba / class_prior -----------------------------

BIG_BATCH = fast(batch_size=64)


@pytest.fixture(scope="module")
def data():
    return make_imbalanced(
        [0.85], ["common", "rare"], 200, 5, n_informative=2, n_redundant=2
    )


def _pair(data, **params):
    """One network fitted with correct_proba, and a copy of it without.

    The option does not change training (the copy predicts as a fit without
    it would: test_clone_pickle_and_grid_search), only what predict_proba
    returns, read at prediction time.
    """
    X, y = data
    corrected = WeightedNeuralNetClassifier(correct_proba=True, **BIG_BATCH, **params)
    corrected.fit(X, y)
    plain = copy.deepcopy(corrected).set_params(correct_proba=False)
    return plain, corrected


def _divided(q, w):
    p = q / np.asarray(w)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "params, weight",
    [
        ({"class_weight": {"common": 1.0, "rare": 5.0}}, [1.0, 5.0]),
        ({"sampler": {"common": 1.0, "rare": 4.0}}, [1.0, 4.0]),
        (
            {"class_weight": {"rare": 3.0}, "sampler": {"rare": 2.0}},
            [1.0, 6.0],
        ),
        ({"class_weight": {"common": 2.0, "rare": 2.0}}, [1.0, 1.0]),
        ({}, [1.0, 1.0]),
        # Deferred: the weights of the last epoch trained
        ({"class_weight": Deferred("balanced", start_epoch=1)}, "balanced"),
        ({"class_weight": Deferred("balanced", start_epoch=10)}, [1.0, 1.0]),
    ],
)
def test_corrected_proba_is_q_over_w(data, params, weight):
    X, y = data
    if weight == "balanced":
        weight = len(y) / (2 * np.unique(y, return_counts=True)[1])
    plain, corrected = _pair(data, **params)
    q, p = plain.predict_proba(X), corrected.predict_proba(X)
    np.testing.assert_allclose(p, _divided(q, weight), rtol=1e-12)
    if np.array_equal(weight, [1.0, 1.0]):
        np.testing.assert_array_equal(p, q)  # nothing to undo, nothing changes
    # predict keeps the weighted decision, argmax of w_c p(c|x) = argmax q
    np.testing.assert_array_equal(corrected.predict(X), plain.predict(X))
    np.testing.assert_array_equal(
        corrected.predict(X), corrected.classes_[np.argmax(q, axis=1)]
    )


def test_balanced_sampler_and_balanced_weights_are_undone(data):
    X, y = data
    counts = np.array([np.sum(y == "common"), np.sum(y == "rare")])
    balanced = len(y) / (2 * counts)  # scikit-learn's 'balanced'
    for params in ({"class_weight": "balanced"}, {"sampler": "balanced"}):
        plain, corrected = _pair(data, **params)
        np.testing.assert_allclose(
            corrected.predict_proba(X),
            _divided(plain.predict_proba(X), balanced),
            rtol=1e-12,
        )
        # the corrected probabilities are lower for the rare class
        assert (
            corrected.predict_proba(X)[:, 1].mean()
            < plain.predict_proba(X)[:, 1].mean()
        )


def test_class_prior_corrects_for_resampling_before_the_estimator(data):
    X, y = data
    prior = {"common": 0.9, "rare": 0.1}
    corrected = WeightedNeuralNetClassifier(
        correct_proba=True, class_prior=prior, **BIG_BATCH
    ).fit(X, y)
    plain = copy.deepcopy(corrected).set_params(correct_proba=False, class_prior=None)
    seen = np.array([np.mean(y == "common"), np.mean(y == "rare")])
    np.testing.assert_allclose(corrected.class_prior_, [0.9, 0.1])
    np.testing.assert_allclose(
        corrected.predict_proba(X),
        _divided(plain.predict_proba(X), seen / [0.9, 0.1]),
        rtol=1e-12,
    )
    # an array in the order of classes_ is the same prior; scale is irrelevant
    again = clone(corrected).set_params(class_prior=[9, 1]).fit(X, y)
    np.testing.assert_allclose(
        again.predict_proba(X), corrected.predict_proba(X), rtol=1e-12
    )


def test_in_an_imblearn_pipeline_with_a_sampler(data):
    X, y = data
    prior = {"common": np.mean(y == "common"), "rare": np.mean(y == "rare")}
    pipe = make_imb_pipeline(
        RandomUnderSampler(random_state=0),
        WeightedNeuralNetClassifier(correct_proba=True, class_prior=prior, **BIG_BATCH),
    ).fit(X, y)
    q = pipe[-1]._network_proba(X)
    # trained on 50:50, corrected back to the prior before undersampling
    np.testing.assert_allclose(
        pipe.predict_proba(X),
        _divided(q, [0.5, 0.5] / np.array(list(prior.values()))),
        rtol=1e-12,
    )


def test_per_batch_is_approximate_and_says_so(data):
    X, y = data
    with pytest.warns(UserWarning, match="approximate"):
        corrected = WeightedNeuralNetClassifier(
            class_weight=PerBatch("balanced"), correct_proba=True, **BIG_BATCH
        ).fit(X, y)
    plain = copy.deepcopy(corrected).set_params(correct_proba=False)
    np.testing.assert_allclose(
        corrected.predict_proba(X),
        _divided(plain.predict_proba(X), corrected.class_weight_),
        rtol=1e-12,
    )


def test_sample_weight_is_part_of_the_data_not_undone(data):
    X, y = data
    sw = np.linspace(0.5, 2.0, len(y))
    kw = {"class_weight": {"rare": 4.0}, **BIG_BATCH}
    corrected = WeightedNeuralNetClassifier(correct_proba=True, **kw)
    corrected.fit(X, y, sample_weight=sw)
    plain = copy.deepcopy(corrected).set_params(correct_proba=False)
    np.testing.assert_allclose(
        corrected.predict_proba(X), _divided(plain.predict_proba(X), [1, 4])
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"criterion": FocalLoss}, "FocalLoss.*no exact correction"),
        ({"criterion": BinaryFocalLoss(gamma=1.0)}, "no exact correction"),
        (
            {"criterion": RealWorldWeightCrossEntropyLoss(fn_cost=5.0, fp_cost=1.0)},
            "no exact correction",
        ),
        ({"criterion": LogitAdjustedLoss}, "tau=1.0"),
        ({"criterion__label_smoothing": 0.1}, "label_smoothing=0.1"),
        ({"criterion__weight": [1.0, 3.0]}, "pass them as class_weight"),
        ({"class_weight": {"rare": 0.0}}, r"classes \['rare'\] weigh 0"),
        ({"class_prior": [0.5]}, "one finite value per class"),
        ({"class_prior": [0.5, -0.5]}, "strictly positive"),
        ({"class_prior": {"rare": 0.5}}, r"missing \['common'\]"),
        ({"class_prior": "balanced"}, "class_prior"),
        ({"correct_proba": "yes"}, "'correct_proba' parameter"),
        ({"correct_proba": False, "class_prior": [0.5]}, "one finite value"),
    ],
)
def test_bad_settings_raise_before_training(data, params, match, monkeypatch):
    X, y = data
    params = {"correct_proba": True, **params}
    if "criterion__label_smoothing" in params:
        params["criterion"] = torch.nn.CrossEntropyLoss
    clf = WeightedNeuralNetClassifier(**{**BIG_BATCH, **params})
    trained = []
    monkeypatch.setattr("skweighted._net.train", lambda *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert trained == []


def test_cross_entropy_forms_are_accepted(data):
    X, y = data
    for criterion in (
        BinaryCrossEntropyLoss,
        FocalLoss(gamma=0.0),
        LogitAdjustedLoss(tau=0.0, posthoc_tau=1.0),
        torch.nn.CrossEntropyLoss,
    ):
        clf = WeightedNeuralNetClassifier(
            criterion=criterion, correct_proba=True, **BIG_BATCH
        ).fit(X, y)
        assert np.allclose(clf.predict_proba(X).sum(axis=1), 1)


def test_clone_pickle_and_grid_search(data):
    X, y = data
    clf = WeightedNeuralNetClassifier(
        class_weight="balanced", correct_proba=True, class_prior=[0.8, 0.2], **BIG_BATCH
    )
    params = clone(clf).get_params()
    assert params["correct_proba"] is True and params["class_prior"] == [0.8, 0.2]
    clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    search = GridSearchCV(
        WeightedNeuralNetClassifier(class_weight="balanced", **BIG_BATCH),
        {"correct_proba": [False, True]},
        scoring="neg_log_loss",
        cv=2,
    ).fit(pd.DataFrame(X), y)
    assert search.cv_results_["param_correct_proba"].tolist() == [False, True]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(pd.DataFrame(X[:5])).shape == (5,)
    # same decisions, so the same accuracy in every fold
    acc = [
        cross_val_score(
            WeightedNeuralNetClassifier(
                class_weight="balanced", correct_proba=c, **BIG_BATCH
            ),
            X,
            y,
            cv=2,
        )
        for c in (False, True)
    ]
    np.testing.assert_array_equal(acc[0], acc[1])


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_corrected_balanced_brier_is_near_the_unweighted_one(name):
    # "Done means 2" on the two small built-in datasets; all six datasets:
    # benchmarks/bench_calibration.py (its run is recorded in docs/compare.md).
    X, y = load_imbalanced(name, return_X_y=True)
    result = compare(
        X,
        y,
        strategies=["none", "balanced", "balanced+corrected"],
        estimator=default_estimator(max_epochs=30),
        cv=5,
        random_state=0,
    )
    values = result.results.pivot_table(
        index=["metric", "fold"], columns="strategy", values="value"
    )
    brier = values.loc["brier"].mean()
    assert brier["balanced+corrected"] <= 1.1 * brier["none"]
    assert brier["balanced+corrected"] < brier["balanced"]
    np.testing.assert_array_equal(
        values.loc["balanced_accuracy", "balanced+corrected"],
        values.loc["balanced_accuracy", "balanced"],
    )


def test_class_prior_is_ignored_without_correct_proba(data):
    """``class_prior`` used to be refused with ``correct_proba=False``, so a
    grid over ``correct_proba`` with a prior set failed on half its rows."""
    from sklearn.model_selection import GridSearchCV

    X, y = data
    plain = WeightedNeuralNetClassifier(class_weight="balanced", **BIG_BATCH).fit(X, y)
    clf = WeightedNeuralNetClassifier(
        class_weight="balanced", class_prior=[0.8, 0.2], **BIG_BATCH
    ).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), plain.predict_proba(X))
    search = GridSearchCV(clf, {"correct_proba": [False, True]}, cv=2)
    search.fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()

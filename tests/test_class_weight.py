"""Weighting schemes: each resolved weight against an independent hand computation,
and PerBatch / Deferred observed acting during training."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import make_imbalanced
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.utils.class_weight import compute_class_weight

from skweighted import (
    Deferred,
    EffectiveNumber,
    InversePower,
    PerBatch,
    WeightedCrossEntropyLoss,
    WeightedNeuralNetClassifier,
    resolve_class_weight,
)

# Label vectors: strings with a single rare sample, integer labels with gaps,
# and a full label set with a class absent from y.
STRINGS = np.array(["cat"] * 6 + ["dog"] * 3 + ["emu"], dtype=object)
GAPS = np.array([7, 0, 0, 3, 0, 0, 3, 0, 0, 7, 0, 100])  # classes 0, 3, 7, 100
CASES = {
    "strings": (STRINGS, np.array(["cat", "dog", "emu"], dtype=object)),
    "gaps": (GAPS, np.array([0, 3, 7, 100])),
    "absent": (STRINGS, np.array(["ant", "cat", "dog", "emu"], dtype=object)),
}


def _by_hand(y, classes, formula):
    """Apply ``formula(n_c, counts_of_present)`` class by class; absent -> 1."""
    counts = Counter(y.tolist())
    present = [counts[c] for c in classes.tolist() if counts[c] > 0]
    return np.array(
        [formula(counts[c], present) if counts[c] else 1.0 for c in classes.tolist()]
    )


def _median(values):
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _effective(beta):
    def formula(n, present):
        raw = [(1 - beta) / (1 - beta**m) for m in present]
        return (1 - beta) / (1 - beta**n) * len(present) / sum(raw)

    return formula


FORMULAS = {
    "balanced": lambda n, p: sum(p) / (len(p) * n),
    "inverse": lambda n, p: 1 / n,
    "inverse_sqrt": lambda n, p: 1 / math.sqrt(n),
    "median_frequency": lambda n, p: _median(p) / n,
    InversePower(power=1.0): lambda n, p: 1 / n,
    InversePower(power=0.5, smoothing=2.0): lambda n, p: math.sqrt(3 / (n + 2)),
    InversePower(power=2.0, smoothing=1.0, normalize=True): (
        lambda n, p: (2 / (n + 1)) ** 2 / sum((2 / (m + 1)) ** 2 for m in p)
    ),
    EffectiveNumber(beta=0.9): _effective(0.9),
    EffectiveNumber(beta=0.0): lambda n, p: 1.0,
    # the whole-y weights of the training-time schemes (class_weight_)
    PerBatch("inverse"): lambda n, p: 1 / n,
    Deferred("median_frequency", start_epoch=2): lambda n, p: _median(p) / n,
    Deferred(): _effective(0.999),
    # a plain callable f(y) -> {label: weight}
    (lambda y: {label: 1 / len(y) for label in set(y.tolist())}): (
        lambda n, p: 1 / sum(p)
    ),
    None: lambda n, p: 1.0,
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("scheme", FORMULAS, ids=repr)
def test_scheme_matches_hand_computation(scheme, case):
    y, classes = CASES[case]
    y_before = y.copy()
    weights = resolve_class_weight(scheme, y, classes)
    assert weights.dtype == np.float64 and weights.shape == (len(classes),)
    np.testing.assert_allclose(
        weights, _by_hand(y, classes, FORMULAS[scheme]), rtol=1e-12
    )
    np.testing.assert_array_equal(y, y_before)


def test_effective_number_limits_and_scale():
    counts = np.array([1000, 10, 1])
    near_one = EffectiveNumber(beta=0.999999)(counts)
    inverse = 1 / counts
    np.testing.assert_allclose(near_one, inverse * 3 / inverse.sum(), rtol=1e-3)
    assert EffectiveNumber(0.99)(counts).sum() == pytest.approx(3)


@pytest.mark.parametrize("case", ["strings", "gaps"])
def test_balanced_is_sklearn_bit_for_bit(case):
    y, classes = CASES[case]
    expected = compute_class_weight("balanced", classes=classes, y=y)
    np.testing.assert_array_equal(
        resolve_class_weight("balanced", y, classes), expected
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=300))
def test_balanced_is_sklearn_on_any_labels(labels):
    y = np.array(labels)
    classes = np.unique(y)
    np.testing.assert_array_equal(
        resolve_class_weight("balanced", y, classes),
        compute_class_weight("balanced", classes=classes, y=y),
    )


def test_dict_is_keyed_by_labels_and_left_untouched():
    spec = {"emu": 5.0, "cat": 0.5}
    weights = resolve_class_weight(spec, STRINGS, CASES["strings"][1])
    np.testing.assert_array_equal(weights, [0.5, 1.0, 5.0])
    assert spec == {"emu": 5.0, "cat": 0.5}


def test_schemes_are_printable_cloneable_and_searchable():
    assert repr(EffectiveNumber()) == "EffectiveNumber(beta=0.999)"
    assert repr(PerBatch("inverse")) == "PerBatch(scheme='inverse')"
    assert "start_epoch=10" in repr(Deferred())
    assert repr(InversePower(power=0.5)) == (
        "InversePower(normalize=False, power=0.5, smoothing=0.0)"
    )
    scheme = Deferred(EffectiveNumber(0.9), start_epoch=3)
    copy = clone(scheme)
    assert copy is not scheme and copy.get_params()["scheme__beta"] == 0.9
    clf = WeightedNeuralNetClassifier(class_weight=EffectiveNumber(0.9))
    clf.set_params(class_weight__beta=0.5)
    assert clf.class_weight.beta == 0.5


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("balance", ValueError, "Valid names are"),
        (EffectiveNumber(beta=1.0), ValueError, r"'beta' .* range \[0.0, 1.0\)"),
        (EffectiveNumber(beta=-0.1), ValueError, "beta"),
        (InversePower(smoothing=-1), ValueError, "'smoothing' parameter"),
        (InversePower(power=float("nan")), ValueError, "'power' parameter"),
        (PerBatch(PerBatch()), ValueError, "PerBatch cannot wrap PerBatch"),
        (Deferred(PerBatch()), ValueError, "Deferred cannot wrap PerBatch"),
        (PerBatch(42), TypeError, "'scheme' parameter of PerBatch must be a str"),
        (Deferred("inverse", start_epoch=-1), ValueError, "start_epoch"),
        (Deferred("inverse", start_epoch=1.5), ValueError, "start_epoch"),
        ({"cow": 2.0}, ValueError, "keys that are not classes"),
        ({"cat": -1.0}, ValueError, "negative"),
        ({"cat": 0, "dog": 0, "emu": 0}, ValueError, "zero for every class"),
        (lambda y: [1, 2, 3], TypeError, "must return a dict"),
        (3.0, TypeError, "class_weight must be None"),
    ],
    ids=repr,
)
def test_bad_specs_raise_clear_errors(spec, error, match):
    with pytest.raises(error, match=match):
        resolve_class_weight(spec, STRINGS, CASES["strings"][1])


# ---------------------------------------------------------------------------
# PerBatch and Deferred act during training: record what the criterion sees.
# ---------------------------------------------------------------------------


class RecordingLoss(WeightedCrossEntropyLoss):
    """Records the targets, class weights and per-sample weights of each call."""

    calls = []

    def forward(self, input, target, sample_weight=None):
        RecordingLoss.calls.append(
            (
                target.clone(),
                None if self.weight is None else self.weight.clone(),
                None if sample_weight is None else sample_weight.clone(),
            )
        )
        return super().forward(input, target, sample_weight)


@pytest.fixture(scope="module")
def rare_data():
    return make_imbalanced(
        [0.9], ["neg", "pos"], 120, 5, n_informative=2, n_redundant=2, flip_y=0
    )


def _inverse_counts(y):
    counts = Counter(y.tolist())
    return [1 / counts["neg"], 1 / counts["pos"]]


def _fit_recording(X, y, **params):
    RecordingLoss.calls = []
    clf = WeightedNeuralNetClassifier(
        criterion=RecordingLoss, lr=0.01, random_state=0, **params
    ).fit(X, y)
    return clf, list(RecordingLoss.calls)


def test_per_batch_weights_come_from_each_batch(rare_data):
    X, y = rare_data
    clf, calls = _fit_recording(
        X, y, class_weight=PerBatch("inverse"), batch_size=8, max_epochs=2
    )
    assert len(calls) == 2 * 15
    assert all(weight is None for _, weight, _ in calls)  # the net weighs each batch
    missing_rare = 0
    for target, _, sample_weight in calls:
        counts = Counter(target.tolist())
        expected = [1 / counts[t] for t in target.tolist()]
        np.testing.assert_allclose(sample_weight.numpy(), expected, rtol=1e-6)
        missing_rare += counts[1] == 0
    assert missing_rare > 0  # batches without the rare class: weights stay finite
    losses = [b["train_loss"] for e in clf.net_.history for b in e["batches"]]
    assert np.all(np.isfinite(losses))
    np.testing.assert_allclose(clf.class_weight_, _inverse_counts(y))


def test_per_batch_multiplies_sample_weight(rare_data):
    X, y = rare_data
    sw = np.linspace(0.5, 2.0, len(y))
    clf, _ = _fit_recording(
        X,
        y,
        class_weight=PerBatch("balanced"),
        batch_size=len(y),
        max_epochs=1,
        iterator_train__shuffle=False,
    )
    clf.fit(X, y, sample_weight=sw)
    ((target, _, weighted),) = RecordingLoss.calls[-1:]
    np.testing.assert_array_equal(target.numpy(), (y == "pos").astype(int))
    n_neg, n_pos = Counter(y.tolist())["neg"], Counter(y.tolist())["pos"]
    balanced = np.where(y == "pos", 120 / (2 * n_pos), 120 / (2 * n_neg))
    np.testing.assert_allclose(weighted.numpy(), balanced * sw, rtol=1e-6)


def test_deferred_switches_at_start_epoch(rare_data):
    X, y = rare_data
    clf, calls = _fit_recording(
        X,
        y,
        class_weight=Deferred("inverse", start_epoch=2),
        batch_size=len(y),
        max_epochs=4,
    )
    weights = [weight.numpy() for _, weight, _ in calls]
    assert len(weights) == 4
    np.testing.assert_array_equal(weights[0], [1.0, 1.0])
    np.testing.assert_array_equal(weights[1], [1.0, 1.0])
    np.testing.assert_allclose(weights[2], _inverse_counts(y), rtol=1e-6)
    np.testing.assert_allclose(weights[3], _inverse_counts(y), rtol=1e-6)
    np.testing.assert_allclose(clf.class_weight_, _inverse_counts(y))
    assert all(sw is None for _, _, sw in calls)


def test_weights_follow_the_y_of_each_fit(rare_data):
    X, y = rare_data
    clf = WeightedNeuralNetClassifier(
        class_weight=EffectiveNumber(0.9), max_epochs=1, random_state=0
    )
    first = clf.fit(X, y).class_weight_
    second = clf.fit(X[:60], y[:60]).class_weight_
    hand = _by_hand(y[:60], clf.classes_, _effective(0.9))
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, hand, rtol=1e-12)
    np.testing.assert_allclose(
        clf.net_.criterion_.weight.numpy(), hand.astype(np.float32)
    )
    assert torch.is_tensor(clf.net_.criterion_.weight)

"""skweighted.calibration: undoing class weights and resampling on fixed arrays."""

import numpy as np
import pytest
from scipy.special import softmax

from skweighted.calibration import shift_prior, unweight_proba

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

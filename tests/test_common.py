"""scikit-learn's estimator checks, run on every public estimator."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_methods_subset_invariance,
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from skweighted import WeightedNeuralNetClassifier

#: Full-batch training (batch larger than any check's data) makes every
#: check deterministic for a given seed; the network is small and trains long
#: enough to pass sklearn's accuracy thresholds.
CHECK_PARAMS = dict(
    lr=0.01, max_epochs=100, batch_size=1024, random_state=0, module__hidden_units=(32,)
)

#: Each entry says why the check cannot hold for this estimator.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "Training runs in float32: fitting with integer sample weights and "
        "fitting on repeated rows sum the same terms in a different order, so "
        "predict_proba agrees to ~1e-6, not to the check's rtol=1e-7 "
        "(test_expected_failures_hold_at_float32_precision checks that)."
    ),
    "check_methods_subset_invariance": (
        "float32 matrix products depend on the batch's row count at the 1e-7 "
        "level, so predicting a subset differs from slicing the full prediction "
        "by ~1e-7 (test_expected_failures_hold_at_float32_precision checks that)."
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "The check passes every name of the signature, the **kwargs catch-all "
        "too, as a parameter: kwargs=-1. A keyword that is neither a parameter "
        "nor routed by a prefix (module__, optimizer__, ...) is refused at once, "
        "with the closest names, like scikit-learn's own set_params; "
        "test_named_parameters_take_any_value_in_init_and_set_params runs the "
        "check on the named parameters."
    ),
}


def _estimators():
    return [WeightedNeuralNetClassifier(**CHECK_PARAMS)]


@parametrize_with_checks(
    _estimators(), expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check",
    [check_sample_weight_equivalence_on_dense_data, check_methods_subset_invariance],
)
def test_expected_failures_hold_at_float32_precision(check, monkeypatch):
    """The two expected failures hold once float32 rounding is allowed for."""
    import sklearn.utils.estimator_checks as ec

    def assert_close(actual, desired, *args, **kwargs):
        kwargs.update(rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(actual, desired, *args[2:], **kwargs)

    monkeypatch.setattr(ec, "assert_allclose", assert_close)
    monkeypatch.setattr(ec, "assert_allclose_dense_sparse", assert_close)
    check("WeightedNeuralNetClassifier", _estimators()[0])


def test_named_parameters_take_any_value_in_init_and_set_params():
    """check_do_not_raise_errors_in_init_or_set_params without ``kwargs``."""
    import inspect

    import numpy as np

    names = [
        name
        for name, p in inspect.signature(WeightedNeuralNetClassifier).parameters.items()
        if p.kind is not p.VAR_KEYWORD
    ]
    for value in [-1, 3.0, "helloworld", np.array([1.0, 4.0]), [1], {}, []]:
        params = {name: value for name in names}
        WeightedNeuralNetClassifier(**params).set_params(**params)

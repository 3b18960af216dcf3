"""Compare class weighting, resampling and threshold moving on one problem.

:func:`compare` cross-validates a set of strategies -- no correction, class
weights, imbalanced-learn samplers, a class-balanced mini-batch sampler,
sampler plus weights, threshold moving -- on the same folds and returns a
tidy table of scores; :class:`Comparison` turns it into a ranked
table, a Markdown summary and a plot.
"""

from ._metrics import (
    ECE_BINS,
    GMEAN_CORRECTION,
    IDEAL_VALUES,
    calibration_intercept_slope,
    default_scoring,
    expected_calibration_error,
    geometric_mean,
    reliability_table,
)
from ._runner import Comparison, compare
from ._strategies import (
    BUILTIN_STRATEGIES,
    DEFAULT_STRATEGIES,
    default_estimator,
    input_kind,
    make_strategies,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "DEFAULT_STRATEGIES",
    "ECE_BINS",
    "GMEAN_CORRECTION",
    "IDEAL_VALUES",
    "Comparison",
    "calibration_intercept_slope",
    "compare",
    "default_estimator",
    "default_scoring",
    "expected_calibration_error",
    "geometric_mean",
    "input_kind",
    "make_strategies",
    "reliability_table",
]

"""Compare class weighting, resampling and threshold moving on one problem.

:func:`compare` cross-validates a set of strategies -- no correction, class
weights, imbalanced-learn samplers, a class-balanced mini-batch sampler,
sampler plus weights, threshold moving -- on the same folds and returns a
tidy table of scores; :class:`Comparison` turns it into a ranked
table, a Markdown summary, an HTML report and plots.

The names load on first use (PEP 562), so that the command line lists the
strategies without loading PyTorch.
"""

import importlib
import sys

#: Public name -> the submodule that defines it.
_LAZY = {
    "BUILTIN_STRATEGIES": "_names",
    "DEFAULT_STRATEGIES": "_names",
    "ECE_BINS": "_metrics",
    "GMEAN_CORRECTION": "_metrics",
    "IDEAL_VALUES": "_metrics",
    "Comparison": "_runner",
    "calibration_intercept_slope": "_metrics",
    "compare": "_runner",
    "default_estimator": "_strategies",
    "default_scoring": "_metrics",
    "expected_calibration_error": "_metrics",
    "geometric_mean": "_metrics",
    "input_kind": "_strategies",
    "make_strategies": "_strategies",
    "reliability_table": "_metrics",
}

__all__ = list(_LAZY)

# The comparison package was first called ``skweighted.compare``, which the
# top-level function of the same name shadowed. ``from skweighted.compare
# import ...`` keeps working through this alias (once the package is loaded:
# ``import skweighted.comparison`` or ``skweighted.compare``); the module is
# ``skweighted.comparison`` and ``skweighted.compare`` is the function.
sys.modules.setdefault(__name__.rsplit(".", 1)[0] + ".compare", sys.modules[__name__])


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

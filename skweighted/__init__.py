"""skweighted: class-imbalance handling for PyTorch networks in scikit-learn.

The public names load on first use (PEP 562 module ``__getattr__``):
``import skweighted`` imports neither PyTorch nor pandas, imbalanced-learn,
matplotlib or the comparison, so the command line answers ``--help`` at once
and an estimator user never pays for the comparison.
"""

import importlib

from ._version import __version__

#: Public name -> the submodule that defines it.
_LAZY = {
    "CNN": "modules",
    "MLP": "modules",
    "BinaryCrossEntropyLoss": "losses",
    "BinaryFocalLoss": "losses",
    "ClassBalancedSampler": "sampling",
    "Deferred": "class_weight",
    "DistributedClassBalancedSampler": "sampling",
    "EffectiveNumber": "class_weight",
    "FocalLoss": "losses",
    "InversePower": "class_weight",
    "LogitAdjustedLoss": "losses",
    "PerBatch": "class_weight",
    "RealWorldWeightCrossEntropyLoss": "losses",
    "WeightedCrossEntropyLoss": "losses",
    "WeightedNeuralNetClassifier": "_classifier",
    "compare": "comparison",
    "load_imbalanced": "datasets",
    "resolve_class_weight": "class_weight",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

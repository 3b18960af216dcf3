"""skweighted: class-imbalance handling for PyTorch networks in scikit-learn."""

import sys

from . import comparison
from ._classifier import WeightedNeuralNetClassifier
from ._version import __version__
from .class_weight import (
    Deferred,
    EffectiveNumber,
    InversePower,
    PerBatch,
    resolve_class_weight,
)
from .comparison import compare
from .datasets import load_imbalanced
from .losses import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    LogitAdjustedLoss,
    RealWorldWeightCrossEntropyLoss,
    WeightedCrossEntropyLoss,
)
from .modules import CNN, MLP
from .sampling import ClassBalancedSampler, DistributedClassBalancedSampler

# The comparison package was first called ``skweighted.compare``, which the
# top-level function of the same name shadowed. ``from skweighted.compare
# import ...`` keeps working through this alias; the module is
# ``skweighted.comparison`` and ``skweighted.compare`` is the function.
sys.modules.setdefault(__name__ + ".compare", comparison)

__all__ = [
    "CNN",
    "MLP",
    "BinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "ClassBalancedSampler",
    "Deferred",
    "DistributedClassBalancedSampler",
    "EffectiveNumber",
    "FocalLoss",
    "InversePower",
    "LogitAdjustedLoss",
    "PerBatch",
    "RealWorldWeightCrossEntropyLoss",
    "WeightedCrossEntropyLoss",
    "WeightedNeuralNetClassifier",
    "__version__",
    "compare",
    "load_imbalanced",
    "resolve_class_weight",
]

"""skweighted: class-imbalance handling for PyTorch networks in scikit-learn."""

from ._classifier import WeightedNeuralNetClassifier
from .class_weight import (
    Deferred,
    EffectiveNumber,
    InversePower,
    PerBatch,
    resolve_class_weight,
)
from .compare import compare
from .datasets import load_imbalanced
from .losses import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    LogitAdjustedLoss,
    RealWorldWeightCrossEntropyLoss,
    WeightedCrossEntropyLoss,
)
from .modules import MLP

__version__ = "0.1.0.dev0"

__all__ = [
    "MLP",
    "BinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "Deferred",
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

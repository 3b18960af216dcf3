"""Saving fitted models safely with skops (and MLflow, which uses skops).

``skops.io.load`` refuses every type it was not told to trust. A fitted
:class:`~skweighted.WeightedNeuralNetClassifier` with skweighted's own
modules, losses, weighting schemes and skorch's default callbacks needs the
types in :data:`SKOPS_TRUSTED_TYPES`; a model with your own module, criterion,
optimizer or callbacks needs those types too (``skops.io.get_untrusted_types``
lists what a file holds).
"""

import torch
from skorch.callbacks import EarlyStopping, EpochTimer, PassthroughScoring
from skorch.dataset import Dataset, ValidSplit
from skorch.history import History

from . import class_weight, losses, modules
from ._build import Plan
from ._classifier import WeightedNeuralNetClassifier
from ._early_stopping import Validation
from ._net import WeightedNet, _PrintLog

__all__ = ["SKOPS_TRUSTED_TYPES"]


def _name(obj):
    return f"{obj.__module__}.{obj.__qualname__}"


def _public_classes(module):
    return [getattr(module, name) for name in module.__all__ if name[0].isupper()]


#: The types a skops file of a skweighted model holds beyond skops' defaults:
#: the estimator and its net, the fit's plan (and its validation rows), every
#: class of :mod:`skweighted.losses`, :mod:`skweighted.class_weight` and
#: :mod:`skweighted.modules`, skorch's default callbacks, history and data
#: loader, its ``EarlyStopping`` callback and ``ValidSplit``, and PyTorch's
#: default optimizer. No function: the epoch log's sink and skorch's optimizer
#: setters are stored by name.
SKOPS_TRUSTED_TYPES = sorted(
    _name(t)
    for t in [
        WeightedNeuralNetClassifier,
        WeightedNet,
        Plan,
        Validation,
        _PrintLog,
        *_public_classes(losses),
        *[c for c in _public_classes(class_weight) if isinstance(c, type)],
        *_public_classes(modules),
        EpochTimer,
        PassthroughScoring,
        EarlyStopping,
        ValidSplit,
        History,
        Dataset,
        torch.utils.data.DataLoader,
        torch.optim.Adam,
    ]
)

"""Whether a prepared fit can train in a stack, and if not, why.

Each check returns a reason in words (shown to the user) or None. What a
stack reproduces: the built-in weighted cross-entropy, fixed or deferred class
weights, ``sample_weight``, any row order (shuffling, samplers, folds,
resampled data), early stopping on the validation loss (each model its own
rows, patience and best weights), Adam/AdamW/SGD with per-model settings, a
module that ``torch.func.vmap`` runs and that holds no batch statistics.
"""

import copy

import numpy as np
import torch
from torch import nn

from .._net import _STOCHASTIC_LAYERS
from ..losses import WeightedCrossEntropyLoss
from ._model import StackedModel, _is_plain_mlp
from ._optim import settings

_FAST_ITERATOR_OPTIONS = {"batch_size", "shuffle"}


def optimizer_kwargs(net):
    """The optimizer's keyword arguments of ``net``, ``lr`` included."""
    return {"lr": net.lr, **net.get_params_for("optimizer")}


def reason(net, plan, X):
    """Why the prepared ``net`` cannot train on ``X`` in a stack (None: it can)."""
    for check in (_warm, _callbacks, _split, _iterator, _criterion, _schedule,
                  _optimizer, _module):  # fmt: skip
        why = check(net, plan, X)
        if why is not None:
            return why
    return None


def _warm(net, plan, X):
    if len(net.history):
        return "warm_start: the fit continues an already trained net"
    return None


def _callbacks(net, plan, X):
    if net.callbacks not in (None, "disable") and len(net.callbacks):
        names = [type(cb[1] if isinstance(cb, tuple) else cb).__name__
                 for cb in net.callbacks]  # fmt: skip
        return f"callbacks {names} need a separate net"
    return None


def _split(net, plan, X):
    if plan.validation is not None:  # early stopping: the net's own split
        if plan.validation.scoring != "loss":
            return (
                f"early stopping on scoring={plan.validation.scoring!r}: a stack "
                "scores its models on their validation loss only"
            )
        return None
    if net.train_split is not None:
        return "train_split: a validation split needs a separate net"
    return None


def _iterator(net, plan, X):
    extra = sorted(set(net.get_params_for("iterator_train")) - _FAST_ITERATOR_OPTIONS)
    if extra:
        return f"iterator_train__{extra[0]}: a custom DataLoader needs a separate net"
    return None


def _criterion(net, plan, X):
    crit = net.criterion_
    if type(crit) is not WeightedCrossEntropyLoss:
        return (
            f"criterion {type(crit).__name__}: only WeightedCrossEntropyLoss is stacked"
        )
    return None


def _schedule(net, plan, X):
    if plan.per_batch is not None:
        return "class_weight=PerBatch(...): weights recomputed from every batch"
    return None


def _optimizer(net, plan, X):
    try:
        settings(net.optimizer, optimizer_kwargs(net), net.device)
    except ValueError as exc:
        return str(exc)
    return None


def _module(net, plan, X):
    if not np.issubdtype(X.dtype, np.floating):
        return (
            f"X is {X.dtype}: the module converts it itself, and a stack takes "
            "float inputs"
        )
    module = net.module_
    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    if frozen:
        return f"parameter {frozen[0]!r} is frozen (requires_grad=False)"
    norms = [type(m).__name__ for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]  # fmt: skip
    if norms:
        return f"{norms[0]} in training mode: batch statistics need a separate net"
    stochastic = [type(m).__name__ for m in module.modules()
                  if isinstance(m, _STOCHASTIC_LAYERS) and m.p > 0]  # fmt: skip
    if stochastic:
        return (
            f"{stochastic[0]}: a stack draws other dropout masks than the "
            "separate fit, so it trains separately"
        )
    if _is_plain_mlp(module):
        return None
    try:
        model = StackedModel([module, copy.deepcopy(module)], torch.device(net.device))
        # torch.tensor copies: X may be read-only
        x = torch.tensor(X[:2], dtype=torch.float32).to(net.device)
        labels = torch.zeros(2, 2, dtype=torch.long, device=net.device)
        model.loss_and_grad(torch.stack([x, x]), labels, torch.ones(2, 2).to(x))
    except Exception as exc:
        return f"torch.func.vmap rejects the module ({type(exc).__name__}: {exc})"
    return None

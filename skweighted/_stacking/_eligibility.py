"""Whether a prepared fit can train in a stack, and if not, why.

Each check returns a reason in words (shown to the user) or None. What a
stack reproduces: an in-memory ``X`` (an array, or a dict of arrays passed
to ``forward`` by name; a Dataset trains separately), the built-in weighted
cross-entropy, fixed or deferred class weights, ``sample_weight``, any row
order (shuffling, samplers, folds, resampled data), early stopping on the
validation loss (each model its own rows, patience and best weights),
Adam/AdamW/SGD with per-model settings, a module that ``torch.func.vmap``
runs (dropout and BatchNorm included), or a convolutional network of the
layers grouped convolutions run (:mod:`._conv`); on a CPU, a convolutional
network that only vmap runs stacks only where that is faster than its
separate fits (:data:`VMAP_CONV_BYTES`).
"""

import copy

import torch
from torch import nn

from .._dropout import OWN_GENERATOR
from .._net import _STOCHASTIC_LAYERS
from . import _conv, _layers, _lr, _memory, _rows
from ._criteria import reason as criterion_reason
from ._model import StackedModel, _is_plain_mlp
from ._optim import settings

_FAST_ITERATOR_OPTIONS = {"batch_size", "shuffle"}
#: On a CPU, ``torch.func.vmap`` over a network with ``Conv2d`` layers is
#: slower than its separate fits once one model's largest activation (one
#: batch) passes this many bytes: 1.2-1.4x faster at 256 KiB (8 x 8 images),
#: 0.7-0.9x at 1 MiB (16 x 16), 0.6-0.8x at 3 MiB (28 x 28), 16 and 32
#: channels, batch 64 (``benchmarks/bench_stacking_conv.py``).
VMAP_CONV_BYTES = 512 << 10


def optimizer_kwargs(net):
    """The optimizer's keyword arguments of ``net``, ``lr`` included."""
    return {"lr": net.lr, **net.get_params_for("optimizer")}


def reason(net, plan, X):
    """Why the prepared ``net`` cannot train on ``X`` in a stack (None: it can)."""
    for check in (_warm, _callbacks, _split, _iterator, _criterion, _optimizer,
                  _module):  # fmt: skip
        why = check(net, plan, X)
        if why is not None:
            return why
    return None


def _warm(net, plan, X):
    if len(net.history):
        return "warm_start: the fit continues an already trained net"
    return None


def _callbacks(net, plan, X):
    return _lr.reason(net, validated=plan.validation is not None)


def _split(net, plan, X):
    if plan.validation is not None:  # early stopping: the net's own split
        return _early_stopping_in_a_stack(net, plan)
    if net.train_split is not None:
        return "train_split: a validation split needs a separate net"
    return None


def _early_stopping_in_a_stack(net, plan):
    """What a stack's validation pass (:class:`._early.EarlyStops`: each
    model's criterion on its validation rows, its layers as in eval mode)
    does not reproduce yet: per-batch weights, a BatchNorm without running
    statistics (which normalises each evaluation batch by its own)."""
    if plan.per_batch is not None:
        return (
            "early stopping with PerBatch weights: a stack's validation loss "
            "uses one set of class weights per epoch"
        )
    layers = [
        type(m).__name__
        for m in net.module_.modules()
        if isinstance(m, _layers.BATCH_NORMS) and not m.track_running_stats
    ]
    if layers:
        return (
            f"early stopping with {layers[0]}(track_running_stats=False): it "
            "normalises each evaluation batch by its own statistics"
        )
    return None


def _iterator(net, plan, X):
    extra = sorted(set(net.get_params_for("iterator_train")) - _FAST_ITERATOR_OPTIONS)
    if extra:
        return f"iterator_train__{extra[0]}: a custom DataLoader needs a separate net"
    return None


def _criterion(net, plan, X):
    return criterion_reason(net.criterion_)


def _optimizer(net, plan, X):
    try:
        settings(net.optimizer, optimizer_kwargs(net), net.device)
    except ValueError as exc:
        return str(exc)
    return None


def _bias_before_batch_norm(module, optimizer):
    """A bias that feeds a BatchNorm directly (the next layer of a
    Sequential) gets a gradient of zero but for rounding; Adam divides the
    rounding by its own size and steps, so the bias (and the running mean)
    follows the rounding of whichever implementation computed it. SGD's
    steps stay of the size of the rounding."""
    if optimizer not in (torch.optim.Adam, torch.optim.AdamW):
        return None
    for parent_name, parent in module.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        layers = list(parent.named_children())
        for (name, layer), (_, after) in zip(layers, layers[1:]):
            bias = getattr(layer, "bias", None)
            if (
                isinstance(layer, nn.Linear | nn.modules.conv._ConvNd)
                and isinstance(bias, nn.Parameter)
                and isinstance(after, nn.modules.batchnorm._BatchNorm)
            ):
                where = f"{parent_name}.{name}" if parent_name else name
                return (
                    f"{type(layer).__name__} {where!r} has a bias that feeds "
                    f"{type(after).__name__}: its gradient is rounding, which Adam "
                    "turns into steps a stack cannot reproduce (bias=False stacks)"
                )
    return None


def _module(net, plan, X):
    module = net.module_
    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    if frozen:
        return f"parameter {frozen[0]!r} is frozen (requires_grad=False)"
    norms = [type(m).__name__ for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and type(m) not in _layers.BATCH_NORMS]  # fmt: skip
    if norms:
        return f"{norms[0]} in training mode: batch statistics need a separate net"
    stochastic = [type(m).__name__ for m in module.modules()
                  if isinstance(m, _STOCHASTIC_LAYERS) and m.p > 0
                  and type(m) not in OWN_GENERATOR]  # fmt: skip
    if stochastic:
        return (
            f"{stochastic[0]}: it draws from torch's global generator, which a "
            "stack cannot split, so it trains separately"
        )
    why = _bias_before_batch_norm(module, net.optimizer)
    if why is not None:
        return why
    keyed = isinstance(X, dict)  # keyword arguments: always through vmap
    if _is_plain_mlp(module) and not keyed:
        return None
    try:
        device = torch.device(net.device)
        model = StackedModel([module, copy.deepcopy(module)], device, keyed=keyed)
        # torch.tensor copies: X may be read-only; integers stay integers
        x = _rows.each(X, lambda a: _probe_rows(a, device))
        labels = torch.zeros(2, 2, dtype=torch.long, device=device)
        c = torch.ones(2, 2, device=device)
        model.loss_and_grad(x, labels, c)
    except Exception as exc:
        return f"torch.func.vmap rejects the module ({type(exc).__name__}: {exc})"
    sample = _rows.each(x, lambda t: t[0])  # one model's two rows
    return _slow_vmap_convolutions(net, sample, _rows.n_rows(X), keyed)


def _slow_vmap_convolutions(net, x, n_rows, keyed=False):
    """A convolutional network the grouped path does not run, whose stack
    would train slower than its separate fits (:data:`VMAP_CONV_BYTES`)."""
    module = net.module_
    if torch.device(net.device).type != "cpu" or not any(
        type(m) is nn.Conv2d for m in module.modules()
    ):
        return None
    if not keyed and _conv.chain(module) is not None:
        return None  # grouped convolutions (a dict X goes through vmap)
    rows = n_rows if net.batch_size in (None, -1) else min(net.batch_size, n_rows)
    _, largest = _memory.activation_bytes(module, x, rows)
    if largest <= VMAP_CONV_BYTES:
        return None
    return (
        f"{type(module).__name__}: its forward is not a chain of the layers "
        "grouped convolutions stack (Conv2d, BatchNorm2d, pooling, activations, "
        "dropout, one flatten, Linear), and torch.func.vmap over convolutions "
        f"with {largest >> 10} KiB of activations per batch trains slower than "
        "separate fits on a CPU"
    )


def _probe_rows(a, device):
    """The first two rows of ``a``, twice, as a stack of two models trains on
    them: ``(2, 2, ...)``, floats as float32, integers as they are."""
    x = _rows.as_input(torch.tensor(a[:2]).to(device))
    return torch.stack([x, x])

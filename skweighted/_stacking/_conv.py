"""Convolutional networks in a stack: the models side by side on the channel
axis.

A stack of ``n`` copies of a convolutional network runs as one network on
``(B, n * C, H, W)`` images: each convolution one grouped convolution
(``groups=n`` times its own), BatchNorm2d one BatchNorm over ``n * C``
channels (each model's own statistics, over its real rows), pooling and
element-wise layers as they are (they act channel by channel); after the
flatten, each model's rows ``(n, B, features)`` go through batched matrix
products. An MLP with BatchNorm1d (a chain of head layers, no convolution)
is that last part alone. Autograd gives the gradient. ``torch.func.vmap``
over the module runs the same arithmetic as ``n`` small convolutions and
spends more around them than in them: slower than the separate fits on a CPU
from 16 x 16 images on. The convolutions take channels-last input
(:data:`CHANNELS_LAST`) and a CPU stack is chunked by its largest activation
(:func:`._memory.max_models`); ``benchmarks/bench_stacking_conv.py``
measures all three choices.

Which modules: those whose forward is a chain of the layers of
:data:`IMAGE_LAYERS` up to one flatten and of :data:`HEAD_LAYERS` after it,
found by tracing the forward with ``torch.fx`` (any ``nn.Sequential`` of
them, the built-in :class:`~skweighted.modules.CNN`, or a module whose
forward calls such layers one after the other). Any other module goes
through ``vmap``.
"""

import operator

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ..modules import as_float
from . import _layers

#: Element-wise layers: the same on any layout.
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU,
                nn.Tanh, nn.Sigmoid, nn.Identity)  # fmt: skip
#: Layers before the flatten, on ``(B, n * C, H, W)``.
IMAGE_LAYERS = (*_ELEMENTWISE, nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d,
                nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
                nn.Dropout, nn.Dropout2d)  # fmt: skip
#: Layers after the flatten, on ``(n, B, features)``.
HEAD_LAYERS = (*_ELEMENTWISE, nn.Linear, nn.BatchNorm1d, nn.Dropout)
#: Functions a forward may call between the layers: the activation (as
#: ``nn.ReLU``) and the flatten (as ``nn.Flatten()``).
_RELU = {F.relu, torch.relu, "relu"}
_FLATTEN = {torch.flatten, "flatten"}


def chain(module):
    """The layers ``module``'s forward runs one after the other, as
    ``(name, layer)`` (a flatten or a functional ReLU as ``(None, nn.Flatten())``
    or ``(None, nn.ReLU())``, the built-in CNN's conversion of integer input as
    ``(None, as_float)``), if it is a network the grouped path runs; else None."""
    layer_kinds = {type(m) for m in module.modules()}
    if not layer_kinds & {nn.Conv2d, nn.BatchNorm1d}:
        return None  # an MLP without BatchNorm: the MLP kernel or vmap
    try:
        graph = torch.fx.Tracer(autowrap_functions=(as_float,)).trace(module)
    except Exception:  # control flow on the input, or anything fx cannot trace
        return None
    layers, previous, batch = [], None, {}  # batch: nodes giving the batch size
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                return None  # more than one input
            previous = node
            continue
        inputs = [a for a in (*node.args, *node.kwargs.values())
                  if isinstance(a, torch.fx.Node)]  # fmt: skip
        if _batch_size(node, previous, batch):
            batch[node] = node.op == "call_function" and node.target is getattr
            continue  # x.size(0), x.shape[0]: for a flatten x.view(n, -1)
        if [a for a in inputs if a not in batch] != [previous] or node.op == "output":
            if node.op == "output" and inputs == [previous]:
                break
            return None  # not a chain
        step = _step(module, node, batch)
        if step is None:
            return None
        layers.append(step)
        previous, batch = node, {}
    return layers if _ordered(layers) else None


def _batch_size(node, previous, batch):
    """Whether ``node`` is ``previous.size(0)``, ``previous.shape`` (then
    ``batch`` marks it True) or ``previous.shape[0]``."""
    args = node.args
    if node.op == "call_method" and node.target == "size":
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
        return args[0] is previous and dim == 0
    if node.op == "call_function" and node.target is getattr:
        return args == (previous, "shape")
    if node.op == "call_function" and node.target is operator.getitem:
        return batch.get(args[0]) is True and args[1] == 0
    return False


def _step(module, node, batch):
    """``(name, layer)`` of one node of the traced forward, or None."""
    if node.op == "call_module":
        layer = module.get_submodule(node.target)
        if type(layer) is nn.Flatten:
            whole = (layer.start_dim, layer.end_dim) == (1, -1)
            return (None, layer) if whole else None
        return (node.target, layer) if _plain(layer) else None
    if node.op == "call_function" and node.target is as_float:
        return (None, as_float)
    if node.op not in ("call_function", "call_method"):
        return None
    args, kwargs = node.args, node.kwargs
    if node.target in _RELU and len(args) == 1 and not kwargs.get("inplace"):
        return None, nn.ReLU()
    if node.target in _FLATTEN:
        dims = {**dict(zip(("start_dim", "end_dim"), args[1:])), **kwargs}
        if (dims.get("start_dim", 0), dims.get("end_dim", -1)) == (1, -1):
            return None, nn.Flatten()
    if node.target in ("view", "reshape") and len(args) == 3 and not kwargs:
        if batch.get(args[1]) is False and args[2] == -1:  # x.view(x.size(0), -1)
            return None, nn.Flatten()
    return None


def _plain(layer):
    if type(layer) is nn.Conv2d:
        return layer.padding_mode == "zeros"
    if type(layer) in (nn.MaxPool2d, nn.AdaptiveMaxPool2d):
        return not layer.return_indices
    return type(layer) in (*IMAGE_LAYERS, *HEAD_LAYERS)


def _ordered(layers):
    """Image layers, one flatten, then head layers; as_float first if at all."""
    kinds = [layer for _, layer in layers]
    if as_float in kinds[1:]:
        return False
    flat = [i for i, layer in enumerate(kinds) if type(layer) is nn.Flatten]
    if not flat:  # an MLP: head layers on (n, B, features) throughout
        return all(type(k) in HEAD_LAYERS for k in kinds)
    if len(flat) != 1:
        return False
    before, after = kinds[: flat[0]], kinds[flat[0] + 1 :]
    return all(k is as_float or type(k) in IMAGE_LAYERS for k in before) and all(
        type(k) in HEAD_LAYERS for k in after
    )


class GroupedConvNet:
    """The forward of a stack of the network of ``layers`` (:func:`chain`).

    ``__call__(params, buffers, X, step, training=True)``: ``X`` of shape
    ``(n, B, C, H, W)``, ``params`` and ``buffers`` stacked ``(n, ...)``,
    ``step`` the step's dropout noise by layer name and its real rows (under
    :data:`_layers.VALID`, ``(n, B)``), as ``StackedModel.logits`` draws
    them; ``training=False``: as in eval mode (BatchNorm on its running
    statistics, which stay as they are); returns the logits ``(n, B, K)``.
    """

    def __init__(self, layers):
        self.layers = layers
        #: images first (convolutions, then one flatten), or an MLP's rows
        self.images = any(type(layer) is nn.Flatten for _, layer in layers)

    def __call__(self, params, buffers, X, step, training=True):
        n, B = X.shape[:2]
        valid = step.get(_layers.VALID)
        if valid is not None and bool(valid.all()):
            valid = None  # no padding: PyTorch's own batch norm kernel
        image = self.images
        if image:
            x = X.transpose(0, 1).reshape(B, n * X.shape[2], *X.shape[3:])
        else:  # (n, B, features), as the head takes them
            x = X
        for name, layer in self.layers:
            kind = type(layer)
            if layer is as_float:
                x = as_float(x)
            elif kind is nn.Flatten:
                x, image = x.reshape(B, n, -1).transpose(0, 1), False
            elif kind is nn.Conv2d:
                x = _conv(layer, params, name, x, n)
            elif kind is nn.Linear:
                W, b = params[f"{name}.weight"], params.get(f"{name}.bias")
                x = (
                    torch.bmm(x, W.transpose(1, 2))
                    if b is None
                    else torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))
                )
            elif kind in _layers.BATCH_NORMS:
                x = _batch_norm(
                    layer, name, params, buffers, x, n, valid, image, training
                )
            elif kind in (nn.Dropout, nn.Dropout2d):
                noise = step.get(name)
                if noise is not None:  # (n, B, *per-sample noise shape)
                    if image:
                        noise = noise.transpose(0, 1).reshape(B, -1, *noise.shape[3:])
                    x = x * noise
            else:  # element-wise, pooling: channel by channel
                x = layer(x)
        return x


#: Convolutions on channels-last input: faster for every shape measured on a
#: CPU, 1.4-1.8x on a stack of 12 CNNs at 8 x 8 to 28 x 28
#: (``benchmarks/bench_stacking_conv.py``).
CHANNELS_LAST = True


def _conv(layer, params, name, x, n):
    w = params[f"{name}.weight"]
    b = params.get(f"{name}.bias")
    if CHANNELS_LAST:
        x = x.contiguous(memory_format=torch.channels_last)
    return F.conv2d(
        x,
        w.reshape(-1, *w.shape[2:]),
        None if b is None else b.reshape(-1),
        layer.stride,
        layer.padding,
        layer.dilation,
        groups=n * layer.groups,
    )


def _batch_norm(layer, name, params, buffers, x, n, valid, image, training):
    """BatchNorm of each model over its own rows (training) or on its own
    running statistics (``training=False`` and statistics kept): ``x`` of
    shape ``(B, n * C, ...)`` (image) or ``(n, B, C)`` (head)."""
    weight = params.get(f"{name}.weight")
    bias = params.get(f"{name}.bias")
    running = layer.track_running_stats
    mean_buf = buffers[f"{name}.running_mean"] if running else None
    var_buf = buffers[f"{name}.running_var"] if running else None
    if running and not training:  # eval mode: nothing is updated
        return _wide_batch_norm(x, n, image, layer, mean_buf, var_buf, weight, bias)
    if running:
        count_buf = buffers[f"{name}.num_batches_tracked"]
        with torch.no_grad():
            count_buf.add_(1)
    if valid is None and (layer.momentum is not None or not running):
        # every row real, one momentum: PyTorch's kernel on n * C channels
        # (the running statistics' views are updated in place)
        return _wide_batch_norm(
            x, n, image, layer, mean_buf, var_buf, weight, bias, training=True
        )
    # (B, n, C, *spatial), each model's real rows weighted 1
    g = x.view(x.shape[0], n, -1, *x.shape[2:]) if image else x.transpose(0, 1)
    B = g.shape[0]
    rows = (
        torch.ones(n, B, dtype=g.dtype, device=g.device)
        if valid is None
        else valid.to(g.dtype)
    )
    spatial = (1,) * (g.ndim - 3)
    v = rows.t().reshape(B, n, 1, *spatial)
    dims = (0, *range(3, g.ndim))
    count = rows.sum(1, keepdim=True) * g[0, 0, 0].numel()  # (n, 1)
    mean = (g * v).sum(dims) / count  # (n, C)
    centred = g - mean.view(1, n, -1, *spatial)
    var = (centred.square() * v).sum(dims) / count
    if running:
        with torch.no_grad():
            momentum = layer.momentum
            if momentum is None:  # cumulative average
                momentum = 1.0 / count_buf.to(g.dtype).unsqueeze(1)
            unbiased = var.detach() * count / (count - 1).clamp_min(1)
            mean_buf.mul_(1 - momentum).add_(mean.detach() * momentum)
            var_buf.mul_(1 - momentum).add_(unbiased * momentum)
    out = centred * torch.rsqrt(var + layer.eps).view(1, n, -1, *spatial)
    if weight is not None:
        out = out * weight.view(1, n, -1, *spatial) + bias.view(1, n, -1, *spatial)
    return out.reshape(x.shape) if image else out.transpose(0, 1)


def _wide_batch_norm(x, n, image, layer, mean, var, weight, bias, training=False):
    """PyTorch's batch norm over all ``n * C`` channels of the stack at once
    (``mean`` and ``var``: the running statistics ``(n, C)``, updated in
    place when ``training``; None without them)."""
    wide = x if image else x.transpose(0, 1).reshape(x.shape[1], -1)
    out = F.batch_norm(
        wide,
        None if mean is None else mean.view(-1),
        None if var is None else var.view(-1),
        None if weight is None else weight.reshape(-1),
        None if bias is None else bias.reshape(-1),
        training,
        layer.momentum or 0.0,
        layer.eps,
    )
    return out if image else out.view(x.shape[1], n, -1).transpose(0, 1)

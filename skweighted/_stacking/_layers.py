"""Layers whose forward in a stack needs what only the stack knows.

The generic path runs every model's module through ``torch.func.vmap`` on a
batch padded to the stack's widest batch. Two kinds of layer would see the
padding or the stack's randomness there, and are replaced, in the stack's
template only, by a forward that reads the step's per-model inputs from
:class:`StepInputs`:

- dropout (``Dropout``, ``Dropout1d/2d/3d``): multiplied by the noise its
  separate fit draws at this step (:class:`Steps`, from the model's
  own generator, as :mod:`skweighted._dropout` draws it);
- BatchNorm (``BatchNorm1d/2d/3d``) in training mode: the batch's mean and
  variance over the model's real rows only, and its running statistics
  updated from them as PyTorch updates them (each model's own, in the
  stack's buffers).

LayerNorm and GroupNorm normalise each sample on its own: they need nothing.

One case a stack cannot reproduce: a bias (or any parameter) that feeds a
normalisation layer directly, such as ``Linear(bias=True) -> BatchNorm1d``.
The normalisation removes it, so its gradient is 0 but for rounding; Adam
divides that rounding by its own square root and takes full steps, so the
bias, and with it the running mean, follows the rounding of whichever
implementation computed it. The model trains the same (the losses agree);
its eval-mode predictions differ by about ``lr``. Under Adam such a fit
trains separately (``_eligibility._bias_before_batch_norm``); leave that
bias out (``bias=False``), as is usual before a normalisation layer.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .. import _dropout
from ..sampling import GLOBAL, epoch_seed
from . import _rows
from ._schedule import permute

#: The key of a step's real rows among its inputs (no layer has this name).
VALID = " valid"
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class StepInputs:
    """What the replaced layers of one step read: ``noise`` (layer name ->
    this model's noise), ``valid`` (this model's real rows, ``(B,)``) and
    ``training`` (False: evaluation, a BatchNorm normalises with its running
    statistics, as in eval mode)."""

    def __init__(self):
        self.noise, self.valid, self.training = {}, None, True


def patch(template, inputs):
    """Replace the forward of ``template``'s dropout and BatchNorm layers
    by ones that read ``inputs`` (a :class:`StepInputs`)."""
    for name, layer in _dropout.layers(template):
        layer.forward = _dropout_forward(name, inputs)
    for layer in template.modules():
        if type(layer) in BATCH_NORMS and layer.training:
            layer.forward = _batch_norm_forward(layer, inputs)


def _dropout_forward(name, inputs):
    def forward(x):
        noise = inputs.noise.get(name)
        return x if noise is None else x * noise

    return forward


def _batch_norm_forward(layer, inputs):
    def forward(x):
        if not inputs.training:  # as in eval mode
            return F.batch_norm(
                x, layer.running_mean, layer.running_var, layer.weight,
                layer.bias, False, 0.0, layer.eps,
            )  # fmt: skip
        valid = inputs.valid
        if valid is None:  # no rows given: PyTorch's own forward
            return type(layer).forward(layer, x)
        v = valid.view(-1, *(1,) * (x.ndim - 1))  # a weight per row
        dims = [0, *range(2, x.ndim)]
        count = valid.sum() * x[0, 0].numel()
        mean = (x * v).sum(dims) / count
        centred = x - _channel(mean, x)
        var = (centred.square() * v).sum(dims) / count
        if layer.track_running_stats:
            _update_running(layer, mean, var, count)
        out = centred * _channel(torch.rsqrt(var + layer.eps), x)
        if layer.affine:
            out = out * _channel(layer.weight, x) + _channel(layer.bias, x)
        return out

    return forward


def _channel(t, x):
    return t.view(1, -1, *(1,) * (x.ndim - 2))


def _update_running(layer, mean, var, count):
    """PyTorch's update: exponential average (or cumulative, momentum None)
    with the unbiased variance."""
    with torch.no_grad():
        layer.num_batches_tracked.add_(1)
        momentum = layer.momentum
        if momentum is None:
            momentum = 1.0 / layer.num_batches_tracked
        unbiased = var.detach() * count / (count - 1).clamp_min(1)
        layer.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
        layer.running_var.mul_(1 - momentum).add_(unbiased * momentum)


class Steps:
    """Per step, each model's real rows, and its dropout noise drawn as its
    separate fit draws it: from its own generator, seeded at each of its
    epochs, layer after layer, for the rows of its batch.

    Parameters
    ----------
    module : torch.nn.Module
        The stack's architecture.
    sample : Tensor or dict of Tensor
        Two input rows (to find each dropout layer's input shape).
    seeds : list of int or None
        Per model, its fit's seed.
    steps : list of list of int
        Per model, its steps per epoch.
    sizes : IntTensor of shape (M, S)
        The rows of each model's batch at each step, filled in before the
        step.
    width : int
        The stack's batch width.
    device : torch.device
    """

    def __init__(self, module, sample, seeds, steps, sizes, width, device):
        self.layers = _dropout.layers(module)
        self.batch_norms = any(type(m) in BATCH_NORMS for m in module.modules())
        self.shapes = _input_shapes(module, sample) if self.layers else []
        # no seed (random_state=None): any seed draws noise as likely as a
        # separate fit's
        self.seeds = [
            int(torch.randint(2**31 - 1, ())) if s is None else s for s in seeds
        ]
        self.sizes, self.width = sizes, width
        self.device = device
        self.epoch_starts = []
        for model_steps in steps:
            starts, s = {}, 0
            for e, n in enumerate(model_steps):
                starts[s] = e
                s += n
            self.epoch_starts.append(starts)
        self.generators = [torch.Generator(device) for _ in seeds]

    def reorder(self, order):
        """Put model ``order[i]``'s seed and generator at position ``i`` (the
        caller reorders :attr:`sizes`, which it shares)."""
        permute(self, ("seeds", "epoch_starts", "generators"), order)

    def valid(self, step, n):
        """``(n, width)``: 1 for the real rows of each model's batch (None
        when no layer needs them)."""
        if not self.batch_norms:
            return None
        rows = torch.arange(self.width, device=self.device)
        sizes = self.sizes[:n, step].to(self.device)
        return (rows < sizes.unsqueeze(1)).to(torch.float32)

    def noise(self, step, n):
        """Layer name -> noise ``(n, width, ...)`` of the first ``n`` models
        at ``step`` (padding rows 0)."""
        if not self.layers:
            return {}
        out = {
            name: torch.zeros(
                (n, self.width, *_dropout.noise_shape(layer, (1, *shape))[1:]),
                device=self.device,
            )
            for (name, layer), shape in zip(self.layers, self.shapes)
        }
        sizes = self.sizes[:n, step].tolist()
        for m in range(n):
            g = self.generators[m]
            epoch = self.epoch_starts[m].get(step)
            if epoch is not None:
                g.manual_seed(epoch_seed(self.seeds[m], epoch, GLOBAL))
            for (name, layer), shape in zip(self.layers, self.shapes):
                noise_shape = _dropout.noise_shape(layer, (sizes[m], *shape))
                out[name][m, : sizes[m]] = _dropout.noise(
                    layer, noise_shape, g, self.device
                )
        return out


def _input_shapes(module, sample):
    """The per-sample input shape of each dropout layer of ``module`` on
    ``sample``, in the order of :func:`skweighted._dropout.layers`."""
    module = copy.deepcopy(module).eval()  # its statistics stay as they are
    layers = [layer for _, layer in _dropout.layers(module)]
    shapes = {}

    def record(layer, args):  # returns None: the input goes on unchanged
        shapes.setdefault(layer, args[0].shape[1:])

    handles = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            _rows.call(module, sample)
    finally:
        for h in handles:
            h.remove()
    return [tuple(shapes[layer]) for layer in layers]

"""Dropout that draws from the fit's own generator.

PyTorch's dropout layers draw their masks from torch's process-wide
generator, which fits in threads would share (and take turns on) and which a
stack of fits cannot split. So while a fit trains, each dropout layer of its
module draws its noise from the fit's own :class:`torch.Generator`, seeded
at each epoch by :func:`~skweighted.sampling.epoch_seed`; in eval mode the
layers are PyTorch's, untouched. The noise is what PyTorch's CPU kernel
multiplies by, ``bernoulli(1 - p) / (1 - p)``, one value per element
(:class:`~torch.nn.Dropout`) or per channel (``Dropout1d/2d/3d``). A stacked
fit draws the same noise in the same order from its own generator
(:class:`~skweighted._stacking._layers.Steps`), so it equals its
separate fit.

``AlphaDropout`` and ``FeatureAlphaDropout`` keep torch's generator (seeded
per epoch under a lock by ``WeightedNet``), and do not stack.
"""

import contextlib

import torch
from torch import nn

#: Layers whose noise comes from the fit's generator.
OWN_GENERATOR = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def layers(module):
    """``(name, layer)`` of the dropout layers of ``module`` that draw (p > 0),
    in the order ``named_modules`` lists them."""
    return [
        (name, m)
        for name, m in module.named_modules()
        if type(m) in OWN_GENERATOR and m.p > 0
    ]


def noise_shape(layer, shape):
    """The shape of the noise for an input of ``shape`` (batch first): the
    input's for ``Dropout``, one per channel for ``Dropout1d/2d/3d``."""
    if type(layer) is nn.Dropout:
        return tuple(shape)
    return (*shape[:2], *(1,) * (len(shape) - 2))


def noise(layer, shape, generator, device):
    """``bernoulli(1 - p) / (1 - p)`` of ``shape``, drawn from ``generator``."""
    keep = 1.0 - layer.p
    out = torch.empty(shape, device=device)
    if keep == 0:
        return out.zero_()
    return out.bernoulli_(keep, generator=generator).div_(keep)


def _forward(layer, generator):
    def forward(x):
        if not layer.training:
            return type(layer).forward(layer, x)
        return x * noise(layer, noise_shape(layer, x.shape), generator, x.device)

    return forward


@contextlib.contextmanager
def drawing_from(module, generator):
    """Inside the block, the dropout layers of ``module`` draw from
    ``generator`` (their ``forward`` replaced on the instances, so other
    modules, in other threads too, are untouched)."""
    patched = layers(module)
    for _, layer in patched:
        layer.forward = _forward(layer, generator)
    try:
        yield
    finally:
        for _, layer in patched:
            vars(layer).pop("forward", None)

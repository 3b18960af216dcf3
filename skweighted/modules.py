"""The default networks, sized at fit time from the data.

:class:`~skweighted.WeightedNeuralNetClassifier` with ``module=None`` builds
a :class:`CNN` for image-shaped samples (``X`` of shape ``(N, C, H, W)``) and
an :class:`MLP` for everything else (a table, or samples of any other shape,
which the MLP flattens). Both take input of any numeric dtype: integers and
booleans are converted to float32 one batch at a time, and ``uint8`` input is
read as 8-bit images and scaled to ``[0, 1]`` (torchvision's ``ToTensor``
convention), so ``uint8`` images never need a float32 copy of the whole data.
"""

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CNN", "MLP"]


def as_float(X):
    """``X`` as float32: ``uint8`` scaled by 1/255, other integers converted."""
    if X.is_floating_point():
        return X
    if X.dtype == torch.uint8:
        return X.float().div_(255.0)
    return X.float()


def _hidden(units):
    return tuple(units) if isinstance(units, Sequence) else (units,)


class MLP(nn.Module):
    """A fully connected network: ``Linear -> activation [-> Dropout]`` blocks.

    :class:`~skweighted.WeightedNeuralNetClassifier` builds this module when
    ``module=None`` and the samples are not images, filling in
    ``n_features_in`` (the number of values per sample) and ``n_classes`` from
    the data. Samples with more than one dimension are flattened; integer
    input is converted to float32 (``uint8`` scaled to ``[0, 1]``). The output
    layer returns raw logits; the loss applies the softmax.

    Parameters
    ----------
    n_features_in : int
        Number of input values per sample.
    n_classes : int
        Number of output units (the number of classes).
    hidden_units : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : type of torch.nn.Module, default=torch.nn.ReLU
        Activation between layers.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Examples
    --------
    >>> import torch
    >>> net = MLP(n_features_in=4, n_classes=3, hidden_units=(8, 8))
    >>> net(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    >>> MLP(n_features_in=12, n_classes=2)(torch.zeros(5, 3, 4)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        n_features_in,
        n_classes,
        hidden_units=(100,),
        activation=nn.ReLU,
        dropout=0.0,
    ):
        super().__init__()
        layers = []
        width = n_features_in
        for units in _hidden(hidden_units):
            layers += [nn.Linear(width, units), activation()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(as_float(X).flatten(1))


class CNN(nn.Module):
    """A small convolutional network for images of shape ``(C, H, W)``.

    Each of ``channels`` adds ``Conv2d(kernel_size, same padding) -> ReLU``
    followed by ``MaxPool2d(2)`` while the image is at least 2 pixels wide;
    an adaptive average pool to at most 4×4 then feeds
    ``Linear -> ReLU [-> Dropout]`` blocks and an output ``Linear`` (raw
    logits), as :class:`MLP` does. Integer input is
    converted to float32 one batch at a time, ``uint8`` scaled to ``[0, 1]``.
    :class:`~skweighted.WeightedNeuralNetClassifier` builds it when
    ``module=None`` and ``X`` has shape ``(N, C, H, W)``, filling in
    ``input_shape`` and ``n_classes`` from the data.

    Parameters
    ----------
    input_shape : tuple of 3 int
        ``(C, H, W)``: channels, height, width of one image.
    n_classes : int
        Number of output units.
    channels : sequence of int, default=(16, 32)
        Output channels of each convolution.
    kernel_size : int, default=3
        Side of the square convolution kernels.
    hidden_units : int or sequence of int, default=(64,)
        Width of each fully connected hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Examples
    --------
    >>> import torch
    >>> net = CNN(input_shape=(1, 8, 8), n_classes=10)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> net(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        input_shape,
        n_classes,
        channels=(16, 32),
        kernel_size=3,
        hidden_units=(64,),
        dropout=0.0,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"CNN needs input_shape=(C, H, W), got {tuple(input_shape)}."
            )
        c, h, w = (int(v) for v in input_shape)
        blocks = []
        for out in _hidden(channels):
            blocks += [nn.Conv2d(c, out, kernel_size, padding=kernel_size // 2)]
            blocks.append(nn.ReLU())
            if min(h, w) >= 2:
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        h, w = min(h, 4), min(w, 4)
        blocks.append(nn.AdaptiveAvgPool2d((h, w)))
        self.features = nn.Sequential(*blocks)
        head, width = [nn.Flatten()], c * h * w
        for units in _hidden(hidden_units):
            head += [nn.Linear(width, units), nn.ReLU()]
            if dropout:
                head.append(nn.Dropout(dropout))
            width = units
        head.append(nn.Linear(width, n_classes))
        self.head = nn.Sequential(*head)

    def forward(self, X):
        return self.head(self.features(as_float(X)))


def default_module(sample_shape):
    """The default network class for samples of ``sample_shape``.

    :class:`CNN` for ``(C, H, W)`` samples, :class:`MLP` for any other shape.
    """
    return CNN if len(tuple(sample_shape)) == 3 else MLP

"""The default network: a multi-layer perceptron sized at fit time."""

from collections.abc import Sequence

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """A fully connected network: ``Linear -> activation [-> Dropout]`` blocks.

    :class:`~skweighted.WeightedNeuralNetClassifier` builds this module when
    ``module=None``, filling in ``n_features_in`` and ``n_classes`` from the
    data. The output layer returns raw logits; the loss applies the softmax.

    Parameters
    ----------
    n_features_in : int
        Number of input features.
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
        if not isinstance(hidden_units, Sequence):
            hidden_units = (hidden_units,)
        layers = []
        width = n_features_in
        for units in hidden_units:
            layers += [nn.Linear(width, units), activation()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)

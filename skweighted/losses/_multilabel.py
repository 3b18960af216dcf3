r"""Binary cross-entropy per label for multi-label targets, weighted per label."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._base import _NORMALIZATIONS, _denominator, _float_buffer, _reduce


class MultiLabelBCELoss(nn.Module):
    r"""Binary cross-entropy per label, with per-label class weights.

    For multi-label targets (a 0/1 indicator matrix ``Y`` of shape
    ``(n_samples, n_labels)``): the module returns one logit :math:`z_{ij}`
    per sample and label, and every entry is its own binary problem,

    .. math:: \ell_{ij} = -[y_{ij}\log\sigma(z_{ij})
              + (1 - y_{ij})\log(1 - \sigma(z_{ij}))],

    weighted by :math:`v_{ij} = W_{j, y_{ij}}\, s_i` (the weight of a
    negative or positive entry of label :math:`j`, times the sample weight)
    and reduced as set by ``normalization``:

    - ``"mean"`` (default): :math:`\sum_{ij} v_{ij}\ell_{ij} / (N L)`, the
      reduction of :class:`torch.nn.BCEWithLogitsLoss`. With
      ``W[:, 0] = 1`` and ``W[:, 1] = p`` (the form ``class_weight``
      schemes give, see
      :func:`~skweighted.class_weight.resolve_label_weight`) it equals
      ``BCEWithLogitsLoss(pos_weight=p)``;
    - ``"weighted_mean"``: :math:`\sum_{ij} v_{ij}\ell_{ij} / \sum_{ij}
      v_{ij}`.

    Each :math:`\ell_{ij}` is computed from the logit
    (``binary_cross_entropy_with_logits``), never as ``log(p + eps)``.

    Parameters
    ----------
    weight : array-like of shape (n_labels, 2), default=None
        ``weight[j, 0]`` weighs a negative entry of label ``j``,
        ``weight[j, 1]`` a positive one. ``None`` weighs every entry 1.
    pos_weight : array-like of shape (n_labels,), default=None
        Shortcut for ``weight=[[1, p] for p in pos_weight]``, PyTorch's
        ``pos_weight``; give ``weight`` or ``pos_weight``, not both.
    normalization : {"mean", "weighted_mean"}, default="mean"
        How a batch's weighted losses are reduced to one number.

    Attributes
    ----------
    multilabel : bool
        ``True``: the estimator uses this loss for a multi-label ``y``.

    Examples
    --------
    >>> import torch
    >>> loss = MultiLabelBCELoss(pos_weight=[4.0, 1.0, 9.0])
    >>> loss.weight
    tensor([[1., 4.],
            [1., 1.],
            [1., 9.]])
    >>> z = torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.8, -2.0]])
    >>> y = torch.tensor([[1, 0, 1], [0, 1, 0]])
    >>> torch_loss = torch.nn.BCEWithLogitsLoss(pos_weight=loss.pos_weight)
    >>> bool(torch.isclose(loss(z, y), torch_loss(z, y.float())))
    True
    >>> loss.predict_proba(z).round(decimals=3)  # one probability per label
    tensor([[0.6220, 0.2690, 0.8810],
            [0.4260, 0.6900, 0.1190]], dtype=torch.float64)
    """

    multilabel = True

    def __init__(self, weight=None, *, pos_weight=None, normalization="mean"):
        super().__init__()
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {list(_NORMALIZATIONS)}, "
                f"got {normalization!r}."
            )
        if weight is not None and pos_weight is not None:
            raise ValueError("Pass weight or pos_weight, not both.")
        if pos_weight is not None:
            p = np.asarray(pos_weight, dtype=np.float64).reshape(-1)
            weight = np.column_stack([np.ones_like(p), p])
        self.normalization = normalization
        self.register_buffer("weight", _float_buffer(weight))

    @property
    def pos_weight(self):
        """``weight[:, 1] / weight[:, 0]``: PyTorch's ``pos_weight`` per label."""
        if self.weight is None:
            return None
        return self.weight[:, 1] / self.weight[:, 0]

    def n_outputs(self, n_labels):
        """One logit per label."""
        return n_labels

    def forward(self, input, target, sample_weight=None):
        """The batch loss; ``target`` is the 0/1 indicator matrix of the batch."""
        target = target.to(input.dtype).reshape(input.shape)
        losses = F.binary_cross_entropy_with_logits(input, target, reduction="none")
        return _reduce(
            losses.reshape(-1), self._weights(target, sample_weight), self.normalization
        )

    def normalizer(self, target, sample_weight=None):
        """What the batch loss divides ``sum(w * l)`` by: the sum of the
        weights under ``"weighted_mean"``, else the number of entries
        (samples times labels)."""
        target = target.to(torch.float32)
        v = self._weights(target, sample_weight)
        return _denominator(target.numel(), v, self.normalization, target.device)

    def _weights(self, target, sample_weight):
        """The weight of every entry, flattened (None: all 1)."""
        v = None
        if self.weight is not None:
            w = self.weight.to(target.dtype)
            v = w[:, 0] + target * (w[:, 1] - w[:, 0])
        if sample_weight is not None:
            s = sample_weight.to(target.dtype).reshape(-1, 1)
            v = s.expand_as(target) if v is None else v * s
        return None if v is None else v.reshape(-1)

    def predict_proba(self, logits):
        """The probability of each label, ``sigmoid(z)``, in float64 (shape
        ``(n_samples, n_labels)``; float64 keeps it below 1 up to ``z = 36``)."""
        return torch.sigmoid(logits.to(torch.float64))

    def decision(self, proba):
        """The indicator matrix: label ``j`` is predicted where its probability
        exceeds 0.5 (the logit is positive)."""
        return (np.asarray(proba) > 0.5).astype(np.int64)

    def extra_repr(self):
        return f"normalization={self.normalization!r}"

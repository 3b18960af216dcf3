"""Imbalance-aware criteria.

Every criterion here is a ``torch.nn.Module`` that

- holds its class weights as a registered buffer ``weight`` (so moving the
  criterion to a device moves the weights, the way
  :class:`torch.nn.CrossEntropyLoss` does);
- takes ``forward(input, target, sample_weight=None)``, where ``input`` are
  the module's raw outputs (logits), ``target`` the encoded labels
  ``0..K-1`` and ``sample_weight`` optional per-sample weights;
- knows how to turn logits into class probabilities (``predict_proba``).
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WeightedCrossEntropyLoss"]

_NORMALIZATIONS = ("weighted_mean", "mean")


def _reduce(losses, weights, normalization):
    """Reduce per-sample losses with per-sample weights (or None)."""
    if weights is None:
        return losses.mean()
    total = (weights * losses).sum()
    if normalization == "mean":
        return total / losses.shape[0]
    # sum(w * l) / sum(w); a batch whose weights are all zero gives 0, not NaN.
    return total / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)


def _sample_weights(class_weight, target, sample_weight):
    """Per-sample weight = class weight of the sample's class * sample weight."""
    w = None if class_weight is None else class_weight[target]
    if sample_weight is not None:
        w = sample_weight if w is None else w * sample_weight
    return w


class _ClassWeightedLoss(nn.Module):
    """Shared plumbing: the ``weight`` buffer and the normalisation option."""

    def __init__(self, weight=None, normalization="weighted_mean"):
        super().__init__()
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {list(_NORMALIZATIONS)}, "
                f"got {normalization!r}."
            )
        self.normalization = normalization
        self.register_buffer(
            "weight", None if weight is None else torch.as_tensor(weight).float()
        )

    def predict_proba(self, logits):
        """Class probabilities from the module's outputs (softmax)."""
        return torch.softmax(logits, dim=-1)

    def _weights_positive(self):
        """Whether every class weight is > 0, checked once per weight tensor
        (and in-place change), so a training step never waits on the device."""
        w = self.weight
        cached = self.__dict__.get("_positive_cache")
        if cached is None or cached[0] is not w or cached[1] != w._version:
            cached = (w, w._version, bool((w > 0).all()))
            self.__dict__["_positive_cache"] = cached
        return cached[2]

    def extra_repr(self):
        return f"normalization={self.normalization!r}"


class WeightedCrossEntropyLoss(_ClassWeightedLoss):
    r"""Cross-entropy with class weights and per-sample weights.

    For a batch of logits :math:`z_i`, labels :math:`y_i`, class weights
    :math:`w` and sample weights :math:`s_i`, with per-sample loss
    :math:`\ell_i = -\log \mathrm{softmax}(z_i)_{y_i}` and per-sample weight
    :math:`v_i = w_{y_i} s_i`:

    - ``normalization="weighted_mean"`` (default, PyTorch's convention):
      :math:`\sum_i v_i \ell_i / \sum_i v_i`. Multiplying all class weights by
      a constant leaves this loss unchanged. Without sample weights it equals
      ``torch.nn.functional.cross_entropy(z, y, weight=w)``.
    - ``normalization="mean"``: :math:`\sum_i v_i \ell_i / N`, the tutorials'
      ``torch.mean(weights * loss)``; rescaling the weights rescales the loss
      (and so the effective learning rate).

    Parameters
    ----------
    weight : array-like of shape (n_classes,), default=None
        Class weights; ``None`` weighs every class 1.
    normalization : {"weighted_mean", "mean"}, default="weighted_mean"
        How a batch's weighted losses are reduced to one number.

    Examples
    --------
    >>> import torch
    >>> loss = WeightedCrossEntropyLoss(weight=[1.0, 3.0])
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> target = torch.tensor([0, 1])
    >>> bool(torch.isclose(
    ...     loss(logits, target),
    ...     torch.nn.functional.cross_entropy(logits, target, weight=loss.weight)))
    True
    """

    def forward(self, input, target, sample_weight=None):
        if sample_weight is None and self.normalization == "weighted_mean":
            if self.weight is None or self._weights_positive():
                # The same sum(w*l)/sum(w) in PyTorch's fused kernel (far fewer
                # ops per step). With a zero class weight a batch could weigh
                # 0 in total, which PyTorch turns into NaN and _reduce into 0.
                return F.cross_entropy(input, target, weight=self.weight)
        losses = F.cross_entropy(input, target, reduction="none")
        return _reduce(
            losses,
            _sample_weights(self.weight, target, sample_weight),
            self.normalization,
        )


def proba_function(criterion):
    """The function that turns a criterion's inputs (logits) into probabilities.

    A criterion with a ``predict_proba`` method decides itself; for PyTorch's
    own losses: ``NLLLoss`` expects log-probabilities (``exp``),
    ``BCEWithLogitsLoss`` one logit per sample (sigmoid, two columns), and
    anything else logits (softmax).
    """
    if hasattr(criterion, "predict_proba"):
        return criterion.predict_proba
    if isinstance(criterion, nn.NLLLoss):
        return torch.exp
    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return _two_column_sigmoid
    return lambda logits: torch.softmax(logits, dim=-1)


def _two_column_sigmoid(logits):
    p = torch.sigmoid(logits.reshape(-1))
    return torch.stack([1.0 - p, p], dim=1)


def n_outputs(criterion, n_classes):
    """How many outputs per sample the module must produce for ``criterion``."""
    if hasattr(criterion, "n_outputs"):
        return criterion.n_outputs(n_classes)
    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return 1
    return n_classes

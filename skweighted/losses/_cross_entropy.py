"""Weighted cross-entropy: softmax (multi-class) and one-logit binary."""

import torch.nn.functional as F

from .._docstring import fill_doc
from ._base import DOC, _ClassWeightedLoss, _SingleLogitLoss


@fill_doc(**DOC)
class WeightedCrossEntropyLoss(_ClassWeightedLoss):
    r"""Cross-entropy with class weights and per-sample weights.

    Per-sample loss :math:`\ell_i = -\log \mathrm{softmax}(z_i)_{y_i}`,
    weighted by :math:`v_i = w_{y_i} s_i` and reduced as set by
    ``normalization`` (see :mod:`skweighted.losses`). Without sample weights
    and with ``normalization="weighted_mean"`` it equals
    ``torch.nn.functional.cross_entropy(z, y, weight=w)``; with ``"mean"`` it
    is the tutorials' ``torch.mean(w[y] * F.cross_entropy(z, y,
    reduction="none"))``.

    Parameters
    ----------
    {{weight}}
    {{normalization}}

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

    def per_sample_loss(self, input, target):
        return F.cross_entropy(input, target, reduction="none")

    def forward(self, input, target, sample_weight=None):
        if sample_weight is None and self.normalization == "weighted_mean":
            if self.weight is None or self._weights_positive():
                # The same sum(w*l)/sum(w) in PyTorch's fused kernel (far fewer
                # ops per step). With a zero class weight a batch could weigh
                # 0 in total, which PyTorch turns into NaN and _reduce into 0.
                return F.cross_entropy(input, target, weight=self.weight)
        return super().forward(input, target, sample_weight)

    def _weights_positive(self):
        """Whether every class weight is > 0, checked once per weight tensor
        (and in-place change), so a training step never waits on the device."""
        w = self.weight
        cached = self.__dict__.get("_positive_cache")
        if cached is None or cached[0] is not w or cached[1] != w._version:
            cached = (w, w._version, bool((w > 0).all()))
            self.__dict__["_positive_cache"] = cached
        return cached[2]


@fill_doc(**DOC)
class BinaryCrossEntropyLoss(_SingleLogitLoss):
    r"""Binary cross-entropy on a single logit, class weights as ``pos_weight``.

    The module returns one logit :math:`z_i` per sample (the log-odds of
    ``classes_[1]``). Per-sample loss
    :math:`\ell_i = -[y_i \log\sigma(z_i) + (1 - y_i)\log(1 - \sigma(z_i))]`,
    computed as :math:`\mathrm{softplus}(-s_i z_i)` with :math:`s_i = 2y_i - 1`,
    weighted by :math:`v_i = w_{y_i} s_i` as every loss here.

    With ``weight=[1, p]`` and ``normalization="mean"`` it equals
    ``torch.nn.BCEWithLogitsLoss(pos_weight=p)``; in general PyTorch's
    ``pos_weight`` is ``weight[1] / weight[0]`` (the ``pos_weight`` property), which is
    all that matters under the default ``"weighted_mean"``.

    Parameters
    ----------
    {{binary_weight}}
    {{normalization}}

    Examples
    --------
    >>> import torch
    >>> loss = BinaryCrossEntropyLoss(weight=[1.0, 4.0], normalization="mean")
    >>> z, y = torch.tensor([[0.5], [-1.0], [2.0]]), torch.tensor([1, 0, 1])
    >>> torch_loss = torch.nn.BCEWithLogitsLoss(pos_weight=loss.pos_weight)
    >>> bool(torch.isclose(loss(z, y), torch_loss(z.reshape(-1), y.float())))
    True
    >>> loss.predict_proba(z).shape  # still two columns
    torch.Size([3, 2])
    """

    def per_sample_loss(self, input, target):
        return F.softplus(-self._signed_logit(input, target))

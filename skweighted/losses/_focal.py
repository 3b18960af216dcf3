"""Focal loss: softmax and sigmoid forms."""

import torch
import torch.nn.functional as F

from .._docstring import fill_doc
from ._base import DOC, _check_finite_non_negative, _ClassWeightedLoss, _SingleLogitLoss


@fill_doc(**DOC)
class FocalLoss(_ClassWeightedLoss):
    r"""Softmax focal loss; the class weights play the role of :math:`\alpha`.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, in its
    multi-class (softmax) form. With :math:`p_{i} = \mathrm{softmax}(z_i)_{y_i}`
    the probability of the true class, computed from the *unweighted*
    logits:

    .. math:: \ell_i = -(1 - p_i)^{\gamma} \log p_i

    weighted by :math:`v_i = w_{y_i} s_i` (so :math:`\alpha_c = w_c`).
    With :math:`a_i = \log\sum_{j \ne y_i} e^{z_{ij}} - z_{iy_i}`, it is
    computed as :math:`e^{-\gamma\,\mathrm{softplus}(-a_i)}\,
    \mathrm{softplus}(a_i)`, exact (with finite gradients) even when
    :math:`p_i` rounds to 1. ``gamma=0`` is :class:`WeightedCrossEntropyLoss`.

    Parameters
    ----------
    weight : array-like of shape (n_classes,), default=None
        Class weights (:math:`\alpha`); ``None`` weighs every class 1.
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`.
    {{normalization}}

    Examples
    --------
    >>> import torch
    >>> z, y = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]]), torch.tensor([0, 1])
    >>> easy, hard = FocalLoss(gamma=2.0).per_sample_loss(z, y)
    >>> ce = torch.nn.functional.cross_entropy(z, y, reduction="none")
    >>> bool(easy / ce[0] < hard / ce[1])  # easy samples are down-weighted more
    True
    """

    def __init__(self, weight=None, gamma=2.0, normalization="weighted_mean"):
        super().__init__(weight, normalization)
        _check_finite_non_negative("gamma", gamma)
        self.gamma = float(gamma)

    def per_sample_loss(self, input, target):
        # a = logsumexp_{j != y} z_j - z_y, the log-odds against the true class:
        # -log p = softplus(a) and log(1 - p) = -softplus(-a), both exact.
        idx = target.unsqueeze(-1)
        mask = torch.zeros_like(input, dtype=torch.bool).scatter_(-1, idx, True)
        others = torch.logsumexp(input.masked_fill(mask, float("-inf")), dim=-1)
        a = others - input.gather(-1, idx).squeeze(-1)
        return torch.exp(-self.gamma * F.softplus(-a)) * F.softplus(a)

    def extra_repr(self):
        return f"gamma={self.gamma}, {super().extra_repr()}"


@fill_doc(**DOC)
class BinaryFocalLoss(_SingleLogitLoss):
    r"""Sigmoid focal loss on a single logit (binary problems).

    Lin et al., ICCV 2017, in the sigmoid form of
    ``torchvision.ops.sigmoid_focal_loss``. With :math:`s_i = 2y_i - 1` and
    :math:`p_i = \sigma(s_i z_i)` the probability of the true class:

    .. math:: \ell_i = -(1 - p_i)^{\gamma} \log p_i
              = e^{-\gamma\,\mathrm{softplus}(s_i z_i)}\,
                \mathrm{softplus}(-s_i z_i)

    weighted by :math:`v_i = w_{y_i} s_i`. With ``weight=[1 - alpha, alpha]``
    and ``normalization="mean"`` it equals
    ``torchvision.ops.sigmoid_focal_loss(z, y, alpha, gamma, reduction="mean")``.

    Parameters
    ----------
    {{binary_weight}}
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`; ``0`` gives
        :class:`BinaryCrossEntropyLoss`.
    {{normalization}}

    Examples
    --------
    >>> import torch
    >>> z, y = torch.tensor([[4.0], [0.0]]), torch.tensor([1, 1])
    >>> BinaryFocalLoss(gamma=2.0).per_sample_loss(z, y)
    tensor([5.8716e-06, 1.7329e-01])
    """

    def __init__(self, weight=None, gamma=2.0, normalization="weighted_mean"):
        super().__init__(weight, normalization)
        _check_finite_non_negative("gamma", gamma)
        self.gamma = float(gamma)

    def per_sample_loss(self, input, target):
        sz = self._signed_logit(input, target)
        return torch.exp(-self.gamma * F.softplus(sz)) * F.softplus(-sz)

    def extra_repr(self):
        return f"gamma={self.gamma}, {super().extra_repr()}"

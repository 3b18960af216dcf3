"""Cost-sensitive (real-world-weight) cross-entropy and its decision rule."""

import numpy as np
import torch

from .._docstring import fill_doc
from ._base import DOC, _check_finite_non_negative, _ClassWeightedLoss, _log1m_softmax


@fill_doc(**DOC)
class RealWorldWeightCrossEntropyLoss(_ClassWeightedLoss):
    r"""Real-world-weight cross-entropy: misclassification costs in the loss.

    Ho & Wookey, "The Real-World-Weight Cross-Entropy Loss Function: Modeling
    the Costs of Mislabeling", IEEE Access 8, 2020 (arXiv:2001.00570). With
    a cost matrix :math:`C` (``C[true, pred]``, the marginal cost of predicting
    ``pred`` for a sample of class ``true`` over predicting it right, so the
    diagonal is 0), every probability put on a wrong class is penalised by
    its cost:

    .. math:: \ell_i = -\sum_{k \ne y_i} C_{y_i k} \log(1 - p_{ik})

    For two classes with ``fn_cost`` (a missed ``classes_[1]``) and
    ``fp_cost`` (a false alarm), :math:`C = [[0, c_{fp}], [c_{fn}, 0]]` and
    this is the paper's binary loss
    :math:`-[c_{fn} y \log p_1 + c_{fp} (1 - y) \log(1 - p_1)]`. The paper's
    multi-class variant adds a per-class false-negative term
    :math:`-c_{fn,y}\log p_y`; that is omitted here, so the loss depends on
    the cost matrix alone (for two classes the two coincide). Class and
    sample weights multiply :math:`\ell_i` as in every loss here.

    Each :math:`\log(1 - p_{ik})` is an exact difference of ``logsumexp``
    (finite even when :math:`p_{ik}` rounds to 1), at a cost of
    :math:`O(N K^2)` memory per batch: fine up to a few hundred classes.

    :meth:`decision` predicts the class of least expected cost,
    :math:`\arg\min_k \sum_j p_j C_{jk}`, which
    :meth:`~skweighted.WeightedNeuralNetClassifier.predict` uses.

    Parameters
    ----------
    cost_matrix : array-like of shape (n_classes, n_classes), default=None
        ``C[true, pred]`` aligned with the estimator's ``classes_``: finite,
        non-negative, zero on the diagonal, not all zero.
    fn_cost, fp_cost : float, default=None
        Binary shortcut for ``cost_matrix=[[0, fp_cost], [fn_cost, 0]]``;
        give both, or ``cost_matrix``, not both.
    {{weight}}
    {{normalization}}

    Examples
    --------
    >>> import numpy as np, torch
    >>> loss = RealWorldWeightCrossEntropyLoss(fn_cost=10.0, fp_cost=1.0)
    >>> loss.cost_matrix
    tensor([[ 0.,  1.],
            [10.,  0.]])
    >>> loss.decision(np.array([[0.8, 0.2], [0.95, 0.05]]))  # 0.2 * 10 > 0.8 * 1
    array([1, 0])
    """

    def __init__(
        self,
        cost_matrix=None,
        *,
        fn_cost=None,
        fp_cost=None,
        weight=None,
        normalization="weighted_mean",
    ):
        super().__init__(weight, normalization)
        self.fn_cost = fn_cost
        self.fp_cost = fp_cost
        self.register_buffer("cost_matrix", _cost_matrix(cost_matrix, fn_cost, fp_cost))

    def n_outputs(self, n_classes):
        """Checks the cost matrix against the number of classes."""
        k = self.cost_matrix.shape[0]
        if k != n_classes:
            raise ValueError(
                f"cost_matrix has shape {tuple(self.cost_matrix.shape)} but there are "
                f"{n_classes} classes; it must be (n_classes, n_classes), rows and "
                "columns in the order of classes_."
            )
        return n_classes

    def per_sample_loss(self, input, target):
        costs = self.cost_matrix.to(input.dtype)[target]  # (N, K), 0 at the target
        return -(costs * _log1m_softmax(input)).sum(dim=-1)

    @fill_doc(**DOC)
    def decision(self, proba):
        """The class of least expected cost, ``argmin_k sum_j p_j C[j, k]``.

        {{decision}}
        """
        cost = self.cost_matrix.detach().cpu().double().numpy()
        return np.argmin(np.asarray(proba, dtype=np.float64) @ cost, axis=1)

    def extra_repr(self):
        costs = self.cost_matrix.tolist()
        return f"cost_matrix={costs}, {super().extra_repr()}"


def _cost_matrix(cost_matrix, fn_cost, fp_cost):
    binary = (fn_cost, fp_cost)
    if cost_matrix is not None and any(c is not None for c in binary):
        raise ValueError("Give either cost_matrix or fn_cost and fp_cost, not both.")
    if cost_matrix is None:
        if any(c is None for c in binary):
            raise ValueError(
                "RealWorldWeightCrossEntropyLoss needs a cost_matrix of shape "
                "(n_classes, n_classes), or both fn_cost and fp_cost for a binary "
                f"problem; got fn_cost={fn_cost!r}, fp_cost={fp_cost!r}."
            )
        for name, c in (("fn_cost", fn_cost), ("fp_cost", fp_cost)):
            if np.ndim(c) != 0:
                raise ValueError(f"{name} must be a number, got {c!r}.")
        cost_matrix = [[0.0, fp_cost], [fn_cost, 0.0]]
    if isinstance(cost_matrix, torch.Tensor):
        cost_matrix = cost_matrix.detach().cpu().numpy()
    c = _check_finite_non_negative("cost_matrix", cost_matrix)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise ValueError(
            f"cost_matrix must be square, (n_classes, n_classes) with n_classes >= 2,"
            f" got shape {c.shape}."
        )
    if np.any(np.diag(c) != 0):
        raise ValueError(
            "cost_matrix must be 0 on the diagonal (costs are marginal, relative to "
            f"a correct prediction); got diagonal {np.diag(c).tolist()}. Subtract "
            "each row's diagonal entry from the row."
        )
    if not np.any(c > 0):
        raise ValueError("cost_matrix is zero everywhere; at least one cost > 0.")
    return torch.as_tensor(c, dtype=torch.float32)

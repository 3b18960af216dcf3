"""Shared plumbing of the losses: the weight buffer, per-sample weights, the
reduction, and what the net asks of a criterion (probabilities, output count)."""

import numpy as np
import torch
from torch import nn

_NORMALIZATIONS = ("weighted_mean", "mean")

#: Docstring fragments of the losses (see :func:`skweighted._docstring.fill_doc`).
DOC = {
    "weight": (
        "weight : array-like of shape (n_classes,), default=None\n"
        "    Class weights; ``None`` weighs every class 1."
    ),
    "binary_weight": (
        "weight : array-like of shape (2,), default=None\n"
        "    Class weights ``[w_negative, w_positive]``."
    ),
    "normalization": (
        'normalization : {"weighted_mean", "mean"}, default="weighted_mean"\n'
        "    How a batch's weighted losses are reduced to one number."
    ),
    "decision": (
        "Parameters\n----------\n"
        "proba : array-like of shape (n_samples, n_classes)\n\n"
        "Returns\n-------\n"
        "indices : ndarray of shape (n_samples,)\n"
        "    Indices into ``classes_``."
    ),
}


def _reduce(losses, weights, normalization):
    """Reduce per-sample losses with per-sample weights (or None)."""
    if weights is None:
        return losses.mean()
    total = (weights * losses).sum()
    if normalization == "mean":
        return total / losses.shape[0]
    # sum(w * l) / sum(w); a batch whose weights are all zero gives 0, not NaN.
    return total / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)


def _denominator(n, weights, normalization, device):
    """What :func:`_reduce` divides ``sum(w * l)`` by: ``sum(w)`` for the
    weighted mean, else the number of losses ``n`` (unclamped)."""
    if weights is None or normalization == "mean":
        return torch.tensor(float(n), device=device)
    return weights.sum()


def _sample_weights(class_weight, target, sample_weight):
    """Per-sample weight = class weight of the sample's class * sample weight."""
    w = None if class_weight is None else class_weight[target]
    if sample_weight is not None:
        w = sample_weight if w is None else w * sample_weight
    return w


def _log1m_softmax(logits):
    """``log(1 - softmax(logits))`` for every column, without cancellation.

    ``log(1 - p_k) = logsumexp_{j != k} z_j - logsumexp_j z_j``: exact even
    when ``p_k`` rounds to 1, where ``log(1 - exp(log_softmax))`` is ``-inf``.
    """
    k = logits.shape[-1]
    eye = torch.eye(k, dtype=torch.bool, device=logits.device)
    others = logits.unsqueeze(-2).masked_fill(eye, float("-inf"))  # (N, K, K)
    return torch.logsumexp(others, dim=-1) - torch.logsumexp(
        logits, dim=-1, keepdim=True
    )


def _float_buffer(value):
    """A floating tensor kept as given (dtype, device), anything else float32."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


def _check_finite_non_negative(name, value):
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}.")
    return array


class _ClassWeightedLoss(nn.Module):
    """Shared plumbing: the ``weight`` buffer, the reduction, the probabilities.

    Subclasses implement ``per_sample_loss(input, target)``.
    """

    def __init__(self, weight=None, normalization="weighted_mean"):
        super().__init__()
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {list(_NORMALIZATIONS)}, "
                f"got {normalization!r}."
            )
        self.normalization = normalization
        self.register_buffer("weight", _float_buffer(weight))

    def per_sample_loss(self, input, target):  # pragma: no cover - abstract
        """The unweighted loss of each sample, shape ``(n_samples,)``."""
        raise NotImplementedError

    def forward(self, input, target, sample_weight=None):
        """The batch loss: per-sample losses weighted by ``w[y] * sample_weight``."""
        return _reduce(
            self.per_sample_loss(input, target),
            _sample_weights(self.weight, target, sample_weight),
            self.normalization,
        )

    def normalizer(self, target, sample_weight=None):
        """What the batch loss divides ``sum(w * l)`` by: ``sum(w)`` under
        ``"weighted_mean"`` (before the clamp that keeps an all-zero batch
        at 0), else the number of samples. Data-parallel training and
        gradient accumulation divide by its sum over a whole step instead."""
        weights = _sample_weights(self.weight, target, sample_weight)
        return _denominator(target.shape[0], weights, self.normalization, target.device)

    def predict_proba(self, logits):
        """Class probabilities from the module's outputs (softmax)."""
        return torch.softmax(logits, dim=-1)

    def extra_repr(self):
        return f"normalization={self.normalization!r}"


class _SingleLogitLoss(_ClassWeightedLoss):
    """A binary loss on one logit per sample (the log-odds of class 1)."""

    @classmethod
    def n_outputs(cls, n_classes):
        """One output per sample; only binary problems are allowed."""
        if n_classes != 2:
            raise ValueError(
                f"{cls.__name__} is a binary loss (one logit per sample) but "
                f"there are {n_classes} classes. Use WeightedCrossEntropyLoss or "
                "FocalLoss for more than two classes."
            )
        return 1

    @property
    def pos_weight(self):
        """``weight[1] / weight[0]``: PyTorch's ``pos_weight`` for these weights."""
        if self.weight is None:
            return None
        return self.weight[1:2] / self.weight[0]

    def predict_proba(self, logits):
        """Two columns ``[sigmoid(-z), sigmoid(z)]``."""
        return _two_column_sigmoid(logits)

    @staticmethod
    def _signed_logit(input, target):
        # s * z with s = +1 for class 1, -1 for class 0: -log p_t = softplus(-s z)
        z = input.reshape(-1)
        return torch.where(target.reshape(-1) == 1, z, -z)


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


def decide(criterion, proba):
    """Class indices (multi-label: the indicator matrix) for probabilities:
    ``criterion``'s ``decision`` rule (least expected cost, ...) when it has
    one, else the most probable class."""
    decision = getattr(criterion, "decision", None)
    if decision is None:
        return np.argmax(proba, axis=1)
    return np.asarray(decision(proba))


def _two_column_sigmoid(logits):
    z = logits.reshape(-1)
    return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=1)


def n_outputs(criterion, n_classes):
    """How many outputs per sample the module must produce for ``criterion``.

    ``criterion`` is an instance, whose ``n_outputs`` method (if any) also
    checks its own settings against ``n_classes``, or a class (``None``: the
    default loss), for which only the single-logit binary losses differ from
    ``n_classes``.
    """
    if criterion is None:
        return n_classes
    if isinstance(criterion, type):
        if issubclass(criterion, _SingleLogitLoss):
            return criterion.n_outputs(n_classes)
        return 1 if issubclass(criterion, nn.BCEWithLogitsLoss) else n_classes
    if hasattr(criterion, "n_outputs"):
        return criterion.n_outputs(n_classes)
    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return 1
    return n_classes

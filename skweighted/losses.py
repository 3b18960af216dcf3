"""Imbalance-aware criteria.

Every criterion here is a ``torch.nn.Module`` that

- holds its class weights as a registered buffer ``weight`` (so moving the
  criterion to a device moves the weights, the way
  :class:`torch.nn.CrossEntropyLoss` does);
- takes ``forward(input, target, sample_weight=None)``, where ``input`` are
  the module's raw outputs (logits), ``target`` the encoded labels
  ``0..K-1`` and ``sample_weight`` optional per-sample weights;
- weighs sample :math:`i` by :math:`v_i = w_{y_i} s_i` (class weight times
  sample weight) and reduces a batch in one shared way, chosen by
  ``normalization``:

  * ``"weighted_mean"`` (default, PyTorch's convention):
    :math:`\\sum_i v_i \\ell_i / \\sum_i v_i`. **Multiplying every class
    weight by the same constant leaves this loss, its gradients and so the
    whole training run unchanged**: ``'balanced'``, ``'inverse'`` and
    normalised inverse frequency train identically. Only the *ratios*
    between class weights matter.
  * ``"mean"``: :math:`\\sum_i v_i \\ell_i / N`, the tutorials'
    ``torch.mean(weights * loss)``. Here the scale of the weights scales the
    loss and so, with plain SGD, the effective learning rate;
- computes every log-probability from logits (``log_softmax``,
  ``logsumexp``, ``softplus``), never ``log(p + eps)``;
- knows how to turn logits into class probabilities (``predict_proba``),
  and, when its optimal decision is not the most probable class, how to
  decide (``decision``), which
  :meth:`~skweighted.WeightedNeuralNetClassifier.predict` then uses.

A single-logit binary criterion (``n_outputs(2) == 1``) makes the default
network produce one output; ``predict_proba`` still returns two columns.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "FocalLoss",
    "LogitAdjustedLoss",
    "RealWorldWeightCrossEntropyLoss",
    "WeightedCrossEntropyLoss",
]

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

    def predict_proba(self, logits):
        """Class probabilities from the module's outputs (softmax)."""
        return torch.softmax(logits, dim=-1)

    def extra_repr(self):
        return f"normalization={self.normalization!r}"


class _SingleLogitLoss(_ClassWeightedLoss):
    """A binary loss on one logit per sample (the log-odds of class 1)."""

    def n_outputs(self, n_classes):
        """One output per sample; only binary problems are allowed."""
        if n_classes != 2:
            raise ValueError(
                f"{type(self).__name__} is a binary loss (one logit per sample) but "
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
    weight : array-like of shape (2,), default=None
        Class weights ``[w_negative, w_positive]``.
    normalization : {"weighted_mean", "mean"}, default="weighted_mean"
        How a batch's weighted losses are reduced to one number.

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
    normalization : {"weighted_mean", "mean"}, default="weighted_mean"
        How a batch's weighted losses are reduced to one number.

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
    weight : array-like of shape (2,), default=None
        Class weights ``[w_negative, w_positive]``.
    gamma : float, default=2.0
        Focusing parameter :math:`\gamma \ge 0`; ``0`` gives
        :class:`BinaryCrossEntropyLoss`.
    normalization : {"weighted_mean", "mean"}, default="weighted_mean"
        How a batch's weighted losses are reduced to one number.

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
    weight : array-like of shape (n_classes,), default=None
        Class weights; ``None`` weighs every class 1.
    normalization : {"weighted_mean", "mean"}, default="weighted_mean"
        How a batch's weighted losses are reduced to one number.

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

    def decision(self, proba):
        """The class of least expected cost, ``argmin_k sum_j p_j C[j, k]``.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)

        Returns
        -------
        indices : ndarray of shape (n_samples,)
            Indices into ``classes_``.
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


class LogitAdjustedLoss(_ClassWeightedLoss):
    r"""Logit-adjusted cross-entropy, and post-hoc logit adjustment.

    Menon et al., "Long-tail learning via logit adjustment", ICLR 2021. With
    the class prior :math:`\pi_c = n_c / n` from the training labels:

    - training (``tau``): cross-entropy on the adjusted logits,
      :math:`\ell_i = -\log \mathrm{softmax}(z_i + \tau \log \pi)_{y_i}`;
    - prediction (``posthoc_tau``): :meth:`decision` returns
      :math:`\arg\max_k \log p_k - \tau_{post} \log \pi_k`, which
      :meth:`~skweighted.WeightedNeuralNetClassifier.predict` uses.

    ``tau=1, posthoc_tau=0`` is the paper's logit-adjusted loss;
    ``tau=0, posthoc_tau=1`` its post-hoc correction of a plain
    cross-entropy model. ``predict_proba`` stays ``softmax(z)``, the model's
    own probabilities. Class and sample weights multiply :math:`\ell_i` as in
    every loss here.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,), default=None
        Training samples per class, in the order of ``classes_``.
        :class:`~skweighted.WeightedNeuralNetClassifier` fills it from the
        ``y`` of each ``fit``. A class with no sample counts as one (so its
        log prior stays finite).
    tau : float, default=1.0
        Scale of the adjustment added to the logits during training.
    posthoc_tau : float, default=0.0
        Scale of the adjustment subtracted at prediction time.
    weight : array-like of shape (n_classes,), default=None
        Class weights; ``None`` weighs every class 1.
    normalization : {"weighted_mean", "mean"}, default="weighted_mean"
        How a batch's weighted losses are reduced to one number.

    Examples
    --------
    >>> import numpy as np, torch
    >>> loss = LogitAdjustedLoss(class_counts=[90, 10], tau=0.0, posthoc_tau=1.0)
    >>> loss.log_prior().exp()
    tensor([0.9000, 0.1000])
    >>> loss.decision(np.array([[0.7, 0.3]]))  # log .3 - log .1 > log .7 - log .9
    array([1])
    """

    def __init__(
        self,
        class_counts=None,
        *,
        tau=1.0,
        posthoc_tau=0.0,
        weight=None,
        normalization="weighted_mean",
    ):
        super().__init__(weight, normalization)
        for name, value in (("tau", tau), ("posthoc_tau", posthoc_tau)):
            if np.ndim(value) != 0 or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
        self.tau = float(tau)
        self.posthoc_tau = float(posthoc_tau)
        if class_counts is not None:
            class_counts = _check_finite_non_negative("class_counts", class_counts)
            class_counts = torch.as_tensor(class_counts, dtype=torch.float32)
        self.register_buffer("class_counts", class_counts)

    def n_outputs(self, n_classes):
        """Checks ``class_counts`` against the number of classes."""
        if self.class_counts is not None and len(self.class_counts) != n_classes:
            raise ValueError(
                f"class_counts has {len(self.class_counts)} entries but there are "
                f"{n_classes} classes."
            )
        return n_classes

    def log_prior(self):
        """:math:`\\log \\pi` from ``class_counts`` (absent classes count 1)."""
        if self.class_counts is None:
            raise ValueError(
                "LogitAdjustedLoss needs class_counts (the training samples per "
                "class); WeightedNeuralNetClassifier fills it from y at fit."
            )
        counts = self.class_counts.clamp_min(1.0)
        return torch.log(counts) - torch.log(counts.sum())

    def per_sample_loss(self, input, target):
        adjusted = input + self.tau * self.log_prior().to(input.dtype)
        return F.cross_entropy(adjusted, target, reduction="none")

    def decision(self, proba):
        """``argmax_k log p_k - posthoc_tau * log prior_k``.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)

        Returns
        -------
        indices : ndarray of shape (n_samples,)
            Indices into ``classes_``.
        """
        log_prior = self.log_prior().detach().cpu().double().numpy()
        with np.errstate(divide="ignore"):
            scores = np.log(np.asarray(proba, dtype=np.float64))
        return np.argmax(scores - self.posthoc_tau * log_prior, axis=1)

    def extra_repr(self):
        return f"tau={self.tau}, posthoc_tau={self.posthoc_tau}, {super().extra_repr()}"


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
    z = logits.reshape(-1)
    return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=1)


def n_outputs(criterion, n_classes):
    """How many outputs per sample the module must produce for ``criterion``."""
    if hasattr(criterion, "n_outputs"):
        return criterion.n_outputs(n_classes)
    if isinstance(criterion, nn.BCEWithLogitsLoss):
        return 1
    return n_classes

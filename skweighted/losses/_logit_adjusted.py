"""Logit-adjusted cross-entropy and post-hoc logit adjustment."""

import numpy as np
import torch
import torch.nn.functional as F

from .._docstring import fill_doc
from ._base import DOC, _check_finite_non_negative, _ClassWeightedLoss


@fill_doc(**DOC)
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
    {{weight}}
    {{normalization}}

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

    @fill_doc(**DOC)
    def decision(self, proba):
        """``argmax_k log p_k - posthoc_tau * log prior_k``.

        {{decision}}
        """
        log_prior = self.log_prior().detach().cpu().double().numpy()
        with np.errstate(divide="ignore"):
            scores = np.log(np.asarray(proba, dtype=np.float64))
        return np.argmax(scores - self.posthoc_tau * log_prior, axis=1)

    def extra_repr(self):
        return f"tau={self.tau}, posthoc_tau={self.posthoc_tau}, {super().extra_repr()}"

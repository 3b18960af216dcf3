"""Undo class weights, balanced sampling and resampling on predicted probabilities.

A network trained with the class-weighted cross-entropy, class weights
:math:`w_c`, estimates in the population not the posterior :math:`p(c|x)` but

.. math:: q(c|x) = \\frac{w_c\\, p(c|x)}{\\sum_k w_k\\, p(k|x)},

so :math:`p(c|x) \\propto q(c|x) / w_c`: dividing by the weights and
renormalising gives the posterior back, exactly wherever :math:`q` is the
minimiser of the weighted loss. A class-balanced mini-batch sampler that
draws class :math:`c` with relative weight :math:`s_c` acts the same way with
:math:`s_c`, and so does resampling the training set from the class prior
:math:`\\pi` to :math:`\\pi'`, with :math:`w_c = \\pi'_c / \\pi_c`.

These functions are pure: they take arrays and return a new array.
:class:`~skweighted.WeightedNeuralNetClassifier` applies them to its own
probabilities with ``correct_proba=True``; the private helpers below hold its
rules (which losses can be corrected, which weights a fit trained with).
"""

import warnings

import numpy as np
from torch import nn

from .losses import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    LogitAdjustedLoss,
    WeightedCrossEntropyLoss,
)

__all__ = ["shift_prior", "unweight_proba"]


def _positive_vector(name, value, n_classes):
    value = np.asarray(value, dtype=np.float64)
    if value.ndim != 1 or len(value) != n_classes:
        raise ValueError(
            f"{name} must hold one value per class ({n_classes}, the columns of "
            f"proba); got shape {value.shape}."
        )
    if not np.all(np.isfinite(value)) or np.any(value <= 0):
        raise ValueError(
            f"{name} must be finite and strictly positive; got {value.tolist()!r}."
        )
    return value


def _check_proba(proba):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(
            "proba must have shape (n_samples, n_classes) with at least 2 "
            f"classes; got shape {proba.shape}."
        )
    if not np.all(np.isfinite(proba)) or np.any(proba < 0):
        raise ValueError("proba must hold finite, non-negative probabilities.")
    return proba


def unweight_proba(proba, weight):
    """Probabilities of a class-weighted model, with the weights undone.

    Returns :math:`p_{ic} = (q_{ic} / w_c) / \\sum_k (q_{ik} / w_k)`. For a
    network trained with the class-weighted cross-entropy (or a balanced
    sampler with sampling weights ``weight``), this is the posterior for the
    class prior of the training data; only the ratios between the weights
    matter.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        The weighted model's probabilities :math:`q`; never modified.
    weight : array-like of shape (n_classes,)
        The class weights (times the sampling weights) it was trained with,
        finite and strictly positive, in the order of the columns.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The corrected probabilities (float64, rows summing to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from skweighted.calibration import unweight_proba
    >>> q = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> unweight_proba(q, weight=[1.0, 9.0]).round(3)  # minority class weighed 9x
    array([[0.9  , 0.1  ],
           [0.988, 0.012]])
    """
    proba = _check_proba(proba)
    weight = _positive_vector("weight", weight, proba.shape[1])
    scaled = proba / weight
    total = scaled.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("proba has a row of zeros; it cannot be renormalised.")
    return scaled / total


def shift_prior(proba, train_prior, prior):
    """Move probabilities from the class prior they were trained on to another.

    :math:`p_{ic} \\propto q_{ic}\\, \\pi_c / \\pi'_c` with :math:`\\pi'` the
    class prior of the data the model was trained on (after resampling) and
    :math:`\\pi` the prior wanted (before resampling). This is
    :func:`unweight_proba` with ``weight = train_prior / prior``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        The model's probabilities; never modified.
    train_prior : array-like of shape (n_classes,)
        Class frequencies (or counts) of the training data the model saw.
    prior : array-like of shape (n_classes,)
        Class frequencies (or counts) the probabilities should be for, e.g.
        those of the data before an under- or oversampler.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from skweighted.calibration import shift_prior
    >>> q = np.array([[0.5, 0.5]])  # a model trained on balanced (undersampled) data
    >>> shift_prior(q, train_prior=[50, 50], prior=[950, 50]).round(3)
    array([[0.95, 0.05]])
    """
    proba = _check_proba(proba)
    k = proba.shape[1]
    train_prior = _positive_vector("train_prior", train_prior, k)
    prior = _positive_vector("prior", prior, k)
    ratio = (train_prior / train_prior.sum()) / (prior / prior.sum())
    return unweight_proba(proba, ratio)


# -- the estimator's rules (correct_proba=True) ------------------------------

#: Losses whose population minimiser under class weights ``w`` is ``w_c p(c|x)``
#: renormalised: the (weighted) cross-entropy in its forms.
_CROSS_ENTROPY = (
    WeightedCrossEntropyLoss,
    BinaryCrossEntropyLoss,
    nn.CrossEntropyLoss,
    nn.BCEWithLogitsLoss,
)


def _describe(criterion):
    extra = [
        f"{k}={getattr(criterion, k)!r}"
        for k in ("gamma", "tau", "label_smoothing")
        if hasattr(criterion, k)
    ]
    return f"{type(criterion).__name__}({', '.join(extra)})"


def _check_correctable(criterion, plan):
    """Raise unless ``correct_proba=True`` can undo this fit's weighting.

    The correction is exact for the cross-entropy (softmax or one logit,
    without label smoothing; :class:`~skweighted.losses.FocalLoss` with
    ``gamma=0`` and :class:`~skweighted.losses.LogitAdjustedLoss` with
    ``tau=0`` are the cross-entropy). Other losses (focal, cost-sensitive,
    logit-adjusted training) do not estimate :math:`w_c\\,p(c|x)`, so no
    exact correction exists: a ``ValueError``. Class weights set through the
    criterion itself (``criterion__weight``, ``pos_weight``) are unknown to
    the plan: a ``ValueError`` too. ``criterion`` is the fit's own, holding
    the plan's weights when the plan is weighted.
    :class:`~skweighted.class_weight.PerBatch` is corrected with the scheme
    on the whole fit's counts (its weights on a batch with the training
    mix): a ``UserWarning`` says it is approximate.
    """
    exact = isinstance(criterion, _CROSS_ENTROPY) and not getattr(
        criterion, "label_smoothing", 0.0
    )
    exact |= isinstance(criterion, FocalLoss | BinaryFocalLoss) and (
        criterion.gamma == 0
    )
    exact |= isinstance(criterion, LogitAdjustedLoss) and criterion.tau == 0
    if not exact:
        raise ValueError(
            f"correct_proba=True needs a cross-entropy loss, whose weighted "
            f"minimiser is w_c p(c|x) so that dividing by w_c is exact; the "
            f"criterion {_describe(criterion)} has no exact correction. Use "
            "WeightedCrossEntropyLoss or BinaryCrossEntropyLoss (or FocalLoss "
            "with gamma=0, LogitAdjustedLoss with tau=0), or set "
            "correct_proba=False and recalibrate, e.g. with "
            "sklearn.calibration.CalibratedClassifierCV."
        )
    # the criterion holds the plan's weights when the plan is weighted (and
    # a user's criterion__weight with class_weight is refused when it is built)
    for name in () if plan.weighted else ("weight", "pos_weight"):
        if getattr(criterion, name, None) is not None:
            raise ValueError(
                f"correct_proba=True undoes the class weights it knows: pass them "
                f"as class_weight, not as the criterion's {name!r}."
            )
    weighted = plan.weighted or plan.per_batch is not None
    used = [plan.class_weight if weighted else None]
    used.append(plan.sampling_weight)
    for name, weight in zip(("class_weight", "sampler"), used):
        if weight is not None and not np.all(weight > 0):
            zero = plan.classes[weight <= 0].tolist()
            raise ValueError(
                f"correct_proba=True divides by the {name} weights, but classes "
                f"{zero!r} weigh 0; give every class a positive weight."
            )
    if plan.per_batch is not None:
        warnings.warn(
            f"correct_proba=True with class_weight={plan.per_batch!r} is "
            "approximate: each batch was weighted by its own counts, and the "
            "correction uses the weights of the whole training set "
            "(class_weight_), exact for batches with the training set's class "
            "mix.",
            UserWarning,
            stacklevel=3,
        )


def _resolve_class_prior(class_prior, classes, counts):
    """The prior corrected probabilities are for, aligned with ``classes``.

    ``None``: the class frequencies of the fit's ``y``. An array holds one
    value per class (in the order of ``classes_``), a dict one per label;
    finite, strictly positive, normalised to sum 1.
    """
    if class_prior is None:
        return counts / counts.sum()
    if isinstance(class_prior, dict):
        keys = set(class_prior)
        wanted = set(classes.tolist())
        if keys != wanted:
            raise ValueError(
                "class_prior must give a prior for every class "
                f"{sorted(wanted, key=str)!r}; missing "
                f"{sorted(wanted - keys, key=str)!r}, unknown "
                f"{sorted(keys - wanted, key=str)!r}."
            )
        class_prior = [class_prior[c] for c in classes.tolist()]
    try:
        prior = np.asarray(class_prior, dtype=np.float64)
    except (TypeError, ValueError):
        prior = np.array([np.nan])
    if prior.shape != (len(classes),) or not np.all(np.isfinite(prior)):
        raise ValueError(
            f"class_prior must hold one finite value per class ({len(classes)}, "
            f"in the order of classes_) or be a dict label -> prior; got "
            f"{class_prior!r}."
        )
    if np.any(prior <= 0):
        raise ValueError(f"class_prior must be strictly positive; got {class_prior!r}.")
    return prior / prior.sum()


def _correction_weight(plan, n_epochs, class_prior):
    """The ``weight`` of :func:`unweight_proba` for a model trained with ``plan``.

    The class weights in force in the last epoch trained (``Deferred``: uniform
    before ``start_epoch``; ``PerBatch``: the scheme on the whole fit's
    counts), times the sampler's weights, times the training prior over
    ``class_prior`` (1 for a class the fit never saw).
    """
    if plan.per_batch is not None:
        weight = plan.class_weight
    else:
        weight = plan.loss_weight(max(n_epochs - 1, 0))
    k = len(plan.classes)
    weight = np.ones(k) if weight is None else np.asarray(weight, dtype=np.float64)
    if plan.sampling_weight is not None:
        weight = weight * plan.sampling_weight
    seen = plan.counts > 0
    train = plan.counts / plan.counts.sum()
    ratio = np.ones(k)
    ratio[seen] = train[seen] / np.asarray(class_prior)[seen]
    return weight * ratio

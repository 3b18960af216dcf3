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
probabilities with ``correct_proba=True``.
"""

import numpy as np

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

"""The probability metrics of a comparison: scikit-learn's floats, checked once.

ROC AUC, average precision, log-loss and the Brier score of one fold take
a few milliseconds each in scikit-learn, nearly all of it input validation
(parameter checks, ``type_of_target``, ``check_array``, a label binarizer)
around a few vector operations on a few hundred samples. Each function here
checks that its input is the plain case a comparison produces (1-D labels
of one kind with every expected class present; finite float32 or float64
scores or probabilities in [0, 1]) and then runs the library's own
operations, in the same order, on the same dtypes, so it gives the same
float, bit for bit (the property tests of ``tests/test_compare_metrics.py``
hold them to it). Everything else -- a class missing from ``y_true``,
non-finite values, probabilities that do not sum to one, sample weights --
goes to the library function, which also raises its errors and warnings.
"""

import numpy as np
from scipy.integrate import trapezoid
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from ._label_metrics import plain_labels

__all__ = ["average_precision", "brier_score", "neg_log_loss_of", "roc_auc"]


def _labels(y_true, n_samples, n_classes):
    """``(sorted labels, y_true)`` when ``y_true`` holds plain labels
    (:func:`~._label_metrics.plain_labels`), ``n_samples`` of them, and
    exactly ``n_classes`` distinct ones; else ``None``."""
    y_true = np.asarray(y_true)
    if plain_labels(y_true) is None or y_true.shape != (n_samples,):
        return None
    labels = np.unique(y_true)
    return (labels, y_true) if len(labels) == n_classes else None


def _floats(values, ndim):
    """``values`` as an array when it is finite float32 or float64 of
    ``ndim`` dimensions (what the library keeps as it is); else ``None``."""
    values = np.asarray(values)
    if values.ndim != ndim or values.dtype not in (np.float32, np.float64):
        return None
    return values if np.isfinite(values).all() else None


def _binary_curve(positive, y_score):
    """False and true positives at each distinct score, highest first:
    scikit-learn's ``confusion_matrix_at_thresholds`` without weights.

    The counts are integers held in float64, so the order of tied scores,
    which the sort may change, does not change them.
    """
    order = np.argsort(y_score, kind="stable")[::-1]
    y_score, positive = y_score[order], positive[order]
    ends = np.concatenate([np.nonzero(np.diff(y_score))[0], [positive.size - 1]])
    tps = np.cumsum(positive.astype(np.float64), dtype=np.float64)[ends]
    fps = 1 + ends.astype(np.float64) - tps
    return fps, tps


def _binary_scores(y_true, y_score, pos_label):
    """``(positive indicator, y_score)`` of a plain binary case, or ``None``.

    ``pos_label=None`` means the larger label of ``y_true``.
    """
    y_score = _floats(y_score, 1)
    found = None if y_score is None else _labels(y_true, y_score.size, 2)
    if found is None:
        return None
    labels, y_true = found
    if pos_label is None:
        pos_label = labels[1]
    elif pos_label not in labels.tolist():
        return None
    return y_true == pos_label, y_score


def roc_auc(y_true, y_score, *, pos_label=None):
    """:func:`sklearn.metrics.roc_auc_score` of binary labels, the same float.

    ``y_score`` scores ``pos_label`` (default: the larger label of
    ``y_true``). The ROC curve is cut
    to its corners (``roc_curve``'s ``drop_intermediate``) and integrated
    with :func:`scipy.integrate.trapezoid`, as there.

    Examples
    --------
    >>> from skweighted.comparison._proba_metrics import roc_auc
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    plain = _binary_scores(y_true, y_score, pos_label)
    if plain is None:
        if pos_label is not None:
            y_true = np.asarray(y_true) == pos_label
        return roc_auc_score(y_true, y_score)
    fps, tps = _binary_curve(*plain)
    if fps.shape[0] > 2:
        corners = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.where(np.concatenate([[True], corners, [True]]))[0]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.concatenate([[0.0], fps]), np.concatenate([[0.0], tps])
    return float(1 * trapezoid(tps / tps[-1], fps / fps[-1]))


def average_precision(y_true, y_score, *, pos_label=1):
    """:func:`sklearn.metrics.average_precision_score` of binary labels, the
    same float: the step integral of the precision-recall curve.

    Examples
    --------
    >>> from skweighted.comparison._proba_metrics import average_precision
    >>> average_precision(["a", "a", "b", "b"], [0.1, 0.4, 0.35, 0.8], pos_label="b")
    0.8333333333333333
    """
    plain = _binary_scores(y_true, y_score, pos_label)
    if plain is None:
        return average_precision_score(y_true, y_score, pos_label=pos_label)
    fps, tps = _binary_curve(*plain)
    ps = tps + fps
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(ps != 0, np.divide(tps, ps), 0.0)
    recall = tps / tps[-1]
    precision = np.concatenate((np.flip(precision), [1.0]))
    recall = np.concatenate((np.flip(recall), [0.0]))
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def _one_hot(y_true, labels):
    """``y_true`` as one column of 0/1 per label (int64), two for two labels:
    what scikit-learn's ``LabelBinarizer`` gives its probabilistic metrics."""
    return (y_true[:, None] == labels[None, :]).astype(np.int64)


def _probabilities(y_true, y_proba, n_classes):
    """``(one-hot y_true, 2-D probabilities)`` of a plain case, or ``None``.

    A 1-D ``y_proba`` (two classes) becomes ``[1 - p, p]``, as in the
    library. ``None`` when a value lies outside [0, 1] (the library raises)
    or a row sums to 1 less closely than half the library's tolerance (it
    may warn).
    """
    y_proba = _floats(y_proba, np.ndim(y_proba))
    if y_proba is None or y_proba.ndim not in (1, 2):
        return None
    found = _labels(y_true, y_proba.shape[0], n_classes)
    if found is None:
        return None
    labels, y_true = found
    if y_proba.ndim == 1:
        y_proba = y_proba[:, np.newaxis]
    if y_proba.shape[1] == 1:
        y_proba = np.concatenate([1 - y_proba, y_proba], axis=1)
    if y_proba.shape[1] != n_classes:
        return None
    if y_proba.max() > 1 or y_proba.min() < 0:
        return None
    eps = np.finfo(y_proba.dtype).eps
    if (np.abs(np.sum(y_proba, axis=1) - 1) > np.sqrt(eps) / 2).any():
        return None
    return _one_hot(y_true, labels), y_proba


def neg_log_loss_of(y_true, y_proba):
    """:func:`sklearn.metrics.log_loss` with ``labels=None``, the same float.

    What scikit-learn's ``'neg_log_loss'`` scorer computes (un-negated): a
    1-D ``y_proba`` is the probability of the larger label of ``y_true``; a
    2-D one has a column per label of ``y_true``, sorted. Probabilities are
    clipped to the machine epsilon of their dtype, and a float32 ``y_proba``
    gives a loss summed in float32, as there.

    Examples
    --------
    >>> from skweighted.comparison._proba_metrics import neg_log_loss_of
    >>> round(neg_log_loss_of([0, 1, 1], [0.2, 0.7, 0.9]), 6)
    0.228393
    """
    n_classes = np.shape(y_proba)[1] if np.ndim(y_proba) == 2 else 2
    plain = _probabilities(y_true, y_proba, n_classes)
    if plain is None:
        return log_loss(y_true, y_proba)
    transformed, y_proba = plain
    eps = np.finfo(y_proba.dtype).eps
    y_proba = np.clip(y_proba, eps, 1 - eps)
    transformed = transformed.astype(y_proba.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = transformed * np.log(y_proba)
    terms = np.where(transformed == 0.0, np.asarray(0.0, dtype=terms.dtype), terms)
    return float(np.average(-np.sum(terms, axis=1)))


def brier_score(y_true, y_proba, *, pos_label=None, labels=None):
    """:func:`sklearn.metrics.brier_score_loss`, the same float.

    A 1-D ``y_proba`` is the probability of ``pos_label`` (given, and a
    label of ``y_true``): half the mean squared error over both columns,
    as scikit-learn scales two classes. A 2-D one has a column per entry of
    ``labels`` (given, sorted, all present in ``y_true``), not halved from
    three classes on.

    Examples
    --------
    >>> from skweighted.comparison._proba_metrics import brier_score
    >>> round(brier_score([0, 1, 1], [0.2, 0.7, 0.9], pos_label=1), 6)
    0.046667
    """
    plain = None
    if np.ndim(y_proba) == 1 and pos_label is not None and labels is None:
        binary = _binary_scores(y_true, y_proba, pos_label)
        if binary is not None and binary[1].max() <= 1 and binary[1].min() >= 0:
            positive, p = binary
            y01 = positive.astype(np.int64)
            plain = np.stack((1 - y01, y01), axis=1), np.stack((1 - p, p), axis=1)
    elif np.ndim(y_proba) == 2 and labels is not None and pos_label is None:
        found = _labels(y_true, np.shape(y_proba)[0], len(labels))
        if found is not None and np.array_equal(found[0], np.asarray(labels)):
            plain = _probabilities(y_true, y_proba, len(labels))
    if plain is None:
        return brier_score_loss(y_true, y_proba, pos_label=pos_label, labels=labels)
    transformed, y_proba = plain
    transformed = transformed.astype(y_proba.dtype, copy=False)
    score = np.asarray(np.average(np.sum((transformed - y_proba) ** 2, axis=1)))
    if y_proba.shape[1] < 3:
        score *= 0.5
    return float(score)

"""The label metrics of a comparison: scikit-learn's floats, counted once.

Balanced accuracy, accuracy, macro F1, the corrected geometric mean and the
recall of one class all come from three counts per label (true, predicted,
correct). scikit-learn and imbalanced-learn build a confusion matrix behind
a dozen input checks for each of them, a few milliseconds per call on a few
hundred labels; here :func:`label_counts` counts with :func:`numpy.bincount`
and each metric does the library's arithmetic on those counts (the same
operations on the same numbers, so the same float, bit for bit: the property
tests of ``tests/test_compare_metrics.py`` hold them to it). Anything but
plain 1-D integer, boolean or string labels, and the rare cases where the
library warns, go to the library function itself, which also raises its
errors.
"""

import warnings
from typing import NamedTuple

import numpy as np
from imblearn.metrics import geometric_mean_score
from scipy.stats import gmean
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)

__all__ = [
    "GMEAN_CORRECTION",
    "accuracy",
    "balanced_accuracy",
    "class_recall",
    "f1_macro",
    "geometric_mean",
    "label_counts",
    "plain_labels",
]

#: A recall of exactly zero is replaced by this value inside the geometric
#: mean, so one missed class lowers the score instead of zeroing it.
GMEAN_CORRECTION = 1e-3


class LabelCounts(NamedTuple):
    """Per label of the sorted union of ``y_true`` and ``y_pred``: how many
    samples have it (``support``), are predicted it (``predicted``), and both
    (``hits``)."""

    labels: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    hits: np.ndarray


def plain_labels(a):
    """Whether ``a`` is a non-empty 1-D array of integer, boolean or string
    labels (what :func:`label_counts` counts itself)."""
    if a.ndim != 1 or a.size == 0:
        return None
    if a.dtype.kind in "biu":
        return "number"
    if a.dtype.kind == "U" or (
        a.dtype.kind == "O" and all(isinstance(v, str) for v in a.tolist())
    ):
        return "string"
    return None


def label_counts(y_true, y_pred):
    """The :class:`LabelCounts` of two label vectors, or ``None``.

    ``None`` unless both are non-empty 1-D arrays of the same length holding
    plain labels of one kind (integers and booleans, or strings) with at
    least two distinct labels between them: the cases the metrics of this
    module leave to the library.

    Examples
    --------
    >>> from skweighted.comparison._label_metrics import label_counts
    >>> counts = label_counts([0, 0, 1, 2], [0, 1, 1, 1])
    >>> counts.labels.tolist(), counts.support.tolist(), counts.hits.tolist()
    ([0, 1, 2], [2, 1, 1], [1, 1, 0])
    """
    a, b = np.asarray(y_true), np.asarray(y_pred)
    kind = plain_labels(a)
    if kind is None or a.shape != b.shape or plain_labels(b) != kind:
        return None
    labels, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    if len(labels) < 2:  # scikit-learn warns about the 1x1 confusion matrix
        return None
    n = len(labels)
    true, pred = codes[: a.size], codes[a.size :]
    return LabelCounts(
        labels,
        np.bincount(true, minlength=n),
        np.bincount(pred, minlength=n),
        np.bincount(true[true == pred], minlength=n),
    )


def balanced_accuracy(y_true, y_pred, *, sample_weight=None, adjusted=False):
    """scikit-learn's balanced accuracy, the same float, without its overhead.

    The mean of the per-class recalls, exactly as
    :func:`sklearn.metrics.balanced_accuracy_score` computes it (the same
    counts, the same division and the same mean over the classes in sorted
    order, so the same float): a class that appears in ``y_pred`` but not in
    ``y_true`` has no recall and is left out of the mean, with scikit-learn's
    warning. It counts with :func:`label_counts` instead of building a
    confusion matrix through scikit-learn's input checks (on 400 labels, 40
    times faster for integers and 6 times for strings), which matters where
    it is called a hundred times per fit (the threshold search of
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV`). Anything
    but plain 1-D integer, boolean or string labels (``sample_weight``,
    ``adjusted=True``, float labels, a single label) goes to scikit-learn's
    function, which also raises its errors.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    sample_weight : array-like of shape (n_samples,), default=None
    adjusted : bool, default=False

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn.metrics import balanced_accuracy_score
    >>> from skweighted.comparison._metrics import balanced_accuracy
    >>> y_true, y_pred = [0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]
    >>> balanced_accuracy(y_true, y_pred)
    0.625
    >>> balanced_accuracy(y_true, y_pred) == balanced_accuracy_score(y_true, y_pred)
    True
    """
    counts = None
    if sample_weight is None and not adjusted:
        counts = label_counts(y_true, y_pred)
    if counts is None:
        return balanced_accuracy_score(
            y_true, y_pred, sample_weight=sample_weight, adjusted=adjusted
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = counts.hits / counts.support
    if (counts.support == 0).any():
        warnings.warn("y_pred contains classes not in y_true", stacklevel=2)
        per_class = per_class[counts.support > 0]
    return float(np.mean(per_class))


def accuracy(y_true, y_pred):
    """:func:`sklearn.metrics.accuracy_score`, the same float.

    The mean of the 0/1 hits is their (exact, integer) sum divided by their
    number, which is what this divides.

    Examples
    --------
    >>> from skweighted.comparison._label_metrics import accuracy
    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    0.75
    """
    counts = label_counts(y_true, y_pred)
    if counts is None:
        return accuracy_score(y_true, y_pred)
    return float(counts.hits.sum() / counts.support.sum())


def f1_macro(y_true, y_pred):
    """:func:`sklearn.metrics.f1_score` with ``average='macro'``, the same float.

    Per label of either vector ``2 tp / (true + predicted)`` (never 0 / 0:
    every such label is true or predicted somewhere), then their
    :func:`numpy.nanmean`, as scikit-learn computes it.

    Examples
    --------
    >>> from skweighted.comparison._label_metrics import f1_macro
    >>> f1_macro([0, 0, 1, 1], [0, 1, 1, 1])
    0.7333333333333334
    """
    counts = label_counts(y_true, y_pred)
    if counts is None:
        return f1_score(y_true, y_pred, average="macro")
    tp = counts.hits.astype(np.float64)
    denominator = 1.0 * counts.support.astype(np.float64) + counts.predicted
    return float(np.nanmean(2.0 * tp / denominator))


def geometric_mean(y_true, y_pred, *, correction=GMEAN_CORRECTION):
    """Geometric mean of the per-class recalls, with zero recalls corrected.

    imbalanced-learn's :func:`~imblearn.metrics.geometric_mean_score` with
    ``average='multiclass'``: the ``n_classes``-th root of the product of the
    per-class recalls, where a recall of 0 counts as ``correction``; the same
    float (``scipy.stats.gmean`` of the same recalls).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    correction : float, default=1e-3

    Returns
    -------
    score : float

    Examples
    --------
    >>> float(geometric_mean([0, 0, 1, 1, 2], [0, 0, 1, 1, 1]))  # no 2 found
    0.1
    """
    counts = label_counts(y_true, y_pred)
    if counts is None or not counts.support.all():
        # a predicted label absent from y_true: imbalanced-learn warns
        return geometric_mean_score(
            y_true, y_pred, average="multiclass", correction=correction
        )
    recall = counts.hits.astype(np.float64) / counts.support
    recall[recall == 0] = correction
    return gmean(recall)


def class_recall(y_true, y_pred, *, label):
    """The recall of one class, 0 when it has no sample: the same float as
    ``recall_score(..., labels=[label], average='macro', zero_division=0)``.

    Examples
    --------
    >>> from skweighted.comparison._label_metrics import class_recall
    >>> class_recall([0, 0, 1, 1], [0, 1, 1, 1], label=0), class_recall(
    ...     [0, 0], [0, 1], label=1)
    (0.5, 0.0)
    """
    counts = label_counts(y_true, y_pred)
    if counts is not None:
        labels = counts.labels.tolist()
        if label in labels and type(label) is type(labels[labels.index(label)]):
            k = labels.index(label)
            support = counts.support[k]
            return float(counts.hits[k] / support) if support else 0.0
    return recall_score(
        y_true, y_pred, labels=[label], average="macro", zero_division=0
    )

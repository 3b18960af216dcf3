"""The metrics of a comparison, as scikit-learn scorers.

Every metric is a scorer that ``cross_validate`` accepts. Scorers that
scikit-learn negates so that higher is better (``'neg_log_loss'``) are
reported under their plain name (``'log_loss'``) with their natural sign,
and ranked lower-is-better. The calibration intercept and slope are best at
a value (0 and 1), not at an end: :data:`IDEAL_VALUES`.
"""

import hashlib
import threading
import warnings
from collections import OrderedDict

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring, get_scorer, make_scorer

from .._compat import scorer_sign
from .._threads import single_blas_thread
from ._label_metrics import (
    GMEAN_CORRECTION,
    accuracy,
    balanced_accuracy,
    class_recall,
    f1_macro,
    geometric_mean,
)
from ._proba_metrics import average_precision, brier_score, neg_log_loss_of, roc_auc

__all__ = [
    "BALANCED_ACCURACY_SCORER",
    "ECE_BINS",
    "GMEAN_CORRECTION",
    "IDEAL_VALUES",
    "balanced_accuracy",
    "calibration_intercept_slope",
    "default_metrics",
    "default_scoring",
    "expected_calibration_error",
    "geometric_mean",
    "metric_goals",
    "positive_label",
    "reliability_table",
    "resolve_scoring",
]

#: Number of equal-width bins on [0, 1] of the expected calibration error and
#: the reliability diagram (the bins of scikit-learn's
#: :func:`~sklearn.calibration.calibration_curve` with ``strategy='uniform'``).
ECE_BINS = 10

#: Metrics that are best at a value rather than as high or as low as possible:
#: a perfectly calibrated model has calibration intercept 0 and slope 1. They
#: are ranked by their distance to that value.
IDEAL_VALUES = {"calibration_intercept": 0.0, "calibration_slope": 1.0}

#: Probabilities are clipped to [EPS, 1 - EPS] before their logit is taken.
_EPS = 1e-12

#: A scorer of :func:`balanced_accuracy` (higher is better): what the
#: built-in ``'threshold'`` strategy tunes its decision threshold for.
BALANCED_ACCURACY_SCORER = make_scorer(balanced_accuracy)


def _bin_ids(proba, n_bins):
    """Bin of each probability: ``calibration_curve``'s uniform bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], proba)


def _one_vs_rest(y_true, y_proba, labels, pos_label):
    """``(labels, indicator, proba)``, one column per class scored.

    A 1-D ``y_proba`` is the probability of ``pos_label`` (scikit-learn's
    binary convention); a 2-D one has a column per entry of ``labels``.
    """
    y_true = np.asarray(y_true)
    y_proba = np.asarray(y_proba, dtype=np.float64)
    if y_proba.ndim == 1:
        if pos_label is None:
            pos_label = np.unique(y_true)[-1] if labels is None else labels[-1]
        return [pos_label], (y_true == pos_label)[:, None], y_proba[:, None]
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    if y_proba.shape[1] != len(labels):
        raise ValueError(
            f"y_proba has {y_proba.shape[1]} columns but there are {len(labels)} "
            "labels; pass labels= in the order of the columns."
        )
    return list(labels), y_true[:, None] == labels[None, :], y_proba


def reliability_table(y_true, y_proba, *, labels=None, pos_label=None, n_bins=None):
    """Per class and probability bin: samples, mean predicted, observed rate.

    One-vs-rest for every class (a column of ``y_proba``): the predicted
    probability of the class is binned into ``n_bins`` equal-width bins on
    [0, 1] (those of :func:`~sklearn.calibration.calibration_curve`,
    ``strategy='uniform'``), and each bin holds how many samples fell in it,
    their mean predicted probability and the fraction of them that belong to
    the class. Empty bins are left out.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Probabilities; 1-D means those of ``pos_label``.
    labels : array-like of shape (n_classes,), default=None
        The labels of the columns (default: the sorted labels of ``y_true``).
    pos_label : label, default=None
        The class of a 1-D ``y_proba`` (default: the last label).
    n_bins : int, default=None
        ``None`` means :data:`ECE_BINS`.

    Returns
    -------
    table : DataFrame
        Columns ``class``, ``bin``, ``count``, ``predicted``, ``observed``.

    Examples
    --------
    >>> from skweighted.comparison import reliability_table
    >>> reliability_table([0, 0, 1, 1], [0.1, 0.1, 0.8, 0.6], n_bins=2)
       class  bin  count  predicted  observed
    0      1    0      2        0.1       0.0
    1      1    1      2        0.7       1.0
    """
    frames = [
        pd.DataFrame(
            {
                "class": [label] * len(bins),
                "bin": bins,
                "count": count,
                "predicted": predicted,
                "observed": observed,
            }
        )
        for label, bins, count, predicted, observed in _reliability_bins(
            y_true, y_proba, labels, pos_label, n_bins
        )
    ]
    return pd.concat(frames, ignore_index=True)


def _reliability_bins(y_true, y_proba, labels, pos_label, n_bins):
    """Per class: ``(label, bins, count, predicted, observed)`` of its
    non-empty bins, as arrays (the numbers of :func:`reliability_table`)."""
    n_bins = ECE_BINS if n_bins is None else int(n_bins)
    labels, indicator, proba = _one_vs_rest(y_true, y_proba, labels, pos_label)
    for k, label in enumerate(labels):
        ids = _bin_ids(proba[:, k], n_bins)
        count = np.bincount(ids, minlength=n_bins)
        predicted = np.bincount(ids, weights=proba[:, k], minlength=n_bins)
        observed = np.bincount(ids, weights=indicator[:, k], minlength=n_bins)
        full = count > 0
        yield (
            label,
            np.flatnonzero(full),
            count[full],
            predicted[full] / count[full],
            observed[full] / count[full],
        )


class ReliabilityRecorder:
    """A scorer that keeps the reliability table of the rows it scores.

    Given to ``cross_validate`` beside the real scorers (under
    :attr:`NAME`, whose score is dropped), it runs where the fold is scored,
    on exactly the test rows that ``cross_validate`` sliced, and keeps the
    rows of :func:`reliability_table` of them (``None`` when the estimator
    gives no probabilities), built straight from the arrays, without a
    DataFrame.
    """

    NAME = "_reliability"

    def __init__(self):
        self._rows = None

    def __call__(self, estimator, X, y_true):
        self._rows = None
        if hasattr(estimator, "predict_proba"):
            try:
                proba = estimator.predict_proba(X)
            except Exception:  # a diagram is a bonus; the real scorers report
                return 0.0
            self.keep(y_true, proba, estimator.classes_)
        return 0.0

    def keep(self, y_true, y_proba, classes):
        """Keep the rows of these probabilities (a column per entry of
        ``classes``), or ``None`` if they have none."""
        try:
            self._rows = reliability_rows(y_true, y_proba, classes)
        except Exception:
            self._rows = None

    def rows(self):
        """The table as JSON-ready rows ``[class, bin, count, predicted,
        observed]`` (``None`` when there is none)."""
        return self._rows


def reliability_rows(y_true, y_proba, classes):
    """The rows of :func:`reliability_table` as JSON-ready lists ``[class,
    bin, count, predicted, observed]``, built straight from the arrays;
    ``y_proba`` has a column per entry of ``classes``."""
    return [
        [_plain(label), int(b), int(n), float(pred), float(obs)]
        for label, *columns in _reliability_bins(y_true, y_proba, classes, None, None)
        for b, n, pred, obs in zip(*columns)
    ]


def _plain(label):
    """A label as a plain Python value (JSON-ready)."""
    return label.item() if hasattr(label, "item") else label


def expected_calibration_error(
    y_true, y_proba, *, labels=None, pos_label=None, n_bins=None
):
    """Class-wise expected calibration error, equal-width bins.

    For each class, the gap between the mean predicted probability and the
    observed frequency of the class in each of ``n_bins`` equal-width bins on
    [0, 1], averaged over the bins weighted by their number of samples; then
    the mean over the classes (the class-wise ECE of Kull et al., NeurIPS
    2019). A 1-D ``y_proba`` (scikit-learn's binary convention) scores the
    positive class alone; for two classes the two columns give nearly the
    same number, as their bins mirror each other.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_proba : array-like of shape (n_samples,) or (n_samples, n_classes)
    labels : array-like of shape (n_classes,), default=None
        The labels of the columns (default: the sorted labels of ``y_true``).
    pos_label : label, default=None
        The class of a 1-D ``y_proba`` (default: the last label).
    n_bins : int, default=None
        ``None`` means :data:`ECE_BINS` (10).

    Returns
    -------
    ece : float
        Between 0 (calibrated) and 1.

    Examples
    --------
    >>> from skweighted.comparison import expected_calibration_error
    >>> float(expected_calibration_error([0, 0, 1, 1], [0.1, 0.1, 0.8, 0.6]))
    0.2
    """
    gaps, counts, classes = [], [], []
    for k, (_, _, count, predicted, observed) in enumerate(
        _reliability_bins(y_true, y_proba, labels, pos_label, n_bins)
    ):
        gaps.append(np.abs(predicted - observed) * count)
        counts.append(count)
        classes.append(np.full(len(count), k))
    # pandas' grouped sums (compensated), the floats of the reliability table's
    # groupby, on the arrays of its bins
    classes = np.concatenate(classes)
    per_class = (
        pd.Series(np.concatenate(gaps)).groupby(classes, sort=False).sum()
        / pd.Series(np.concatenate(counts)).groupby(classes, sort=False).sum()
    )
    return float(per_class.mean())


def calibration_intercept_slope(y_true, y_proba, *, pos_label=None):
    r"""Calibration intercept and slope of binary probabilities.

    Logistic recalibration on the logit of the predicted probability
    :math:`\hat p` (Cox 1958; Van Calster et al. 2019, as used by van den
    Goorbergh et al., JAMIA 2022):

    - the **slope** :math:`b` of
      :math:`\operatorname{logit} P(y=1) = a + b \operatorname{logit}\hat p`
      (a logistic regression without penalty, scikit-learn's
      :class:`~sklearn.linear_model.LogisticRegression` with ``C=inf``):
      1 when the spread of the predictions is right, below 1 when they are
      too extreme;
    - the **intercept** :math:`a` of
      :math:`\operatorname{logit} P(y=1) = a + \operatorname{logit}\hat p`,
      the slope held at 1 (calibration-in-the-large, the root of its score
      equation :math:`\sum_i y_i - \sigma(a + \operatorname{logit}\hat p_i) = 0`
      found with ``scipy.optimize.brentq``): 0 when the predictions are
      right on average, negative when they overestimate the positive class.

    Probabilities are clipped to :math:`[10^{-12}, 1 - 10^{-12}]`. The
    results of the last few distinct inputs are kept: asking again for the
    same labels and probabilities (the intercept and the slope scorer of one
    fit) returns the same two floats without fitting again.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary labels.
    y_proba : array-like of shape (n_samples,) or (n_samples, 2)
        Probability of ``pos_label`` (or both columns, sorted labels).
    pos_label : label, default=None
        The positive class (default: the larger label).

    Returns
    -------
    intercept, slope : float
        NaN when ``y_true`` holds a single class.

    Examples
    --------
    >>> import numpy as np
    >>> from skweighted.comparison import calibration_intercept_slope
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.01, 0.99, 20_000)
    >>> y = rng.uniform(size=p.size) < p  # calibrated by construction
    >>> np.round(calibration_intercept_slope(y, p), 1).tolist()
    [0.0, 1.0]
    >>> too_high = np.clip(p + 0.2, 0, 0.99)  # overestimates the positive class
    >>> bool(calibration_intercept_slope(y, too_high)[0] < 0)
    True
    """
    y_true = np.asarray(y_true)
    y_proba = np.asarray(y_proba, dtype=np.float64)
    if pos_label is None:
        pos_label = np.unique(y_true)[-1]
    if y_proba.ndim == 2:
        y_proba = y_proba[:, -1]
    y = (y_true == pos_label).astype(np.float64)
    if y.min() == y.max():
        return np.nan, np.nan
    return _memo(_intercept_slope, y, y_proba)


def _intercept_slope(y, y_proba):
    """:func:`calibration_intercept_slope` of 0/1 floats ``y``."""
    lp = logit(np.clip(y_proba, _EPS, 1 - _EPS))
    events = y.sum()

    def score(a):
        return events - expit(a + lp).sum()

    lo, hi = -50.0, 50.0  # logit 1e-12 is -27.6: the root lies inside
    intercept = brentq(score, lo, hi, xtol=1e-10)
    with warnings.catch_warnings(), single_blas_thread():
        # Perfectly separated data has no finite slope; lbfgs stops at a large one.
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = LogisticRegression(C=np.inf, max_iter=1000).fit(lp[:, None], y)
    return float(intercept), float(fit.coef_[0, 0])


#: How many recent results :func:`_memo` keeps.
_MEMO_SIZE = 8
_MEMO = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _memo(func, *arrays):
    """``func(*arrays)``, computed once for the same ``func`` and array
    content (dtype, shape and bytes) among the last :data:`_MEMO_SIZE` calls.

    The calibration intercept and the slope are two scorers of one fit that
    each need :func:`calibration_intercept_slope` of the same probabilities
    (a logistic regression): the second gets the first one's result.
    """
    digest = hashlib.sha1(func.__qualname__.encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str((a.dtype.str, a.shape)).encode())
        digest.update(a.tobytes())
    key = digest.hexdigest()
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    result = func(*arrays)
    with _MEMO_LOCK:
        _MEMO[key] = result
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return result


def _intercept(y_true, y_proba, *, pos_label=None):
    return calibration_intercept_slope(y_true, y_proba, pos_label=pos_label)[0]


def _slope(y_true, y_proba, *, pos_label=None):
    return calibration_intercept_slope(y_true, y_proba, pos_label=pos_label)[1]


def metric_goals(scoring):
    """What is best for each metric: True (high), False (low) or a value.

    Parameters
    ----------
    scoring : dict
        Reported name -> ``(scorer, sign)``, as :func:`resolve_scoring` gives.

    Returns
    -------
    goals : dict
        Name -> ``True`` when higher is better, ``False`` when lower is,
        or the float it is best at (:data:`IDEAL_VALUES`).

    Examples
    --------
    >>> from skweighted.comparison._metrics import metric_goals, resolve_scoring
    >>> metric_goals(resolve_scoring(None, ["a", "b"]))["calibration_slope"]
    1.0
    """
    return {
        name: IDEAL_VALUES.get(name, sign > 0) for name, (_, sign) in scoring.items()
    }


def positive_label(classes, counts=None, pos_label=None):
    """The positive class of a binary problem: ``pos_label`` or the minority.

    What every binary metric (ROC AUC, average precision, the Brier score,
    the calibration intercept and slope) and the reliability diagram score:
    ``pos_label`` when given (it must be one of ``classes``), otherwise the
    class with the fewest samples in ``counts`` (the last of ``classes`` on
    a tie, or when ``counts`` is ``None``). ``None`` for more than two
    classes, where no class is positive.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The class labels, sorted.
    counts : array-like of shape (n_classes,), default=None
        The number of samples of each class.
    pos_label : label, default=None

    Returns
    -------
    label or None

    Examples
    --------
    >>> from skweighted.comparison._metrics import positive_label
    >>> positive_label(["churn", "stay"], [161, 2839])
    'churn'
    >>> positive_label(["churn", "stay"], [161, 2839], pos_label="stay")
    'stay'
    """
    classes = list(np.asarray(classes).tolist())
    if pos_label is not None:
        pos_label = _plain(pos_label)
        if pos_label not in classes:
            raise ValueError(
                f"pos_label={pos_label!r} is not a class of y; choose one of {classes}."
            )
        if len(classes) != 2:
            raise ValueError(
                f"pos_label={pos_label!r} is for binary problems; y has "
                f"{len(classes)} classes, scored one-vs-rest each."
            )
        return pos_label
    if len(classes) != 2:
        return None
    if counts is None:
        return classes[-1]
    counts = np.asarray(counts)
    return classes[0] if counts[0] < counts[1] else classes[1]


def default_scoring(classes, pos_label=None):
    """The default metrics for a problem with these classes.

    Accuracy, balanced accuracy, macro F1, the corrected geometric mean, the
    recall of every class (``recall[label]``), ROC AUC and average precision
    of ``pos_label`` for binary problems; log-loss, the Brier score and the expected
    calibration error (:func:`expected_calibration_error`); for binary
    problems the calibration intercept and slope
    (:func:`calibration_intercept_slope`). The label and probability metrics
    give the floats of scikit-learn's and imbalanced-learn's functions,
    without most of their input checks (``_label_metrics``,
    ``_proba_metrics``); every scorer is ``make_scorer`` of an entry of
    ``default_metrics``.

    The Brier score is scikit-learn's
    :func:`~sklearn.metrics.brier_score_loss`: for two classes the mean
    squared error of the probability of ``pos_label``, in [0, 1]; for
    more, the squared error against the one-hot labels summed over the
    classes and averaged over the samples, in [0, 2] (not halved).

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The class labels, sorted.
    pos_label : label, default=None
        The positive class of a binary problem (default: the last of
        ``classes``; :func:`~skweighted.comparison.compare` passes the
        minority class, ``positive_label``). Ignored for more classes.

    Returns
    -------
    scoring : dict
        Metric name -> scorer, in report order.

    Examples
    --------
    >>> list(default_scoring([0, 1]))  # doctest: +NORMALIZE_WHITESPACE
    ['balanced_accuracy', 'accuracy', 'f1_macro', 'geometric_mean', 'recall[0]',
     'recall[1]', 'roc_auc', 'average_precision', 'log_loss', 'brier', 'ece',
     'calibration_intercept', 'calibration_slope']
    """
    return {
        name: make_scorer(
            func, response_method=response, greater_is_better=higher, **kwargs
        )
        for name, func, response, kwargs, higher in default_metrics(classes, pos_label)
    }


def default_metrics(classes, pos_label=None):
    """What every default metric is: ``(name, function, response_method,
    kwargs, greater_is_better)``, in report order.

    The one table of the default metrics: :func:`default_scoring` makes a
    scorer of each entry (``make_scorer(function, response_method=...,
    greater_is_better=..., **kwargs)``), and
    :class:`~._fold_scorer.DefaultScorer` computes them all from one
    prediction of each kind. The functions give the floats of scikit-learn's
    and imbalanced-learn's (``_label_metrics``, ``_proba_metrics``).

    Examples
    --------
    >>> from skweighted.comparison._metrics import default_metrics
    >>> [(name, response) for name, _, response, *_ in default_metrics([0, 1])][6]
    ('roc_auc', ('decision_function', 'predict_proba'))
    """
    classes = list(np.asarray(classes).tolist())
    binary = len(classes) == 2
    if binary:
        pos_label = classes[-1] if pos_label is None else _plain(pos_label)
    label, proba = "predict", "predict_proba"
    score = ("decision_function", "predict_proba")
    metrics = [
        ("balanced_accuracy", balanced_accuracy, label, {}, True),
        ("accuracy", accuracy, label, {}, True),
        ("f1_macro", f1_macro, label, {}, True),
        ("geometric_mean", geometric_mean, label, {}, True),
        *[(f"recall[{c}]", class_recall, label, {"label": c}, True) for c in classes],
    ]
    if binary:
        # every binary metric scores the same class (scikit-learn's scorers
        # assume pos_label=1, which string labels lack)
        positive = {"pos_label": pos_label}
        metrics += [
            ("roc_auc", roc_auc, score, positive, True),
            ("average_precision", average_precision, score, positive, True),
        ]
    # for two classes the scorer passes the positive column alone
    of_classes = {"pos_label": pos_label} if binary else {"labels": classes}
    metrics += [
        ("log_loss", neg_log_loss_of, proba, {}, False),
        ("brier", brier_score, proba, of_classes, False),
        ("ece", expected_calibration_error, proba, of_classes, False),
    ]
    if binary:
        metrics += [
            ("calibration_intercept", _intercept, proba, of_classes, True),
            ("calibration_slope", _slope, proba, of_classes, True),
        ]
    return metrics


def resolve_scoring(scoring, classes, estimator=None, pos_label=None):
    """Turn ``scoring`` into ``{reported name: (scorer, sign)}``.

    A scorer that scikit-learn negates so that higher is better (its sign is
    -1, like ``'neg_log_loss'``) is reported with its natural sign and
    ranked lower-is-better; a ``neg_`` prefix is dropped from its name
    (``'neg_log_loss'`` is reported as ``'log_loss'``). The reported value
    is ``sign * scorer(estimator, X, y)``.

    Parameters
    ----------
    scoring : None, str, callable, list of str or dict
        ``None`` means :func:`default_scoring`; otherwise anything
        ``cross_validate`` accepts.
    classes : array-like
        The class labels.
    estimator : estimator, default=None
        Used to check a single callable scorer.
    pos_label : label, default=None
        The positive class of the default metrics (:func:`default_scoring`).

    Returns
    -------
    scoring : dict
        Reported name -> ``(scorer, sign)``.

    Examples
    --------
    >>> scoring = resolve_scoring(["accuracy", "neg_log_loss"], [0, 1])
    >>> {name: sign for name, (_, sign) in scoring.items()}
    {'accuracy': 1, 'log_loss': -1}
    """
    if scoring is None:
        named = default_scoring(classes, pos_label)
    elif isinstance(scoring, str):
        named = {scoring: get_scorer(scoring)}
    elif callable(scoring):
        named = {"score": check_scoring(estimator, scoring=scoring)}
    elif isinstance(scoring, dict) and scoring:
        named = {
            str(k): get_scorer(v) if isinstance(v, str) else v
            for k, v in scoring.items()
        }
    elif (
        isinstance(scoring, list | tuple)
        and scoring
        and all(isinstance(s, str) for s in scoring)
    ):
        named = {s: get_scorer(s) for s in scoring}
    else:
        raise ValueError(
            "scoring must be None, a metric name, a callable, a non-empty list of "
            f"metric names or a non-empty dict name -> scorer; got {scoring!r}."
        )
    resolved = {}
    for name, scorer in named.items():
        sign = -1 if scorer_sign(scorer) < 0 else 1
        if sign < 0 and name.startswith("neg_"):
            name = name[len("neg_") :]
        resolved[name] = (scorer, sign)
    return resolved

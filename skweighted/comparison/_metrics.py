"""The metrics of a comparison, as scikit-learn scorers.

Every metric is a scorer that ``cross_validate`` accepts. Scorers that
scikit-learn negates so that higher is better (``'neg_log_loss'``) are
reported under their plain name (``'log_loss'``) with their natural sign,
and ranked lower-is-better.
"""

from functools import partial

import numpy as np
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import (
    average_precision_score,
    check_scoring,
    get_scorer,
    make_scorer,
    recall_score,
)

from .._compat import scorer_sign

__all__ = [
    "GMEAN_CORRECTION",
    "default_scoring",
    "geometric_mean",
    "resolve_scoring",
]

#: A recall of exactly zero is replaced by this value inside the geometric
#: mean, so one missed class lowers the score instead of zeroing it.
GMEAN_CORRECTION = 1e-3


def geometric_mean(y_true, y_pred, *, correction=GMEAN_CORRECTION):
    """Geometric mean of the per-class recalls, with zero recalls corrected.

    imbalanced-learn's :func:`~imblearn.metrics.geometric_mean_score` with
    ``average='multiclass'``: the ``n_classes``-th root of the product of the
    per-class recalls, where a recall of 0 counts as ``correction``.

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
    return geometric_mean_score(
        y_true, y_pred, average="multiclass", correction=correction
    )


def _class_recall(y_true, y_pred, *, label):
    return recall_score(
        y_true, y_pred, labels=[label], average="macro", zero_division=0
    )


def default_scoring(classes):
    """The default metrics for a problem with these classes.

    Accuracy, balanced accuracy, macro F1, the corrected geometric mean, the
    recall of every class (``recall[label]``), ROC AUC and average precision
    for binary problems, and log-loss.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The class labels, sorted.

    Returns
    -------
    scoring : dict
        Metric name -> scorer, in report order.

    Examples
    --------
    >>> list(default_scoring([0, 1]))  # doctest: +NORMALIZE_WHITESPACE
    ['balanced_accuracy', 'accuracy', 'f1_macro', 'geometric_mean', 'recall[0]',
     'recall[1]', 'roc_auc', 'average_precision', 'log_loss']
    """
    classes = list(np.asarray(classes).tolist())
    scoring = {
        "balanced_accuracy": get_scorer("balanced_accuracy"),
        "accuracy": get_scorer("accuracy"),
        "f1_macro": get_scorer("f1_macro"),
        "geometric_mean": make_scorer(geometric_mean),
    }
    for label in classes:
        scoring[f"recall[{label}]"] = make_scorer(partial(_class_recall, label=label))
    if len(classes) == 2:
        scoring["roc_auc"] = get_scorer("roc_auc")
        # scikit-learn's 'average_precision' scorer assumes pos_label=1, which
        # string labels lack; the positive class is the second, as for ROC AUC.
        scoring["average_precision"] = make_scorer(
            average_precision_score,
            response_method=("decision_function", "predict_proba"),
            pos_label=classes[1],
        )
    scoring["log_loss"] = get_scorer("neg_log_loss")
    return scoring


def resolve_scoring(scoring, classes, estimator=None):
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
        named = default_scoring(classes)
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

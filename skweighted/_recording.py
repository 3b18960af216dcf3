"""The recording pass of a search: every fit prepared and recorded, none
trained, through scikit-learn's own ``cross_validate`` (so splitting,
metadata routing and pipelines behave exactly as in the real pass).

This is the layer that knows the estimator: the stacking engine below it
(:mod:`skweighted._stacking`) knows only nets and plans, and the searches and
the comparison above it call :func:`record_fits`.
"""

import warnings
from numbers import Integral

import numpy as np
from sklearn import model_selection
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning

from ._classifier import WeightedNeuralNetClassifier


def has_network(estimator):
    """Whether ``estimator`` is or holds a WeightedNeuralNetClassifier (only
    those fits are recorded; anything else would just run twice)."""
    parts = [estimator, *estimator.get_params(deep=True).values()]
    return any(isinstance(p, WeightedNeuralNetClassifier) for p in parts)


def record_fits(session, estimator, X, y, splits, params=None):
    """Record every fit of ``estimator`` on ``splits`` in ``session``.

    Returns, per split, the number of records once that split's fit was done
    (None when a fit failed and the splits cannot be told apart).

    A fit that fails here is not recorded, so it trains separately in the
    real pass (where it fails again, as scikit-learn's ``error_score``
    says); its error is kept with :meth:`Session.recording_failed` and shows
    in the report. The other warnings of this pass are not shown: the real
    pass runs the same code and gives them again.
    """
    marks = []

    def mark(est, X_test, y_test=None):
        marks.append(len(session.order))
        return 0.0

    with warnings.catch_warnings(record=True) as caught, session.recording():
        warnings.simplefilter("always")
        try:
            model_selection.cross_validate(
                _few_thresholds(estimator),
                X,
                y,
                cv=splits,
                scoring=mark,
                params=params,
                n_jobs=1,
                error_score=np.nan,
            )
        except Exception as exc:  # e.g. a splitter or router error
            session.recording_failed(_last_error(f"{type(exc).__name__}: {exc}"))
    for warning in caught:
        if issubclass(warning.category, FitFailedWarning):
            session.recording_failed(_last_error(str(warning.message)))
    return marks if len(marks) == len(splits) else None


def _last_error(message):
    """The error line (``Type: message``) that ends ``message``: scikit-learn's
    ``FitFailedWarning`` and its "All the fits failed" error end with the
    failed fits' tracebacks."""
    lines = [line for line in message.splitlines() if line.strip()]
    return lines[-1].strip() if lines else message


def _few_thresholds(estimator):
    """``estimator`` with every ``TunedThresholdClassifierCV`` in it scoring
    2 thresholds instead of its 100: it fits the same networks on the same
    rows, and a recording (whose networks are untrained) never uses the
    scores."""
    tuned = getattr(model_selection, "TunedThresholdClassifierCV", ())
    params = {
        f"{key}__thresholds": 2
        for key, value in estimator.get_params(deep=True).items()
        if isinstance(value, tuned) and isinstance(value.thresholds, Integral)
    }
    if isinstance(estimator, tuned) and isinstance(estimator.thresholds, Integral):
        params["thresholds"] = 2
    if not params:
        return estimator
    try:
        return clone(estimator).set_params(**params)
    except ValueError:  # e.g. inside a FrozenEstimator, which takes no params
        return estimator


def fit_time_shares(session, first, marks, n_splits):
    """Per split, the training seconds of its fits (their stack shares)."""
    if marks is None:
        return [0.0] * n_splits
    bounds = [first, *marks]
    return [session.train_time_of(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

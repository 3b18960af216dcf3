"""The default metrics of one fold, in one pass.

Given to ``cross_validate`` as its ``scoring`` (a callable returning a dict
of metric values, as scikit-learn documents), :class:`DefaultScorer`
computes every metric of :func:`~._metrics.default_metrics` from one call of
each prediction method the metrics need, instead of one scikit-learn scorer
per metric (each asking the estimator for its tags and its response again),
and keeps the reliability rows of the same probabilities. It hands each
metric the response its scorer would: scikit-learn's rule for a classifier,
which it follows for the plain case of a comparison (a classifier with
``predict_proba`` whose ``classes_`` are the metrics' classes); anything
else is scored by the scorers of :func:`~._metrics.default_scoring` through
``check_scoring``, exactly as ``cross_validate`` scored them.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring

from ._metrics import ReliabilityRecorder, default_metrics, default_scoring

__all__ = ["DefaultScorer"]


class DefaultScorer:
    """Scores a fitted estimator on every default metric at once.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The class labels of the comparison, sorted (those of
        :func:`~._metrics.default_scoring`).
    pos_label : label, default=None
        The positive class of a binary problem (default: the last class).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import check_scoring
    >>> from skweighted.comparison._fold_scorer import DefaultScorer
    >>> from skweighted.comparison._metrics import default_scoring
    >>> X, y = make_classification(random_state=0)
    >>> model = LogisticRegression().fit(X, y)
    >>> scorer = DefaultScorer([0, 1])
    >>> scores = scorer(model, X, y)
    >>> scores == check_scoring(model, default_scoring([0, 1]))(model, X, y)
    True
    >>> scorer.rows()[0][:3]  # class 0, bin 0: 33 samples
    [0, 0, 33]
    """

    def __init__(self, classes, pos_label=None):
        self.classes = list(np.asarray(classes).tolist())
        self.pos_label = pos_label
        self._recorder = ReliabilityRecorder()
        self._confusion = None

    def __call__(self, estimator, X, y_true):
        """``{metric: score}``, scikit-learn's scorer values (negated where
        lower is better, like ``'neg_log_loss'``)."""
        self._recorder = ReliabilityRecorder()
        self._confusion = None
        if not self._plain(estimator):
            return self._by_scorers(estimator, X, y_true)
        responses = {}

        def response(methods, pos_label):
            if isinstance(methods, str):
                methods = (methods,)
            name = next(m for m in methods if getattr(estimator, m, None) is not None)
            if name not in responses:
                responses[name] = getattr(estimator, name)(X)
            return _column(responses[name], name, self.classes, pos_label)

        scores = {}
        for name, func, methods, kwargs, higher in default_metrics(
            self.classes, self.pos_label
        ):
            value = func(y_true, response(methods, kwargs.get("pos_label")), **kwargs)
            scores[name] = value if higher else -1 * value
        self._recorder.keep(y_true, responses["predict_proba"], estimator.classes_)
        self._keep_confusion(y_true, responses["predict"])
        return scores

    def _keep_confusion(self, y_true, y_pred):
        index = {c: i for i, c in enumerate(self.classes)}
        k = len(self.classes)
        try:
            true = np.array([index[c] for c in np.asarray(y_true).tolist()])
            pred = np.array([index[c] for c in np.asarray(y_pred).tolist()])
        except (KeyError, TypeError):  # a label outside the classes
            return
        counts = np.bincount(true * k + pred, minlength=k * k)
        self._confusion = counts.reshape(k, k).tolist()

    def confusion(self):
        """The confusion matrix of the last fold scored: rows the true
        class, columns the predicted one, in the order of ``classes``
        (``None`` when the estimator could not be asked)."""
        return self._confusion

    def rows(self):
        """The reliability rows of the last fold scored
        (:func:`~._metrics.reliability_rows`; ``None`` without probabilities)."""
        return self._recorder.rows()

    def _plain(self, estimator):
        """Whether scikit-learn's scorers would treat ``estimator`` as a
        classifier of exactly ``self.classes`` with probabilities."""
        classes = getattr(estimator, "classes_", None)
        return (
            classes is not None
            and getattr(estimator, "predict", None) is not None
            and getattr(estimator, "predict_proba", None) is not None
            and np.ndim(classes) == 1
            and list(np.asarray(classes).tolist()) == self.classes
            and is_classifier(estimator)
        )

    def _by_scorers(self, estimator, X, y_true):
        """The scores of :func:`~._metrics.default_scoring`'s scorers, as
        ``cross_validate`` computes them, and the reliability rows from the
        estimator's own ``predict_proba``."""
        scorer = check_scoring(
            estimator, scoring=default_scoring(self.classes, self.pos_label)
        )
        scores = scorer(estimator, X, y_true)
        self._recorder(estimator, X, y_true)
        try:
            self._keep_confusion(y_true, estimator.predict(X))
        except Exception:  # a matrix is a bonus; the scorers report
            pass
        return scores


def _column(response, method, classes, pos_label):
    """The part of a classifier's response a scorer passes its metric:
    scikit-learn's ``_get_response_values`` for a classifier of ``classes``
    (binary: the column of ``pos_label``, default the last class; a decision
    function negated when ``pos_label`` is the first class)."""
    if len(classes) != 2 or method == "predict":
        return response
    if pos_label is None:
        pos_label = classes[-1]
    if method == "decision_function":
        return -1 * response if pos_label == classes[0] else response
    if response.shape[1] < 2:
        raise ValueError(
            f"Got predict_proba of shape {response.shape}, but need "
            "classifier with two classes."
        )
    return response[:, classes.index(pos_label)]

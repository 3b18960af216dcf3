"""Run every strategy on every cross-validation fold and collect the scores.

Each (strategy, fold) pair is one task: scikit-learn's
:func:`~sklearn.model_selection.cross_validate` on that single train/test
split, so a number in the report is exactly what ``cross_validate`` gives by
hand. The tasks go through one :class:`joblib.Parallel`, so ``n_jobs`` and
any joblib backend (``parallel_config(backend="dask")`` for a Dask cluster)
spread them out, and the progress bar ticks once per finished fit.
"""

import numbers
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import check_cv, cross_validate
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d
from tqdm.auto import tqdm

from .._stacking._passes import fit_time_shares, has_network, record_fits
from .._stacking._session import Session
from ..class_weight import class_counts
from . import _report as report
from ._metrics import resolve_scoring
from ._strategies import default_estimator, make_strategies

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    results : DataFrame
        One row per strategy x fold x metric: ``strategy``, ``fold``,
        ``metric``, ``value``, ``fit_time``, ``score_time``.
    summary : DataFrame
        One row per strategy x metric: ``mean``, ``std`` (over folds, ``ddof=0``
        as in ``GridSearchCV``'s ``cv_results_``) and ``rank`` (1 is best;
        ties share the better rank; a strategy whose fits failed comes last).
    metrics : dict
        Metric name -> True when higher is better, in report order.
    class_counts : dict
        Label -> number of samples in ``y``.
    notes : list of str
        Strategies that were skipped or failed, and why.
    strategies : dict
        Name -> the unfitted estimator that was evaluated.

    Examples
    --------
    >>> from skweighted import compare, load_imbalanced
    >>> from skweighted.comparison import default_estimator
    >>> X, y = load_imbalanced("wine", return_X_y=True)
    >>> result = compare(
    ...     X, y, strategies=["none", "balanced"], cv=2,
    ...     estimator=default_estimator(max_epochs=3), random_state=0, progress=False,
    ... )
    >>> sorted(result.results["strategy"].unique())
    ['balanced', 'none']
    >>> list(result.summary.columns)
    ['strategy', 'metric', 'mean', 'std', 'rank']
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    metrics: dict
    class_counts: dict
    notes: list = field(default_factory=list)
    strategies: dict = field(default_factory=dict)

    def table(self, rank_by=None):
        """Strategies as rows, ``mean ± std`` per metric, best first."""
        return report.ranked_table(self, rank_by=rank_by)

    def to_markdown(self, title="Comparison"):
        """The summary as a Markdown document."""
        return report.to_markdown(self, title=title)

    def plot(self, **kwargs):
        """One panel per metric: fold scores as dots over a bar at their mean."""
        return report.plot(self, **kwargs)

    def save(self, out, title="Comparison"):
        """Write ``results.csv``, ``summary.md`` and ``comparison.png`` to ``out``."""
        return report.save(self, out, title=title)


@contextmanager
def _one_torch_thread():
    """Run a fit on one torch thread, then restore the caller's setting.

    The networks of a comparison are small: PyTorch's intra-op threads cost
    more in synchronisation than they save (ten times more on a busy machine),
    and parallelism comes from running fits side by side (``n_jobs``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _evaluate(strategy, X, y, train, test, scorers, error_score):
    """Fit one strategy on one split; ``(scores, fit_time, score_time, error)``."""
    try:
        with _one_torch_thread():
            cv = cross_validate(
                strategy,
                X,
                y,
                cv=[(train, test)],
                scoring={name: scorer for name, (scorer, _) in scorers.items()},
                n_jobs=1,
                error_score="raise",
            )
    except Exception as exc:
        if error_score == "raise":
            raise
        scores = dict.fromkeys(scorers, float(error_score))
        return scores, np.nan, np.nan, f"{type(exc).__name__}: {exc}"
    scores = {
        name: sign * float(cv[f"test_{name}"][0]) for name, (_, sign) in scorers.items()
    }
    return scores, float(cv["fit_time"][0]), float(cv["score_time"][0]), None


def compare(
    X,
    y,
    strategies=None,
    estimator=None,
    *,
    cv=5,
    scoring=None,
    n_jobs=None,
    random_state=None,
    error_score=np.nan,
    progress=False,
    stacking=True,
):
    """Compare class weighting, resampling and threshold moving on ``X, y``.

    Every strategy is cross-validated on the same folds with scikit-learn's
    own machinery; samplers sit inside imbalanced-learn pipelines, so they
    resample the training rows of each fold only and never see a test row.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        Numeric features.
    y : array-like of shape (n_samples,)
        Class labels (binary or multi-class).
    strategies : None, str, list or dict, default=None
        ``None`` runs :data:`~skweighted.comparison.DEFAULT_STRATEGIES`. A list
        holds built-in names (see
        :data:`~skweighted.comparison.BUILTIN_STRATEGIES`), imbalanced-learn
        samplers (run as ``StandardScaler -> sampler -> estimator``) and
        estimators or pipelines (run as given); a dict gives them names.
        ``'threshold'`` is skipped, with a note, for multi-class ``y``.
    estimator : classifier, default=None
        What the built-in strategies train; ``None`` means
        :func:`~skweighted.comparison.default_estimator` (a
        :class:`~skweighted.WeightedNeuralNetClassifier`, 30 epochs).
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`~sklearn.model_selection.cross_validate` (an int means
        :class:`~sklearn.model_selection.StratifiedKFold` without shuffling).
    scoring : None, str, callable, list or dict, default=None
        ``None`` means :func:`~skweighted.comparison.default_scoring`; otherwise
        what ``cross_validate`` accepts. Scorers that scikit-learn negates
        (``'neg_log_loss'``) are reported un-negated (``'log_loss'``) and
        ranked lower-is-better.
    n_jobs : int, default=None
        Number of fits run in parallel through joblib; ``None`` follows the
        active ``joblib.parallel_config`` (one job outside one).
    random_state : int or None, default=None
        Seeds the network and every sampler or estimator whose
        ``random_state`` is left at ``None``. The same integer gives the same
        numbers.
    error_score : 'raise' or float, default=np.nan
        Score recorded when a fit fails (the failure becomes a note), or
        ``'raise'`` to raise it.
    progress : bool, default=False
        Show a progress bar over the fits.
    stacking : bool, default=True
        Train the networks of all strategies and folds together, in stacks
        (see :mod:`skweighted.model_selection`), with the same results; fits
        that cannot be stacked train separately. ``n_jobs`` then runs stack
        chunks in parallel. ``False`` trains every fit on its own.

    Returns
    -------
    comparison : Comparison
        ``results`` (tidy, one row per strategy x fold x metric), ``summary``
        (mean, std and rank per strategy and metric) and ``notes``.

    Examples
    --------
    >>> from skweighted import compare, load_imbalanced
    >>> from skweighted.comparison import default_estimator
    >>> X, y = load_imbalanced("wine", return_X_y=True)
    >>> res = compare(X, y, strategies=["none", "balanced"], cv=3,
    ...               estimator=default_estimator(max_epochs=5), random_state=0)
    >>> res.results.columns.tolist()
    ['strategy', 'fold', 'metric', 'value', 'fit_time', 'score_time']
    >>> res.notes
    []
    """
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    if type_of_target(y) not in ("binary", "multiclass"):
        raise ValueError(
            f"y must hold binary or multi-class labels; got {type_of_target(y)}."
        )
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"y must contain at least 2 classes; it contains only {classes.tolist()}."
        )
    if not (error_score == "raise" or isinstance(error_score, numbers.Number)):
        raise ValueError(
            f"error_score must be 'raise' or a number; got {error_score!r}."
        )
    if estimator is None:
        estimator = default_estimator(random_state=random_state)
    built, notes = make_strategies(
        strategies, estimator, classes=classes, random_state=random_state
    )
    scorers = resolve_scoring(scoring, classes, estimator)
    splits = list(check_cv(cv, y, classifier=True).split(X, y))

    tasks = [(name, k) for name in built for k in range(len(splits))]
    session, shares = (
        _stack(built, X, y, splits, tasks, n_jobs) if stacking else (None, {})
    )
    outcomes = {}
    with (
        tqdm(total=len(tasks), unit="fit", disable=not progress) as bar,
        session.replaying() if session else nullcontext(),
    ):
        parallel = Parallel(
            n_jobs=1 if session else n_jobs, return_as="generator_unordered"
        )
        jobs = parallel(
            delayed(_tagged)(
                (name, k), clone(built[name]), X, y, *splits[k], scorers, error_score
            )
            for name, k in tasks
        )
        for key, (scores, fit_time, score_time, error) in jobs:
            fit_time += shares.get(key, 0.0)  # its share of the stacked training
            outcomes[key] = scores, fit_time, score_time, error
            bar.set_postfix_str(key[0], refresh=False)
            bar.update()

    if session is not None:
        notes.extend(_stacking_notes(session.report()))
    rows = []
    for name, k in tasks:
        scores, fit_time, score_time, error = outcomes[name, k]
        if error is not None:
            notes.append(f"{name}: fit failed on fold {k} ({error}).")
        for metric, value in scores.items():
            rows.append((name, k, metric, value, fit_time, score_time))
    results = pd.DataFrame(
        rows, columns=["strategy", "fold", "metric", "value", "fit_time", "score_time"]
    )
    metrics = {name: sign > 0 for name, (_, sign) in scorers.items()}
    counts = class_counts(y, classes)
    return Comparison(
        results=results,
        summary=report.summarize(results, metrics),
        metrics=metrics,
        class_counts={c: int(n) for c, n in zip(classes.tolist(), counts)},
        notes=notes,
        strategies=built,
    )


def _stack(built, X, y, splits, tasks, n_jobs):
    """Record every task's fits, train them in stacks; the session to replay
    them from and each task's share of the training time."""
    session, shares = Session(n_jobs=n_jobs), {}
    spans = {}
    for name, k in tasks:
        if not has_network(built[name]):
            continue
        first = len(session.records)
        marks = record_fits(session, clone(built[name]), X, y, [splits[k]])
        spans[name, k] = first, marks
    session.train()
    for key, (first, marks) in spans.items():
        shares[key] = fit_time_shares(session, first, marks, 1)[0]
    return session, shares


def _stacking_notes(report):
    """One note per reason some fits trained separately."""
    reasons = {}
    for why in report["separate"]:
        reasons[why] = reasons.get(why, 0) + 1
    return [
        f"stacking: {n} of {report['n_fits']} network fits trained separately ({why})."
        for why, n in reasons.items()
    ]


def _tagged(key, *args):
    return key, _evaluate(*args)

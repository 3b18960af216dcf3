"""Run every strategy on every cross-validation fold and collect the scores.

Each (strategy, fold) pair is one task (:func:`run_task`): scikit-learn's
:func:`~sklearn.model_selection.cross_validate` on that single train/test
split, so a number in the report is exactly what ``cross_validate`` gives by
hand; a task returns a :class:`~._store.FitRecord`, a failure included. Each
record is appended to the run's :class:`~._store.RecordStore` the moment it
arrives, and a resumed run skips the tasks already recorded.

The pending tasks go through one :class:`joblib.Parallel`, so ``n_jobs`` and
any joblib backend (``parallel_config(backend="dask")`` for a Dask cluster)
spread them out; with stacking (the default), those whose strategy holds a
network run as :func:`_stacked` does instead: their network fits are
recorded in a :class:`~skweighted._stacking._session.Session` and trained
together in stacks (whose chunks go through joblib with ``n_jobs``), then
every such task runs, in order, in this process, its fits loading their
trained weights.
"""

import numbers
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import chain

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed, parallel_config
from sklearn.base import clone
from sklearn.model_selection import check_cv, cross_validate
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from .._classifier import WeightedNeuralNetClassifier
from .._dask import survive_lost_workers
from .._recording import has_network, record_fits
from .._stacking._session import Session, warn_separate
from .._threads import one_torch_thread
from ..class_weight import class_counts
from . import _report as report
from ._fingerprint import fingerprint
from ._fold_scorer import DefaultScorer
from ._metrics import (
    ReliabilityRecorder,
    metric_goals,
    positive_label,
    resolve_scoring,
)
from ._progress import Progress
from ._store import FitRecord, RecordStore
from ._strategies import default_estimator, input_kind, make_strategies

__all__ = ["RESULT_COLUMNS", "Comparison", "compare", "run_task"]

#: The columns of :attr:`Comparison.results`, and of ``results.csv``.
RESULT_COLUMNS = [
    "strategy",
    "fold",
    "metric",
    "value",
    "fit_time",
    "score_time",
    "epochs",
    "error_type",
    "error_message",
]

#: The columns of :attr:`Comparison.confusion`.
CONFUSION_COLUMNS = ["strategy", "fold", "true", "predicted", "count"]

#: The columns of :attr:`Comparison.reliability`.
RELIABILITY_COLUMNS = [
    "strategy",
    "fold",
    "class",
    "bin",
    "count",
    "predicted",
    "observed",
]


@dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    results : DataFrame
        One row per strategy x fold x metric: ``strategy``, ``fold``,
        ``metric``, ``value``, ``fit_time``, ``score_time``, ``epochs`` (the
        epochs the fold's networks trained, their mean when it holds several;
        NaN without one), ``error_type``, ``error_message``. The last two
        are empty unless the fit failed; then
        ``value`` is ``error_score`` (NaN by default) and ``fit_time`` is
        the time until the failure.
    summary : DataFrame
        One row per strategy x metric: ``mean``, ``std`` (over folds, ``ddof=0``
        as in ``GridSearchCV``'s ``cv_results_``), ``rank`` (1 is best;
        equal means share the better rank; a strategy whose fits failed comes
        last), ``p_value`` and ``tied``: the corrected resampled t-test of
        Nadeau & Bengio against the best strategy on the same folds, and
        whether its p-value is at least 0.05 (the best itself is tied).
    metrics : dict
        Metric name -> True when higher is better, False when lower is, or
        the value it is best at (0 for ``calibration_intercept``, 1 for
        ``calibration_slope``), in report order.
    class_counts : dict
        Label -> number of samples in ``y``.
    confusion : DataFrame or None
        The confusion matrix of every strategy and fold, tidy: ``strategy``,
        ``fold``, ``true``, ``predicted``, ``count`` (``None`` when the
        default metrics were not used).
    settings : dict
        What the run was: the data's shape, the folds, the seed, stacking,
        the estimator, the library versions and the wall time in seconds
        (``wall_time``; the time of this call for a resumed run).
    pos_label : label or None
        The positive class of a binary problem, which ROC AUC, average
        precision, the Brier score, the calibration intercept and slope and
        the reliability diagram score (the minority class unless
        ``compare(pos_label=)`` chose another); ``None`` for more classes.
    notes : list of str
        Strategies that were skipped, fits that failed (with the error), and
        for a partial report, which fits did not run.
    strategies : dict
        Name -> the unfitted estimator that was evaluated.
    reliability : DataFrame or None
        The reliability table of every strategy and fold
        (:func:`~skweighted.comparison.reliability_table` with columns
        ``strategy`` and ``fold`` in front); ``None`` when no strategy gave
        probabilities.

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
    ['strategy', 'metric', 'mean', 'std', 'rank', 'p_value', 'tied']
    """

    results: pd.DataFrame
    summary: pd.DataFrame
    metrics: dict
    class_counts: dict
    notes: list = field(default_factory=list)
    strategies: dict = field(default_factory=dict)
    reliability: pd.DataFrame | None = None
    pos_label: object = None
    confusion: pd.DataFrame | None = None
    settings: dict = field(default_factory=dict)

    @property
    def failed(self):
        """The strategies every fit of which failed, in order."""
        errors = self.results.groupby("strategy", sort=False)["error_type"]
        return [name for name, e in errors if e.notna().all()]

    def table(self, rank_by=None):
        """Strategies as rows, ``mean ± std`` per metric, best first."""
        return report.ranked_table(self, rank_by=rank_by)

    def to_markdown(self, title="Comparison"):
        """The summary as a Markdown document."""
        return report.to_markdown(self, title=title)

    def plot(self, **kwargs):
        """One panel per metric: fold scores as dots over a bar at their mean."""
        return report.plot(self, **kwargs)

    def plot_reliability(self, **kwargs):
        """Reliability diagram: one curve per strategy, with the fold spread."""
        return report.plot_reliability(self, **kwargs)

    def save(self, out, title="Comparison"):
        """Write ``results.csv``, ``summary.md``, ``comparison.png``,
        ``reliability.png`` and ``report.html`` to ``out``."""
        return report.save(self, out, title=title)


def run_task(
    name,
    fold,
    strategy,
    X,
    y,
    train,
    test,
    scorers,
    error_score,
    classes=None,
    pos_label=None,
):
    """Fit ``strategy`` on one split and score it; a :class:`FitRecord`.

    A fit that raises becomes a record of the error (no scores), unless
    ``error_score='raise'``. ``KeyboardInterrupt`` always propagates. The
    record keeps the reliability table of the test rows (when the strategy
    gives probabilities). ``classes`` says that ``scorers`` are
    ``default_scoring(classes, pos_label)``: one
    :class:`~._fold_scorer.DefaultScorer` then computes them all in one pass.
    """
    start = time.perf_counter()
    if classes is None:
        recorder = ReliabilityRecorder()
        scoring = {m: scorer for m, (scorer, _) in scorers.items()}
        scoring[recorder.NAME] = recorder
    else:
        recorder = scoring = DefaultScorer(classes, pos_label)
    try:
        # in this process: under a Dask backend, joblib would otherwise send
        # even this one fit from the worker to the cluster as a task of its
        # own, whose scattered data a lost worker takes with it
        with one_torch_thread(), parallel_config(backend="sequential"):
            cv = cross_validate(
                strategy,
                X,
                y,
                cv=[(train, test)],
                scoring=scoring,
                n_jobs=1,
                error_score="raise",
                return_estimator=True,
            )
    except Exception as exc:
        if error_score == "raise":
            raise
        return FitRecord(
            strategy=name,
            fold=fold,
            scores=None,
            fit_time=time.perf_counter() - start,
            score_time=np.nan,
            error_type=type(exc).__name__,
            error_message=str(exc),
        )
    scores = {m: sign * float(cv[f"test_{m}"][0]) for m, (_, sign) in scorers.items()}
    return FitRecord(
        strategy=name,
        fold=fold,
        scores=scores,
        fit_time=float(cv["fit_time"][0]),
        score_time=float(cv["score_time"][0]),
        reliability=recorder.rows(),
        confusion=None if classes is None else recorder.confusion(),
        epochs=network_epochs(cv["estimator"][0]),
    )


def network_epochs(estimator):
    """The mean ``n_iter_`` of the fitted networks in ``estimator`` (a
    pipeline's steps, a meta-estimator's ``estimator_``); None without one."""
    found = []

    def visit(obj):
        if isinstance(obj, WeightedNeuralNetClassifier):
            found.extend([obj.n_iter_] if hasattr(obj, "n_iter_") else [])
            return
        for _, step in getattr(obj, "steps", []):
            visit(step)
        for name in ("estimator_", "best_estimator_"):
            if hasattr(obj, name):
                visit(getattr(obj, name))

    visit(estimator)
    return float(np.mean(found)) if found else None


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
    checkpoint=None,
    resume=False,
    stacking=True,
    memory_budget=None,
    pos_label=None,
):
    """Compare class weighting, resampling and threshold moving on ``X, y``.

    Every strategy is cross-validated on the same folds with scikit-learn's
    own machinery; samplers sit inside imbalanced-learn pipelines, so they
    resample the training rows of each fold only and never see a test row.
    By default the networks of all strategies and folds train together, in
    stacks (``stacking``).

    Parameters
    ----------
    X : array-like, DataFrame, dict of arrays or Dataset
        Numeric features (2-D), or any input form the estimator takes:
        images ``(N, C, H, W)``, token ids, a dict of arrays (wrapped in a
        skorch ``SliceDict``), a torch Dataset (wrapped in a ``SliceDataset``;
        ``y`` is still required). Beyond tables, see
        :func:`~skweighted.comparison.make_strategies` for how the strategies
        adapt.
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
        active ``joblib.parallel_config`` (one job outside one). With
        ``stacking``, that holds for the strategies without a network; the
        network fits train in stacks whose chunks run ``n_jobs`` at a time
        through joblib (``None``: one at a time; a stack is one chunk unless
        it would exceed 1 GiB on the CPU), then load their results one task
        after the other, in this process.
    random_state : int or None, default=None
        Seeds the network and every sampler or estimator whose
        ``random_state`` is left at ``None``. The same integer gives the same
        numbers.
    error_score : 'raise' or float, default=np.nan
        The value of every metric of a fit that raised an exception; the
        comparison goes on, the row holds the error's type and message, and
        a note says so. ``'raise'`` stops at the first failure and raises it.
        ``KeyboardInterrupt`` always stops the run.
    progress : bool, default=False
        Show the fits done and failed and the time left: a progress bar on
        a terminal, one line per fit otherwise (a CI log).
    checkpoint : str or path, default=None
        A folder in which every finished fit is recorded (``fits.jsonl``,
        appended and flushed as each fit finishes), so that an interrupted or
        killed run can be resumed. A folder holding an unfinished run is
        refused unless ``resume=True``.
    resume : bool, default=False
        Continue the run recorded in ``checkpoint``: the finished fits are
        read back and only the missing ones run. Refused, with what differs,
        unless the data, the folds, the strategies' and the estimator's
        parameters, the metrics, ``random_state`` and the library versions
        are those of the recorded run. Damaged records are dropped with a
        warning and their fits run again. With nothing recorded yet, the
        run starts afresh.
    stacking : bool, default=True
        Train the network fits of every strategy and fold together, in
        stacks (the engine of :mod:`skweighted.model_selection`): the fits
        of the tasks still to run are recorded, trained in stacks, then each
        task runs as without stacking, its fits loading their trained
        weights, so every number is that of the separate fit within float32
        rounding. ``fit_time`` includes each fit's share of the stacked
        training. A fit that cannot be stacked (a module with
        AlphaDropout, callbacks other than an ``LRScheduler``, a
        ``train_split``, a ``Dataset`` input, a criterion from outside
        :mod:`skweighted.losses`, ...) trains
        separately, and a note says which and why. ``False`` trains every
        fit on its own. Part of what a resume checks.
    memory_budget : int or None, default=None
        Bytes the comparison may hold for its stacks, all together: the
        recorded fits, their training rows (resampled ones included), the
        results kept until each fit is scored, and the stack chunks training
        at once; larger stacks train in chunks, with the same results. See
        :class:`skweighted.model_selection.GridSearchCV`. Without stacking
        there are no stacks, and it has no effect.
    pos_label : label, default=None
        The positive class of a binary problem: the class that ROC AUC,
        average precision, the Brier score, the calibration intercept and
        slope and the reliability diagram score. ``None`` means the minority
        class (the rarer of the two; the larger label on a tie). Refused for
        more than two classes, where every class is scored one-vs-rest.

    Returns
    -------
    comparison : Comparison
        ``results`` (tidy, one row per strategy x fold x metric), ``summary``
        (mean, std and rank per strategy and metric) and ``notes``.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C. Its ``comparison`` attribute holds the report of the fits
        that finished (``None`` if none did); with ``checkpoint``, they are
        recorded and ``resume=True`` continues the run. An exception raised
        under ``error_score='raise'`` carries the same attribute.
    TimeoutError
        Under ``joblib.parallel_config(backend="dask")``, when the cluster
        has had no worker for ``wait_for_workers_timeout`` seconds (joblib's
        option, 10 by default); it carries ``comparison`` too. A lost worker
        alone costs only the fits it was running: they run again on the
        other workers, with the same results.

    Examples
    --------
    >>> from skweighted import compare, load_imbalanced
    >>> from skweighted.comparison import default_estimator
    >>> X, y = load_imbalanced("wine", return_X_y=True)
    >>> res = compare(X, y, strategies=["none", "balanced"], cv=3,
    ...               estimator=default_estimator(max_epochs=5), random_state=0)
    >>> res.results.columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['strategy', 'fold', 'metric', 'value', 'fit_time', 'score_time', 'epochs',
     'error_type', 'error_message']
    >>> res.notes
    []
    >>> unstacked = compare(X, y, strategies=["none", "balanced"], cv=3,
    ...                     estimator=default_estimator(max_epochs=5),
    ...                     random_state=0, stacking=False)
    >>> diff = (res.results["value"] - unstacked.results["value"]).abs().max()
    >>> bool(diff < 1e-3)
    True
    """
    started = time.time()
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
    if not isinstance(stacking, bool | np.bool_):
        raise ValueError(f"stacking must be True or False; got {stacking!r}.")
    if memory_budget is not None and not (
        isinstance(memory_budget, numbers.Integral)
        and not isinstance(memory_budget, bool)
        and memory_budget >= 1
    ):
        raise ValueError(
            "memory_budget must be None or a positive number of bytes; got "
            f"{memory_budget!r}."
        )
    if resume and checkpoint is None:
        raise ValueError(
            "resume=True needs checkpoint=FOLDER, the folder whose records to resume."
        )
    counts = class_counts(y, classes)
    pos_label = positive_label(classes, counts, pos_label)
    X = _sliceable(X)
    kind = input_kind(X)
    if estimator is None:
        estimator = default_estimator(random_state=random_state)
    built, notes = make_strategies(
        strategies,
        estimator,
        classes=classes,
        random_state=random_state,
        class_prior=counts / counts.sum(),
        input_kind=kind,
    )
    if kind != "table":
        notes.insert(
            0,
            f"X is {_KIND_NAMES[kind]}, not a table: the strategies run without the "
            "StandardScaler step (scaling is the module's job) and samplers "
            "through skweighted.resampling.RowSampler.",
        )
    scorers = resolve_scoring(scoring, classes, estimator, pos_label)
    splits = list(check_cv(cv, y, classifier=True).split(X, y))
    tasks = [(name, k) for name in built for k in range(len(splits))]
    ratio = float(np.mean([len(test) / len(train) for train, test in splits]))

    store, records = None, {}
    if checkpoint is not None:
        identity = fingerprint(
            X, y, splits, built, estimator, scorers, random_state, stacking
        )
        store, records = RecordStore.open(checkpoint, identity, tasks, resume=resume)
    pending = [t for t in tasks if t not in records]  # a resume skips the rest
    networks = [t for t in pending if stacking and has_network(built[t[0]])]
    others = [t for t in pending if t not in networks]
    log = []  # (strategy, "stacked" or why not) per network fit scored

    # the default metrics are scored in one pass per fold
    default = classes if scoring is None else None

    def args(name, k):
        estimator = clone(built[name])
        train, test = splits[k]
        return (
            *(name, k, estimator, X, y, train, test),
            *(scorers, error_score, default, pos_label),
        )

    def assemble(partial):
        result = _assemble(
            records,
            tasks,
            built,
            scorers,
            error_score,
            notes + _stacking_notes(log),
            y,
            partial,
            ratio,
            pos_label,
        )
        result.settings = _settings(
            X, y, splits, estimator, random_state, stacking, time.time() - started
        )
        return result

    bar = Progress(
        len(tasks),
        done=len(records),
        failed=sum(r.failed for r in records.values()),
        enabled=progress,
    )
    try:
        # the network tasks in stacks, the others side by side through joblib
        # (on Dask, a lost worker's tasks run again on the others, and the
        # progress, or else a warning of the "skweighted" logger, says so)
        with survive_lost_workers(bar.note if progress else None):
            # made here: it trains its stacks through the backend active now
            session = Session(memory_budget, n_jobs) if stacking else None
            finished = chain(
                _stacked(session, networks, args, bar, X, y, splits, log),
                _parallel(others, args, n_jobs),
            )
            # each record is kept, on disk too, as soon as it arrives, in
            # whatever order the tasks finish
            for record in finished:
                if store is not None:
                    store.append(record)
                records[record.key] = record
                bar.update(record)
    except BaseException as exc:
        # Ctrl-C, a failure under error_score='raise', or a Dask cluster left
        # without workers: what finished is recorded already; hand the caller
        # a report of it too.
        exc.comparison = assemble(partial=True) if records else None
        raise
    finally:
        bar.close()
    warn_separate([why for _, why in log if why != "stacked"], len(log), "compare")
    return assemble(partial=False)


def _parallel(tasks, args, n_jobs):
    """Run ``tasks`` through one :class:`joblib.Parallel`; yield their records
    as they finish (nothing starts before the first is asked for)."""
    if tasks:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield from parallel(delayed(run_task)(*args(name, k)) for name, k in tasks)


def _stacked(session, tasks, args, bar, X, y, splits, log):
    """Run ``tasks`` with their network fits trained in stacks; yield their
    records in order.

    The network fits of the tasks are recorded and trained together; then
    every task runs (:func:`run_task` on ``args(name, fold)``), in order, its
    fits loading their results (the session finds each by its fingerprint),
    and its ``fit_time`` gains its fits' share of the stacked training. Each
    network fit of the second pass adds ``(strategy, "stacked" or why it
    trained separately)`` to ``log``.
    """
    if not tasks:
        return
    bar.stage(f"stacking: recording the network fits of {len(tasks)} tasks")
    spans = {}  # task -> its fits' positions in the recording order
    with one_torch_thread():
        for name, k in tasks:
            first = len(session.order)
            _, _, estimator, *_ = args(name, k)
            record_fits(session, estimator, X, y, [splits[k]])
            spans[name, k] = first, len(session.order)
        n = sum(r.job is not None for r in session.records.values())
        bar.stage(f"stacking: training {n} network fits")
        # one thread too: on two cores, two threads train the default run's
        # stack 15-20% faster on an idle machine, and three to ten times
        # slower when another process takes a core (OpenMP's spinning)
        session.train(progress=bar.training)
    bar.stage(None)  # the time left, from the fits finished from now on
    for name, k in tasks:
        first = len(session.replayed)
        with session.replaying():
            record = run_task(*args(name, k))
        log.extend((name, why) for why in session.replayed[first:])
        share = session.train_time_of(*spans[name, k])
        yield replace(record, fit_time=record.fit_time + share)


def _stacking_notes(log):
    """One note per reason some network fits trained separately, with the
    strategies they belong to (none when every fit was stacked); ``log`` as
    :func:`_stacked` fills it."""
    why = {}  # reason -> Counter of strategy names
    for name, reason in log:
        if reason != "stacked":
            why.setdefault(reason, Counter())[name] += 1
    return [
        f"stacking: {sum(names.values())} of {len(log)} network fits trained "
        "separately ("
        + ", ".join(f"{name!r} x{n}" for name, n in names.items())
        + f"): {reason}."
        for reason, names in why.items()
    ]


def _assemble(
    records,
    tasks,
    built,
    scorers,
    error_score,
    notes,
    y,
    partial,
    ratio=None,
    pos_label=None,
):
    """The :class:`Comparison` of the finished ``records``, in task order.

    ``ratio`` is the mean test/train size of the folds, for the paired test
    of the summary; ``pos_label`` the positive class of a binary problem.
    """
    notes = list(notes)
    rows, curves, matrices = [], [], []
    classes = np.unique(y).tolist()
    fill = np.nan if error_score == "raise" else float(error_score)
    for key in tasks:
        record = records.get(key)
        if record is None:
            continue
        if record.failed:
            notes.append(
                f"{record.strategy}: fit failed on fold {record.fold} "
                f"({record.error_type}: {record.error_message})."
            )
        if record.confusion:
            k = len(record.confusion)
            matrices.extend(
                [record.strategy, record.fold, classes[i], classes[j], n]
                for i, row in enumerate(record.confusion[:k])
                for j, n in enumerate(row)
            )
        if record.reliability:
            curves.extend(
                [record.strategy, record.fold, *row] for row in record.reliability
            )
        for metric in scorers:
            value = fill if record.failed else record.scores[metric]
            rows.append(
                (
                    record.strategy,
                    record.fold,
                    metric,
                    value,
                    record.fit_time,
                    record.score_time,
                    np.nan if record.epochs is None else record.epochs,
                    record.error_type,
                    record.error_message,
                )
            )
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for name in built:
        mine = [records[t] for t in tasks if t[0] == name and t in records]
        if mine and all(r.failed for r in mine):
            notes.append(f"{name}: every fit failed; it ranks last.")
    if partial:
        missing = [f"{s} fold {k}" for s, k in tasks if (s, k) not in records]
        notes.append(
            f"Partial report: {len(tasks) - len(missing)} of {len(tasks)} fits "
            f"finished; not run: {', '.join(missing[:10])}"
            + (f" and {len(missing) - 10} more." if len(missing) > 10 else ".")
        )
    reliability = None
    if curves:
        reliability = pd.DataFrame(curves, columns=RELIABILITY_COLUMNS)
    confusion = None
    if matrices:
        confusion = pd.DataFrame(matrices, columns=CONFUSION_COLUMNS)
    metrics = metric_goals(scorers)
    classes = np.unique(y)
    counts = class_counts(y, classes)
    return Comparison(
        results=results,
        summary=report.summarize(results, metrics, test_train_ratio=ratio),
        metrics=metrics,
        class_counts={c: int(n) for c, n in zip(classes.tolist(), counts)},
        notes=notes,
        strategies={name: built[name] for name in built},
        reliability=reliability,
        pos_label=pos_label,
        confusion=confusion,
    )


def _settings(X, y, splits, estimator, random_state, stacking, wall_time):
    """What the report says of a run: data, folds, seed, estimator, versions."""
    import importlib.metadata

    shape = getattr(X, "shape", None)
    shape = tuple(int(n) for n in shape) if shape is not None else (len(y),)
    versions = {}
    for name in ("skweighted", "scikit-learn", "torch", "skorch", "imbalanced-learn"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "?"
    from .._version import __version__

    versions["skweighted"] = __version__
    versions |= {"numpy": np.__version__, "pandas": pd.__version__}
    return {
        "data": f"{_KIND_NAMES.get(input_kind(X), 'a table')}, shape {shape}",
        "folds": len(splits),
        "test rows per fold": sorted({len(test) for _, test in splits}),
        "random_state": random_state,
        "stacking": bool(stacking),
        "estimator": repr(estimator),
        "versions": versions,
        "wall_time": float(wall_time),
    }


_KIND_NAMES = {
    "array": "an N-D array",
    "integer array": "an N-D integer array",
    "dict": "a dict of arrays",
    "dataset": "a torch Dataset",
}


def _sliceable(X):
    """``X`` in a form scikit-learn's CV can slice: dicts and Datasets wrapped."""
    from skorch.helper import SliceDataset, SliceDict

    if isinstance(X, dict) and not isinstance(X, SliceDict):
        return SliceDict(**X)
    if isinstance(X, torch.utils.data.Dataset):
        return SliceDataset(X)
    return X

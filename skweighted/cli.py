"""The ``skweighted`` command line.

``skweighted compare`` runs
:func:`skweighted.compare <skweighted.comparison.compare>` on a CSV file or a
built-in dataset, prints a ranked table and writes ``results.csv``,
``summary.md``, ``comparison.png`` and ``reliability.png``; every finished
fit is recorded in ``fits.jsonl`` as it finishes, so ``--resume`` continues
an interrupted run. The networks of all strategies and folds train together
in stacks unless ``--no-stacking``.
Exit status: 0 on success; 1 when every fit of some strategy failed (the
report is written), or when a fit failed under ``--error-score raise``; 2 on
bad input (nothing is trained); 130 on Ctrl-C (a partial report is written).
"""

import argparse
import contextlib
import difflib
import logging
import shlex
import sys
from pathlib import Path

# light imports only: ``--help`` and bad arguments answer without PyTorch,
# pandas or the comparison, which load when a comparison runs
from .comparison._names import BUILTIN_STRATEGIES, DEFAULT_STRATEGIES
from .comparison._store import FILENAME, ResumeError
from .datasets import DATASETS

DEFAULT_OUT = "skweighted-report"
#: Seconds a run waits for a Dask worker when the cluster has none.
DEFAULT_WORKER_TIMEOUT = 60.0
#: Seconds the warm-up of the Dask workers' clients waits at most.
WARM_UP_TIMEOUT = 10.0
#: Exit status when every fit of a strategy failed, or a fit failed under
#: ``--error-score raise``.
EXIT_FAILED = 1
#: Exit status on bad input.
EXIT_INPUT = 2
#: Exit status on Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(f"{message} (see {self.prog} --help)")


def _parser():
    parser = _Parser(prog="skweighted", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    p = commands.add_parser(
        "compare",
        help="compare class weighting, resampling and threshold moving",
        description="Cross-validate class weighting, resampling and threshold "
        "moving on one problem; print a ranked table and write results.csv, "
        "summary.md, comparison.png and reliability.png.",
        epilog="strategies: "
        + "; ".join(f"{k} ({v})" for k, v in BUILTIN_STRATEGIES.items())
        + ". datasets: "
        + "; ".join(f"{k} ({v})" for k, v in DATASETS.items()),
    )
    p.add_argument("csv", nargs="?", help="a CSV file (default: a built-in dataset)")
    p.add_argument("--target", help="the label column of the CSV file")
    p.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default=None,
        help="built-in dataset to use when no CSV is given (default: synthetic)",
    )
    p.add_argument(
        "--strategies",
        default=",".join(DEFAULT_STRATEGIES),
        help="comma-separated strategy names (default: %(default)s)",
    )
    p.add_argument(
        "--pos-label",
        metavar="LABEL",
        help="the positive class of a binary target, scored by ROC AUC, average "
        "precision, Brier, the calibration intercept and slope and the "
        "reliability diagram (default: the minority class)",
    )
    p.add_argument("--folds", type=int, default=5, help="CV folds (default: 5)")
    p.add_argument(
        "--epochs",
        type=int,
        default=200,
        help="most training epochs; each network stops at its best epoch on a "
        "validation split before that (default: 200)",
    )
    p.add_argument(
        "--no-early-stopping",
        action="store_true",
        help="train every network --epochs epochs on all its rows, with no "
        "validation split",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="fits run in parallel (default: 1); with stacking, stack chunks",
    )
    p.add_argument(
        "--no-stacking",
        action="store_true",
        help="train every network fit on its own instead of all strategies and "
        "folds together in stacks (the same numbers within float32 rounding; "
        "use it to spread the fits themselves over --n-jobs or --scheduler)",
    )
    p.add_argument(
        "--memory-budget",
        type=int,
        default=None,
        metavar="MIB",
        help="MiB the stacks may hold, with the fits recorded for them and "
        "their results; larger stacks train in chunks, with the same numbers "
        "(default: 1024 on the CPU, half the free GPU memory)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the fits on a Dask cluster at ADDRESS (e.g. tcp://host:8786), "
        "or 'local' to start a local one with --n-jobs process workers",
    )
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=DEFAULT_WORKER_TIMEOUT,
        metavar="SECONDS",
        help="with --scheduler: how long the run waits when the cluster has no "
        "worker left before it stops, with a partial report to --resume "
        "(default: %(default)g); a lost worker's fits run again on the others",
    )
    p.add_argument(
        "--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help=f"continue the run recorded in OUT/{FILENAME}: run only the fits "
        "missing there (refused if the data or settings differ)",
    )
    p.add_argument(
        "--error-score",
        default="nan",
        metavar="VALUE",
        help="score of a fit that fails (default: nan; the run goes on and the "
        "failure is reported), or 'raise' to stop at the first failure",
    )
    p.add_argument(
        "--metrics",
        metavar="NAMES",
        help="comma-separated metrics of the printed table, or 'all' (default: "
        "balanced accuracy, the minority class's recall, average precision and "
        "Brier; every metric is in summary.md and report.html)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress and no messages on stderr, only the table and errors",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _error_score(text):
    if text == "raise":
        return "raise"
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"--error-score must be 'raise' or a number (e.g. nan, 0); got {text!r}"
        ) from None
    return value


def _read_csv(path, target):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    if target is None:
        raise InputError("--target COLUMN is required with a CSV file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path} as CSV: {str(e).strip()}") from None
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise InputError(f"column {target!r} not found in {path}; columns: {columns}")
    y = frame[target]
    X = frame.drop(columns=[target])
    if y.isna().any():
        raise InputError(f"target column {target!r} has {int(y.isna().sum())} missing")
    if X.shape[1] == 0:
        raise InputError(f"{path} has no feature column besides {target!r}")
    text = X.columns[[not pd.api.types.is_numeric_dtype(t) for t in X.dtypes]]
    if len(text):
        names = ", ".join(map(repr, text[:10].tolist()))
        raise InputError(
            f"non-numeric feature column(s) {names}: encode them as numbers first "
            "(e.g. one-hot with pandas.get_dummies) or drop them"
        )
    missing = X.columns[X.isna().any().to_numpy()]
    if len(missing):
        names = ", ".join(map(repr, missing[:10].tolist()))
        raise InputError(f"feature column(s) {names} have missing values; impute first")
    return X, y.to_numpy(), path.name


def _pos_label(text, y):
    """The label of ``y`` that ``--pos-label TEXT`` names (``None``: none given)."""
    if text is None:
        return None
    import pandas as pd

    classes = pd.unique(pd.Series(y))
    if len(classes) != 2:
        raise InputError(
            f"--pos-label is for a binary target; this one has {len(classes)} classes"
        )
    for label in classes:
        if str(label) == text:
            return label
    raise InputError(
        f"--pos-label {text!r} is not a class of the target; choose one of "
        + ", ".join(sorted(map(str, classes)))
    )


def _metric_names(text, y, pos_label):
    """The metrics that ``--metrics TEXT`` names, checked before training
    against the default metrics of ``y`` (``None``: the default columns)."""
    if text is None:
        return None
    import numpy as np

    from .class_weight import class_counts
    from .comparison._metrics import default_metrics, positive_label

    classes = np.unique(y)
    counts = class_counts(y, classes)
    positive = positive_label(classes, counts, pos_label)
    known = [name for name, *_ in default_metrics(classes, positive)]
    if text.strip() == "all":
        return known
    names = [m.strip() for m in text.split(",") if m.strip()]
    for name in names or [""]:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise InputError(
                f"unknown metric {name!r} in --metrics{hint} Choose from "
                + ", ".join(known)
            )
    return names


def _table_metrics(names, result):
    """``names`` where the run has them all, else the default columns."""
    if names is not None and all(m in result.metrics for m in names):
        return names
    return None


def _check_target(y, folds, target):
    import pandas as pd

    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise InputError(
            f"the target {target!r} has a single class ({counts.index[0]!r}); "
            "a comparison needs at least 2"
        )
    if folds < 2:
        raise InputError(f"--folds must be at least 2, got {folds}")
    if counts.min() < folds:
        raise InputError(
            f"class {counts.idxmin()!r} has only {counts.min()} samples, fewer than "
            f"--folds {folds}; lower --folds"
        )


@contextlib.contextmanager
def _scheduler(address, n_jobs, quiet=False, worker_timeout=DEFAULT_WORKER_TIMEOUT):
    """Route joblib to a Dask cluster for the duration of the block; the run
    waits ``worker_timeout`` seconds for a worker when none is left."""
    if address is None:
        yield n_jobs
        return
    try:
        from distributed import Client, LocalCluster
        from joblib import parallel_config
    except ImportError:
        raise InputError(
            "--scheduler needs dask.distributed: pip install 'skweighted[dask]'"
        ) from None
    with contextlib.ExitStack() as stack:
        if address == "local":
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_jobs if n_jobs and n_jobs > 0 else None,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                )
            )
            address = cluster
        try:
            client = stack.enter_context(Client(address, timeout="10s"))
        except (OSError, TimeoutError) as e:
            raise InputError(
                f"cannot reach the Dask scheduler {address}: {e}"
            ) from None
        if not quiet:
            print(f"Dask: {client}", file=sys.stderr)
        else:  # nor that a worker was lost
            logger = logging.getLogger("skweighted")
            stack.callback(logger.setLevel, logger.level)
            logger.setLevel(logging.ERROR)
        warm_worker_clients(client)
        stack.enter_context(
            parallel_config(backend="dask", wait_for_workers_timeout=worker_timeout)
        )
        yield -1


def _worker_client():
    from distributed import get_client

    get_client()


def warm_worker_clients(client, timeout=WARM_UP_TIMEOUT):
    """Give every worker of ``client``'s cluster its own client, one worker
    task at a time; wait ``timeout`` seconds at most.

    joblib's Dask backend asks for a worker client inside each task; two
    threads of one worker doing that at once for the first time can fail in
    dask.distributed's connection handshake (``assert len(msg) == 1``).

    The warm-up must never hold the run: a worker can die before its task
    runs (its task, restricted to it alone, would wait for ever in state
    ``no-worker``), or join later (a nanny restarting a killed worker). So
    each task prefers its worker but may run on another
    (``allow_other_workers``: there, the client exists and the task returns
    at once), and the warm-up carries on after ``timeout`` whatever is left.
    A worker that joins later makes its client in its first task, which can
    race only on a worker with several threads; ``--nthreads 1`` workers, as
    the docs deploy them, never do.
    """
    from distributed import wait

    workers = list(client.scheduler_info()["workers"])
    futures = [
        client.submit(_worker_client, workers=[w], allow_other_workers=True, pure=False)
        for w in workers
    ]
    with contextlib.suppress(TimeoutError):
        wait(futures, timeout=timeout)


def _compare(args, argv):
    from ._dask import NoWorkerError
    from .comparison import compare, default_estimator
    from .comparison._console import terminal_table
    from .datasets import load_imbalanced

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in BUILTIN_STRATEGIES]
    if unknown or not strategies:
        raise InputError(
            f"unknown strategy {unknown[0] if unknown else '(none given)'!r}; "
            f"choose from {', '.join(BUILTIN_STRATEGIES)}"
        )
    if args.epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {args.epochs}")
    if args.memory_budget is not None and args.memory_budget < 1:
        raise InputError(
            f"--memory-budget must be at least 1 (MiB), got {args.memory_budget}"
        )
    if not args.worker_timeout > 0:  # NaN too
        raise InputError(
            f"--worker-timeout must be a positive number of seconds, got "
            f"{args.worker_timeout:g}"
        )
    error_score = _error_score(args.error_score)
    if args.csv is not None:
        if args.dataset is not None:
            raise InputError("give either a CSV file or --dataset, not both")
        X, y, title = _read_csv(args.csv, args.target)
        target = args.target
    else:
        name = args.dataset or "synthetic"
        X, y = load_imbalanced(name, return_X_y=True)
        title, target = f"dataset {name!r}", "target"
    _check_target(y, args.folds, target)
    pos_label = _pos_label(args.pos_label, y)
    table_metrics = _metric_names(args.metrics, y, pos_label)

    title = f"skweighted compare: {title}"
    resume = "skweighted " + shlex.join(
        [*argv, "--resume"] if "--resume" not in argv else argv
    )
    try:
        with _scheduler(
            args.scheduler, args.n_jobs, args.quiet, args.worker_timeout
        ) as n_jobs:
            result = compare(
                X,
                y,
                strategies=strategies,
                estimator=default_estimator(
                    max_epochs=args.epochs,
                    early_stopping=not args.no_early_stopping,
                    random_state=args.seed,
                ),
                cv=args.folds,
                n_jobs=n_jobs,
                random_state=args.seed,
                error_score=error_score,
                progress=not (args.no_progress or args.quiet),
                checkpoint=args.out,
                resume=args.resume,
                stacking=not args.no_stacking,
                memory_budget=None
                if args.memory_budget is None
                else args.memory_budget * 2**20,
                pos_label=pos_label,
            )
    except ResumeError as e:
        raise InputError(str(e)) from None
    except KeyboardInterrupt as e:
        _stopped(e, args.out, title, "interrupted", resume)
        return EXIT_INTERRUPTED
    except NoWorkerError as e:
        why = (
            f"stopped: the Dask cluster had no worker for {args.worker_timeout:g} s "
            "(--worker-timeout)"
        )
        _stopped(e, args.out, title, why, resume)
        return EXIT_FAILED
    except Exception as e:
        if not hasattr(e, "comparison"):
            raise
        _stopped(e, args.out, title, f"a fit failed: {type(e).__name__}: {e}", resume)
        return EXIT_FAILED
    metrics = _table_metrics(table_metrics, result)
    print(terminal_table(result, metrics=metrics))
    for note in result.notes:
        print(f"note: {note}")
    paths = result.save(args.out, title=title)
    print(f"wrote to {args.out}: " + ", ".join(p.name for p in paths.values()))
    if result.failed:
        names = ", ".join(map(repr, result.failed))
        print(
            f"skweighted: error: every fit of {names} failed (see the notes)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _stopped(exc, out, title, why, resume):
    """Write the partial report carried by ``exc`` and say how to go on."""
    partial = getattr(exc, "comparison", None)
    lines = [f"skweighted: {why}"]
    if partial is None:
        lines.append("no fit had finished; nothing to report")
    else:
        partial.save(out, title=f"{title} (partial)")
        lines.append(f"{partial.notes[-1]} Partial report written to {out}.")
    lines.append(f"resume with: {resume}")
    print("\n".join(lines), file=sys.stderr)


def main(argv=None):
    """Run the ``skweighted`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success; 1 when every fit of some strategy failed, or a fit
        failed under ``--error-score raise``; 2 on bad input; 130 on Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        return _compare(args, argv)
    except InputError as e:
        print(f"skweighted: error: {e}", file=sys.stderr)
        return EXIT_INPUT

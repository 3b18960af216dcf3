"""The ranked table as printed in a terminal: a few metrics, never too wide.

``summary.md`` and ``report.html`` hold every metric; the terminal shows the
rank and at most :data:`MAX_METRICS` of them, those that matter for an
imbalanced problem (:func:`terminal_metrics`), in as many columns as the
terminal has (:func:`terminal_width`). Until the table fits, headers break
at ``_`` and ``[`` onto a second line, cells lose the spaces around ``±``,
then the standard deviation; only then is a metric dropped.
"""

import shutil
import sys
import textwrap

import numpy as np

from ._report import TIE_MARK, _ordered_strategies, positive_class

__all__ = ["MAX_METRICS", "terminal_metrics", "terminal_table", "terminal_width"]

#: The most metrics the terminal table shows by default.
MAX_METRICS = 5
#: The width of the table when the output is not a terminal (a file, a CI log).
NOT_A_TTY_WIDTH = 100
_GAP = "  "
#: (cell style, headers on two lines), tried in order until the table fits.
_LAYOUTS = [
    ("spaced", False),
    ("spaced", True),
    ("compact", False),
    ("compact", True),
    ("mean", True),
]


def terminal_width(stream=None):
    """Columns of the terminal ``stream`` writes to (default: stdout), or
    :data:`NOT_A_TTY_WIDTH` when it is not a terminal."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return NOT_A_TTY_WIDTH
    return shutil.get_terminal_size((NOT_A_TTY_WIDTH, 24)).columns


def terminal_metrics(comparison):
    """The metrics the terminal shows by default, in this order where the
    comparison has them: balanced accuracy, the recall of the minority
    class, average precision (of the positive class) or the corrected
    geometric mean, the Brier score, and the epochs trained; the first
    :data:`MAX_METRICS` metrics of a comparison with none of them."""
    counts = comparison.class_counts
    minority = min(counts, key=counts.get)
    positive = positive_class(comparison)
    wanted = [
        "balanced_accuracy",
        f"recall[{minority}]",
        *([f"recall[{positive}]"] if positive not in (None, minority) else []),
        "average_precision" if positive is not None else "geometric_mean",
        "brier",
        "epochs",
    ]
    chosen = [m for m in wanted if m in comparison.metrics][:MAX_METRICS]
    return chosen or list(comparison.metrics)[:MAX_METRICS]


def _cell(mean, std, tied, style):
    mark = TIE_MARK.strip() if tied else " "
    if style == "spaced":
        return f"{mean:.3f} ± {std:.3f} {mark}"
    if style == "compact":
        return f"{mean:.3f}±{std:.3f}{mark}"
    return f"{mean:.3f}{mark}"


def _header(name, split):
    """A metric name on two lines, broken at ``[`` or the last ``_`` when
    ``split``."""
    if not split:
        return ["", name]
    if "[" in name:
        head, tail = name.split("[", 1)
        return [head, "[" + tail]
    if "_" in name:
        head, tail = name.rsplit("_", 1)
        return [head, tail]
    return ["", name]


def _epochs(comparison, order):
    """Per strategy of ``order``, the mean epochs its networks trained (early
    stopping), as cells; None when no fit recorded any."""
    results = comparison.results
    if "epochs" not in results or not results["epochs"].notna().any():
        return None
    means = results.groupby("strategy")["epochs"].mean()
    return ["" if np.isnan(means.get(s, np.nan)) else f"{means[s]:.1f}" for s in order]


def _render(comparison, order, rank_metric, metrics, style, split):
    summary = comparison.summary.set_index(["strategy", "metric"])
    tied = "tied" in summary.columns
    columns = [(["", "strategy"], list(order), "<")]
    ranks = [str(summary.loc[(s, rank_metric), "rank"]) for s in order]
    columns.append((["", "rank"], ranks, ">"))
    epochs = _epochs(comparison, order)
    if epochs is not None:
        columns.append((["", "epochs"], epochs, ">"))
    for m in metrics:
        cells = [
            _cell(
                summary.loc[(s, m), "mean"],
                summary.loc[(s, m), "std"],
                tied and summary.loc[(s, m), "tied"],
                style,
            )
            for s in order
        ]
        columns.append((_header(m, split), cells, ">"))
    widths = [max(len(t) for t in head + cells) for head, cells, _ in columns]
    lines = []
    for row in range(2):
        lines.append(
            _GAP.join(
                f"{head[row]:{align}{w}}"
                for (head, _, align), w in zip(columns, widths)
            ).rstrip()
        )
    for i in range(len(order)):
        lines.append(
            _GAP.join(
                f"{cells[i]:{align}{w}}"
                for (_, cells, align), w in zip(columns, widths)
            ).rstrip()
        )
    if not lines[0].strip():
        lines = lines[1:]
    return lines


def terminal_table(comparison, metrics=None, width=None, rank_by=None):
    """The ranked table as text no wider than ``width`` columns.

    Parameters
    ----------
    comparison : Comparison
    metrics : list of str, default=None
        The metric columns; ``None`` means :func:`terminal_metrics`.
    width : int, default=None
        ``None`` means :func:`terminal_width`.
    rank_by : str, default=None
        The metric that orders the rows (default: the comparison's first).

    Returns
    -------
    text : str
        The table, a line on the ties and, when metrics were left out (or
        did not fit), a line saying how many and where they are.
    """
    width = terminal_width() if width is None else int(width)
    order, rank_metric = _ordered_strategies(comparison, rank_by)
    chosen = terminal_metrics(comparison) if metrics is None else list(metrics)
    unknown = [m for m in chosen if m not in comparison.metrics]
    if unknown:
        raise ValueError(
            f"metrics={unknown!r} are not metrics of this comparison; choose from "
            f"{list(comparison.metrics)}."
        )
    shown = list(chosen)
    while True:
        for style, split in _LAYOUTS:
            lines = _render(comparison, order, rank_metric, shown, style, split)
            if max(map(len, lines)) <= width:
                break
        if max(map(len, lines)) <= width or len(shown) <= 1:
            break
        shown.pop()
    notes = []
    if "tied" in comparison.summary.columns:
        notes.append(f"{TIE_MARK.strip()}: the best, or within fold noise of it.")
    if style == "mean":
        notes.append("Means over the folds (too narrow for the std).")
    hidden = len(comparison.metrics) - len(shown)
    if hidden:
        notes.append(
            f"{hidden} more metric{'s' if hidden > 1 else ''} in summary.md and "
            "report.html (--metrics to choose)."
        )
    if notes:
        lines.append(textwrap.fill(" ".join(notes), width=max(width, 20)))
    return "\n".join(lines)

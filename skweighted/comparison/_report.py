"""The report of a comparison: summary, ranked table, Markdown, plot, files."""

import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot", "ranked_table", "save", "summarize", "to_markdown"]

#: Width of ``comparison.png`` in inches; the height grows with the rows.
FIG_WIDTH = 16.0
#: Resolution of ``comparison.png``.
DPI = 100
_PANEL_COLS = 4


def summarize(results, metrics):
    """Mean, std (``ddof=0``) and rank of every strategy on every metric.

    Parameters
    ----------
    results : DataFrame
        The tidy results of :func:`~skweighted.comparison.compare`.
    metrics : dict
        Metric name -> True when higher is better.

    Returns
    -------
    summary : DataFrame
        Columns ``strategy``, ``metric``, ``mean``, ``std``, ``rank``.
    """
    order = list(dict.fromkeys(results["strategy"]))
    grouped = results.groupby(["strategy", "metric"], sort=False)["value"]
    summary = grouped.agg(mean="mean", std=lambda v: float(np.std(v, ddof=0)))
    summary = summary.reset_index()
    ranks = []
    for metric, part in summary.groupby("metric", sort=False):
        ranks.append(
            part["mean"]
            .rank(ascending=not metrics[metric], method="min", na_option="bottom")
            .astype(int)
        )
    summary["rank"] = pd.concat(ranks).reindex(summary.index)
    summary["strategy"] = pd.Categorical(summary["strategy"], order)
    summary["metric"] = pd.Categorical(summary["metric"], list(metrics))
    summary = summary.sort_values(["metric", "strategy"]).reset_index(drop=True)
    summary[["strategy", "metric"]] = summary[["strategy", "metric"]].astype(str)
    return summary


def _rank_by(comparison, rank_by):
    metric = rank_by or next(iter(comparison.metrics))
    if metric not in comparison.metrics:
        raise ValueError(
            f"rank_by={metric!r} is not a metric of this comparison; choose one of "
            f"{list(comparison.metrics)}."
        )
    return metric


def _ordered_strategies(comparison, rank_by=None):
    metric = _rank_by(comparison, rank_by)
    part = comparison.summary[comparison.summary["metric"] == metric]
    part = part.sort_values("rank", kind="stable")
    return part["strategy"].tolist(), metric


def ranked_table(comparison, rank_by=None):
    """Strategies as rows (best first), ``mean ± std`` per metric.

    Parameters
    ----------
    comparison : Comparison
    rank_by : str, default=None
        The metric that orders the rows; ``None`` means the first metric
        (balanced accuracy by default).

    Returns
    -------
    table : DataFrame
        Indexed by strategy, one string column per metric, and ``rank``.
    """
    order, metric = _ordered_strategies(comparison, rank_by)
    summary = comparison.summary.set_index(["strategy", "metric"])
    table = pd.DataFrame(index=pd.Index(order, name="strategy"))
    table["rank"] = [summary.loc[(s, metric), "rank"] for s in order]
    for m in comparison.metrics:
        table[m] = [
            f"{summary.loc[(s, m), 'mean']:.3f} ± {summary.loc[(s, m), 'std']:.3f}"
            for s in order
        ]
    return table


def to_markdown(comparison, title="Comparison"):
    """The ranked table, the problem and the notes as Markdown."""
    table = ranked_table(comparison)
    metric = _rank_by(comparison, None)
    counts = ", ".join(f"{k}: {v}" for k, v in comparison.class_counts.items())
    n_folds = comparison.results["fold"].nunique()
    header = "| strategy | " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * (len(table.columns) + 1)
    lower = [m for m, higher in comparison.metrics.items() if not higher]
    direction = (
        f" {', '.join(f'`{m}`' for m in lower)}: lower is better; the others: "
        "higher is better."
        if lower
        else " Higher is better for every metric."
    )
    lines = [
        f"# {title}",
        "",
        f"Class counts: {counts}. {n_folds}-fold cross-validation; each cell is "
        f"the mean ± standard deviation over the folds. Rows are ranked by "
        f"`{metric}`.{direction}",
        "",
        header,
        rule,
    ]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    if comparison.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in comparison.notes]
    return "\n".join(lines) + "\n"


def figure_size(n_metrics):
    """``(width, height)`` in inches of the plot of ``n_metrics`` panels."""
    rows = math.ceil(n_metrics / _PANEL_COLS)
    return FIG_WIDTH, 0.6 + 3.6 * rows


def plot(comparison, rank_by=None, title=None):
    """One panel per metric: every strategy's fold scores and their mean.

    Strategies are rows, in the same (ranked) order in every panel; each
    fold is a dot, the mean a bar, and the best strategy of each panel is
    highlighted. The figure is :data:`FIG_WIDTH` inches wide.

    Parameters
    ----------
    comparison : Comparison
    rank_by : str, default=None
        The metric that orders the strategies (default: the first).
    title : str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    order, _ = _ordered_strategies(comparison, rank_by)
    metrics = list(comparison.metrics)
    fig = Figure(figsize=figure_size(len(metrics)), dpi=DPI, layout="constrained")
    rows = math.ceil(len(metrics) / _PANEL_COLS)
    axes = fig.subplots(rows, _PANEL_COLS, squeeze=False).ravel()
    results = comparison.results
    summary = comparison.summary.set_index(["metric", "strategy"])
    ypos = np.arange(len(order))[::-1]
    for ax, metric in zip(axes, metrics):
        higher = comparison.metrics[metric]
        means = np.array([summary.loc[(metric, s), "mean"] for s in order])
        best = summary.loc[metric]["rank"].reindex(order).to_numpy() == 1
        colors = np.where(best, "tab:orange", "tab:blue")
        ax.barh(ypos, means, color=colors, alpha=0.35, height=0.7)
        for y0, s, mean in zip(ypos, order, means):
            vals = results.loc[
                (results["metric"] == metric) & (results["strategy"] == s), "value"
            ].to_numpy()
            jitter = np.linspace(-0.18, 0.18, len(vals)) if len(vals) > 1 else [0]
            ax.plot(vals, y0 + np.asarray(jitter), "o", color="black", ms=3)
            if np.isfinite(mean):
                ax.text(
                    0.01,
                    y0,
                    f"{mean:.3f}",
                    va="center",
                    ha="left",
                    fontsize=8,
                    transform=ax.get_yaxis_transform(),
                )
        ax.set_yticks(ypos, order, fontsize=8)
        direction = "higher is better" if higher else "lower is better"
        ax.set_title(f"{metric}\n({direction})", fontsize=10)
        finite = results.loc[results["metric"] == metric, "value"]
        finite = finite[np.isfinite(finite)]
        if higher and len(finite) and finite.min() >= 0 and finite.max() <= 1:
            ax.set_xlim(0, 1.1)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    counts = ", ".join(f"{k}: {v}" for k, v in comparison.class_counts.items())
    n_folds = results["fold"].nunique()
    fig.suptitle(
        f"{title or 'Comparison'} — class counts {counts}; {n_folds} folds "
        "(dots: folds, bars: mean, orange: best)",
        fontsize=11,
    )
    return fig


def save(comparison, out, title="Comparison"):
    """Write ``results.csv``, ``summary.md`` and ``comparison.png`` to ``out``.

    Parameters
    ----------
    comparison : Comparison
    out : str or path
        The directory; created when missing.
    title : str, default='Comparison'

    Returns
    -------
    paths : dict
        ``'results'``, ``'summary'``, ``'plot'`` -> the written paths.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / "results.csv",
        "summary": out / "summary.md",
        "plot": out / "comparison.png",
    }
    comparison.results.to_csv(paths["results"], index=False)
    paths["summary"].write_text(to_markdown(comparison, title=title))
    plot(comparison, title=title).savefig(paths["plot"], dpi=DPI)
    return paths

"""The report of a comparison: summary, ranked table, Markdown, plots, files."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ALPHA",
    "plot",
    "plot_reliability",
    "ranked_table",
    "save",
    "summarize",
    "to_markdown",
]

#: Width of ``comparison.png`` in inches; the height grows with the rows.
FIG_WIDTH = 16.0
#: Resolution of ``comparison.png`` and ``reliability.png``.
DPI = 100
_PANEL_COLS = 4
#: A strategy is tied with the best when the paired test against it gives
#: a p-value of at least ``ALPHA``.
ALPHA = 0.05
#: The mark of a tied (or best) cell in the ranked table.
TIE_MARK = " *"


def _is_direction(goal):
    return isinstance(goal, bool | np.bool_)


def direction(goal):
    """``'higher is better'``, ``'lower is better'`` or ``'best at v'``."""
    if _is_direction(goal):
        return "higher is better" if goal else "lower is better"
    return f"best at {goal:g}"


def to_loss(values, goal):
    """``values`` on a lower-is-better scale: ``-v``, ``v`` or ``|v - goal|``."""
    values = np.asarray(values, dtype=np.float64)
    if _is_direction(goal):
        return -values if goal else values
    return np.abs(values - goal)


def paired_p_value(loss, best_loss, test_train_ratio):
    """Two-sided p-value of the corrected resampled t-test (Nadeau & Bengio).

    The per-fold differences :math:`d_j` of two strategies on the same
    folds, :math:`t = \bar d / \\sqrt{(1/J + n_{test}/n_{train})\\, s_d^2}`
    with :math:`J` folds and :math:`s_d^2` their sample variance, against a
    Student t with :math:`J - 1` degrees of freedom (Nadeau & Bengio,
    Machine Learning 2003). The :math:`n_{test}/n_{train}` term corrects the
    variance for the overlap of the training sets. Identical fold scores
    give 1, a constant nonzero difference 0, a missing score NaN.
    """
    d = np.asarray(loss, dtype=np.float64) - np.asarray(best_loss, dtype=np.float64)
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return np.nan
    mean, var = d.mean(), d.var(ddof=1)
    if var == 0:
        return 1.0 if mean == 0 else 0.0
    t = mean / math.sqrt((1 / len(d) + test_train_ratio) * var)
    return float(2 * stats.t.sf(abs(t), df=len(d) - 1))


def summarize(results, metrics, test_train_ratio=None):
    """Mean, std, rank and tie with the best of every strategy on every metric.

    Ranks follow the mean (its distance to the ideal value for metrics that
    are best at a value). Each strategy is compared with the best one
    (rank 1) on the same folds by :func:`paired_p_value`; it is ``tied``
    when the p-value is at least :data:`ALPHA`.

    Parameters
    ----------
    results : DataFrame
        The tidy results of :func:`~skweighted.comparison.compare`.
    metrics : dict
        Metric name -> ``True`` when higher is better, ``False`` when lower
        is, or the value it is best at.
    test_train_ratio : float, default=None
        Test over training rows of a fold; ``None`` means ``1 / (J - 1)``,
        its value in ``J``-fold cross-validation.

    Returns
    -------
    summary : DataFrame
        Columns ``strategy``, ``metric``, ``mean``, ``std`` (``ddof=0``),
        ``rank``, ``p_value`` (against the best; NaN for the best itself)
        and ``tied`` (True for the best and those within fold-to-fold noise
        of it).
    """
    order = list(dict.fromkeys(results["strategy"]))
    n_folds = results["fold"].nunique()
    if test_train_ratio is None:
        test_train_ratio = 1 / max(n_folds - 1, 1)
    grouped = results.groupby(["strategy", "metric"], sort=False)["value"]
    summary = grouped.agg(mean="mean", std=lambda v: float(np.std(v, ddof=0)))
    summary = summary.reset_index()
    ranks = np.zeros(len(summary), dtype=np.int64)
    p_values = np.full(len(summary), np.nan)
    tied = np.zeros(len(summary), dtype=bool)
    # fold x strategy scores of every metric, folds sorted (those of pivot_table)
    wide = results.set_index(["metric", "fold", "strategy"])["value"].unstack()
    for metric, part in summary.groupby("metric", sort=False):
        goal = metrics[metric]
        loss = pd.Series(to_loss(part["mean"], goal), index=part.index)
        rank = loss.rank(method="min", na_option="bottom").astype(int)
        ranks[part.index] = rank
        folds = wide.loc[metric].sort_index()
        best_row = rank[rank == 1].index[0]
        best = part.loc[best_row, "strategy"]
        if not np.isfinite(part.loc[best_row, "mean"]):
            continue  # every fit failed: nothing to compare with
        best_loss = to_loss(folds[best], goal)
        for row, strategy in part["strategy"].items():
            if row == best_row:
                tied[row] = True
                continue
            p = paired_p_value(
                to_loss(folds[strategy], goal), best_loss, test_train_ratio
            )
            p_values[row], tied[row] = p, p >= ALPHA
    summary["rank"], summary["p_value"], summary["tied"] = ranks, p_values, tied
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

    A cell ends with :data:`TIE_MARK` (``' *'``) when its strategy is the best
    on that metric or within fold-to-fold noise of the best (``tied`` in the
    summary).

    Parameters
    ----------
    comparison : Comparison
    rank_by : str, default=None
        The metric that orders the rows; ``None`` means the first metric
        (balanced accuracy by default).

    Returns
    -------
    table : DataFrame
        Indexed by strategy: ``rank``, ``epochs`` (the mean epochs its
        networks trained, when any strategy has a network) and one string
        column per metric.
    """
    order, metric = _ordered_strategies(comparison, rank_by)
    summary = comparison.summary.set_index(["strategy", "metric"])
    table = pd.DataFrame(index=pd.Index(order, name="strategy"))
    table["rank"] = [summary.loc[(s, metric), "rank"] for s in order]
    if "epochs" in comparison.results and comparison.results["epochs"].notna().any():
        epochs = comparison.results.groupby("strategy")["epochs"].mean()
        table["epochs"] = [f"{epochs.get(s, np.nan):.1f}" for s in order]
    tied = "tied" in summary.columns
    for m in comparison.metrics:
        table[m] = [
            f"{summary.loc[(s, m), 'mean']:.3f} ± {summary.loc[(s, m), 'std']:.3f}"
            + (TIE_MARK if tied and summary.loc[(s, m), "tied"] else "")
            for s in order
        ]
    return table


def _tie_note(comparison):
    n_folds = comparison.results["fold"].nunique()
    return (
        f"`{TIE_MARK.strip()}`: the best strategy on that metric, or one whose "
        "difference to the best is within fold-to-fold noise: the corrected "
        f"resampled t-test of Nadeau & Bengio (2003) on the {n_folds} paired "
        f"fold scores gives p ≥ {ALPHA}. Unmarked cells are worse than the best "
        "by more than that noise."
    )


def to_markdown(comparison, title="Comparison"):
    """The ranked table, the problem and the notes as Markdown."""
    table = ranked_table(comparison)
    metric = _rank_by(comparison, None)
    counts = ", ".join(f"{k}: {v}" for k, v in comparison.class_counts.items())
    positive = positive_class(comparison)
    if positive is not None:
        counts += (
            f". Positive class: `{positive}` (the class that ROC AUC, average "
            "precision, the Brier score, the calibration intercept and slope "
            "and the reliability diagram score)"
        )
    n_folds = comparison.results["fold"].nunique()
    header = "| strategy | " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * (len(table.columns) + 1)
    goals = comparison.metrics
    lower = [m for m, goal in goals.items() if _is_direction(goal) and not goal]
    ideal = [
        f"`{m}`: {direction(goal)}"
        for m, goal in goals.items()
        if not _is_direction(goal)
    ]
    parts = []
    if lower:
        parts.append(f"{', '.join(f'`{m}`' for m in lower)}: lower is better")
    parts += ideal
    how = (
        f" {'; '.join(parts)}; the others: higher is better."
        if parts
        else " Higher is better for every metric."
    )
    lines = [
        f"# {title}",
        "",
        f"Class counts: {counts}. {n_folds}-fold cross-validation; each cell is "
        f"the mean ± standard deviation over the folds. Rows are ranked by "
        f"`{metric}`.{how}",
        "",
    ]
    if "tied" in comparison.summary.columns:
        lines += [_tie_note(comparison), ""]
    lines += [header, rule]
    for name, row in table.iterrows():
        cells = (str(v).replace(TIE_MARK, " \\*") for v in row)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
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
    fold is a dot, the mean a bar (its value on the right of the panel,
    outside the data), and the best strategy of each panel is highlighted.
    The figure is :data:`FIG_WIDTH` inches wide.

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
    from matplotlib.colors import to_rgba
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
        goal = comparison.metrics[metric]
        means = np.array([summary.loc[(metric, s), "mean"] for s in order])
        best = summary.loc[metric]["rank"].reindex(order).to_numpy() == 1
        tied = (
            summary.loc[metric]["tied"].reindex(order).to_numpy(dtype=bool)
            if "tied" in summary.columns
            else best
        )
        colors = [
            to_rgba("tab:orange", 0.45)
            if b
            else to_rgba("tab:orange", 0.2)
            if t
            else to_rgba("tab:blue", 0.35)
            for b, t in zip(best, tied)
        ]
        ax.barh(ypos, means, color=colors, height=0.7)
        if not _is_direction(goal):
            ax.axvline(goal, color="gray", lw=1, ls="--")
        for y0, s in zip(ypos, order):
            vals = results.loc[
                (results["metric"] == metric) & (results["strategy"] == s), "value"
            ].to_numpy()
            jitter = np.linspace(-0.18, 0.18, len(vals)) if len(vals) > 1 else [0]
            ax.plot(vals, y0 + np.asarray(jitter), "o", color="black", ms=3)
        ax.set_yticks(ypos, order, fontsize=8)
        # the means as tick labels on the right, outside the data, where no
        # fold dot can cover them
        right = ax.secondary_yaxis("right")
        right.set_yticks(
            ypos, [f"{m:.3f}" if np.isfinite(m) else "failed" for m in means]
        )
        right.tick_params(labelsize=8, length=0)
        ax.set_title(f"{metric}\n({direction(goal)})", fontsize=10)
        finite = results.loc[results["metric"] == metric, "value"]
        finite = finite[np.isfinite(finite)]
        bounded = len(finite) and finite.min() >= 0 and finite.max() <= 1
        if _is_direction(goal) and goal and bounded:
            ax.set_xlim(0, 1.1)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    n_folds = results["fold"].nunique()
    fig.suptitle(
        f"{title or 'Comparison'} — {_problem(comparison)}; {n_folds} folds "
        "(dots: folds, bars: mean, orange: best, light orange: within fold noise "
        "of the best)",
        fontsize=11,
    )
    return fig


def positive_class(comparison):
    """The positive class of a binary comparison (``None`` for more classes).

    ``comparison.pos_label``; the rarest class when that is unset (its
    probability is the one that weighting and resampling distort).
    """
    counts = comparison.class_counts
    if len(counts) != 2:
        return None
    pos_label = getattr(comparison, "pos_label", None)
    return min(counts, key=counts.get) if pos_label is None else pos_label


def reliability_classes(comparison):
    """The classes the reliability diagram shows: the positive class of a
    binary problem (:func:`positive_class`), every class otherwise."""
    positive = positive_class(comparison)
    return list(comparison.class_counts) if positive is None else [positive]


def _problem(comparison):
    """``'class counts a: 5, b: 95; positive class a'`` (binary), for titles."""
    counts = ", ".join(f"{k}: {v}" for k, v in comparison.class_counts.items())
    positive = positive_class(comparison)
    if positive is None:
        return f"class counts {counts}"
    return f"class counts {counts}; positive class {positive!r}"


#: The default color cycle without its grey (C7), which marks the reference.
_COLORS = [f"C{i}" for i in range(10) if i != 7]
#: The strategy drawn in grey in every panel of the reliability diagram.
REFERENCE = "none"
_RELIABILITY_COLS = 4


def _pooled_curve(rows):
    """``(x, observed, low, high)`` of reliability rows: the rows of every
    fold (and class) pooled per bin, and the lowest and highest fold's
    observed fraction in each bin."""
    weight = rows["count"]
    pooled = (
        rows.assign(p=rows["predicted"] * weight, o=rows["observed"] * weight)
        .groupby("bin")[["p", "o", "count"]]
        .sum()
    )
    per_fold = rows.assign(o=rows["observed"] * weight).groupby(["bin", "fold"])
    per_fold = per_fold["o"].sum() / per_fold["count"].sum()
    spread = per_fold.groupby("bin").agg(["min", "max"])
    return (
        pooled["p"] / pooled["count"],
        pooled["o"] / pooled["count"],
        spread["min"],
        spread["max"],
    )


def plot_reliability(comparison, title=None):
    """Reliability diagram as small multiples: one panel per strategy.

    Each panel shows one strategy's observed frequency against its
    predicted probability, the test rows of all folds pooled in each of the
    equal-width probability bins of
    :func:`~skweighted.comparison.reliability_table`, with a band from the
    lowest to the highest fold's fraction in that bin (the fold spread); the
    uncorrected :data:`REFERENCE` strategy (``'none'``) is drawn in grey in
    every other panel for reference. A binary problem shows the probability
    of its positive class (:func:`positive_class`); a multi-class one the
    classwise curve, every class one-vs-rest pooled into the same bins
    (the bins of the class-wise ECE). A calibrated model lies on the
    diagonal; curves below it overestimate the class.

    Parameters
    ----------
    comparison : Comparison
        With a ``reliability`` table.
    title : str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    table = comparison.reliability
    if table is None or table.empty:
        raise ValueError(
            "This comparison holds no reliability table (no strategy gave "
            "probabilities), so there is no reliability diagram to draw."
        )
    positive = positive_class(comparison)
    if positive is not None:
        table = table[table["class"] == positive]
        what = f"P({positive})"
        about = (
            f"positive class {positive!r} "
            f"({comparison.class_counts.get(positive)} rows)"
        )
    else:
        what = "P(class)"
        about = f"classwise: each of the {len(comparison.class_counts)} classes "
        about += "one-vs-rest, pooled"
    present = set(table["strategy"])
    order = list(comparison.strategies) or list(dict.fromkeys(table["strategy"]))
    order = [s for s in order if s in present]
    cols = min(len(order), _RELIABILITY_COLS)
    rows = math.ceil(len(order) / cols)
    fig = Figure(
        figsize=(3.1 * cols + 0.4, 3.1 * rows + 0.9), dpi=DPI, layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    curves = {s: _pooled_curve(table[table["strategy"] == s]) for s in order}
    for i, (ax, strategy) in enumerate(zip(axes.ravel(), order)):
        ax.plot([0, 1], [0, 1], color="gray", lw=1, ls=":")
        if REFERENCE in curves and strategy != REFERENCE:
            x, observed, _, _ = curves[REFERENCE]
            ax.plot(x, observed, "-", color="0.6", lw=1.2, label=REFERENCE)
        x, observed, low, high = curves[strategy]
        color = "0.3" if strategy == REFERENCE else _COLORS[i % len(_COLORS)]
        ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0)
        ax.plot(x, observed, "-", marker="o", ms=3, lw=1.8, color=color)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(strategy, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel(f"predicted {what}", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("observed fraction", fontsize=9)
    for ax in axes.ravel()[len(order) :]:
        ax.set_visible(False)
    n_folds = comparison.results["fold"].nunique()
    reference = f"; grey: {REFERENCE!r} for reference" if REFERENCE in curves else ""
    fig.suptitle(
        f"{title or 'Comparison'}\nreliability of the {about}, {n_folds} folds "
        f"(line: pooled test rows, band: fold spread{reference})",
        fontsize=10,
    )
    return fig


def save(comparison, out, title="Comparison"):
    """Write the report files to ``out``.

    ``results.csv``, ``summary.md``, ``comparison.png``, when the
    comparison holds a reliability table ``reliability.png``, and
    ``report.html``: all of it in one self-contained page that links to the
    other files (and to ``fits.jsonl`` when the folder holds one).

    Parameters
    ----------
    comparison : Comparison
    out : str or path
        The directory; created when missing.
    title : str, default='Comparison'

    Returns
    -------
    paths : dict
        ``'results'``, ``'summary'``, ``'plot'`` (``'reliability'``) and
        ``'html'`` -> the written paths.
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
    reliability = getattr(comparison, "reliability", None)
    if reliability is not None and not reliability.empty:
        paths["reliability"] = out / "reliability.png"
        plot_reliability(comparison, title=title).savefig(paths["reliability"], dpi=DPI)
    from ._html import LINKED, render_html

    paths["html"] = out / "report.html"
    links = [name for name in LINKED if (out / name).exists()]
    html = render_html(comparison, title=title, links=links)
    paths["html"].write_text(html, encoding="utf-8")
    return paths

"""``report.html``: the whole comparison in one self-contained page.

A Jinja2 template (``report.html.j2``, beside this module) filled with the
data summary, the settings and versions, the ranked table with its ties
(sortable by any column through a few lines of inline JavaScript), the
comparison and reliability figures (matplotlib PNGs embedded as base64),
the confusion matrices pooled over folds, the failed fits and the notes.
Nothing is fetched: the page opens offline.
"""

import base64
import datetime
import io
import math
from importlib.resources import files

from . import _report as report

__all__ = ["render_html"]

#: Files of the output folder the page links to, where they exist.
LINKED = ("results.csv", "summary.md", "fits.jsonl")


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=report.DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _rows(comparison):
    """The ranked table's rows: strategy, rank and, per metric, the text,
    the value it sorts by (on a lower-is-better scale) and its CSS class."""
    order, rank_by = report._ordered_strategies(comparison)
    summary = comparison.summary.set_index(["strategy", "metric"])
    tied = "tied" in summary.columns
    rows = []
    for strategy in order:
        cells = []
        for metric, goal in comparison.metrics.items():
            entry = summary.loc[(strategy, metric)]
            loss = float(report.to_loss([entry["mean"]], goal)[0])
            css = "best" if entry["rank"] == 1 else ""
            if not css and tied and entry["tied"]:
                css = "tied"
            text = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
            cells.append(
                {
                    "text": text + (report.TIE_MARK if css else ""),
                    "sort": repr(loss) if math.isfinite(loss) else "1e308",
                    "css": css,
                }
            )
        rank = summary.loc[(strategy, rank_by), "rank"]
        rows.append({"strategy": strategy, "rank": int(rank), "cells": cells})
    return rows, rank_by


def _confusion(comparison):
    """Per strategy: the labels and the rows ``(label, [(count, share)])``
    of its confusion matrix, every fold pooled."""
    frame = getattr(comparison, "confusion", None)
    if frame is None or frame.empty:
        return []
    labels = list(comparison.class_counts)
    matrices = []
    for strategy, part in frame.groupby("strategy", sort=False):
        pooled = part.groupby(["true", "predicted"])["count"].sum()
        rows = []
        for true in labels:
            counts = [int(pooled.get((true, pred), 0)) for pred in labels]
            total = max(sum(counts), 1)
            rows.append((true, [(n, n / total) for n in counts]))
        matrices.append({"strategy": strategy, "labels": labels, "rows": rows})
    return matrices


def _failures(comparison):
    failed = comparison.results[comparison.results["error_type"].notna()]
    failed = failed.drop_duplicates(["strategy", "fold"])
    return failed[["strategy", "fold", "error_type", "error_message"]].to_dict(
        "records"
    )


def render_html(comparison, title="Comparison", links=LINKED):
    """The page of ``comparison`` as a string.

    Parameters
    ----------
    comparison : Comparison
    title : str, default='Comparison'
    links : iterable of str, default=LINKED
        The file names (beside the page) it links to.

    Returns
    -------
    html : str
    """
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(
        files(__package__).joinpath("report.html.j2").read_text(encoding="utf-8")
    )
    rows, rank_by = _rows(comparison)
    figures = [
        {
            "data": _png(report.plot(comparison, title=title)),
            "alt": "comparison figure",
            "caption": "Every metric: the fold scores (dots) and their mean (bar).",
        }
    ]
    if comparison.reliability is not None and not comparison.reliability.empty:
        figures.append(
            {
                "data": _png(report.plot_reliability(comparison, title=title)),
                "alt": "reliability figure",
                "caption": "Reliability: observed frequency against predicted "
                "probability, one panel per strategy.",
            }
        )
    counts = comparison.class_counts
    settings = dict(getattr(comparison, "settings", {}) or {})
    versions = settings.pop("versions", {})
    wall_time = settings.pop("wall_time", None)
    if "skweighted" not in versions:
        from .._version import __version__

        versions = {"skweighted": __version__, **versions}
    return template.render(
        title=title,
        written=datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        versions=versions,
        wall_time=wall_time,
        files=list(links),
        class_counts=list(counts.items()),
        ratio=max(counts.values()) / max(min(counts.values()), 1),
        positive=report.positive_class(comparison),
        settings=list(settings.items()),
        n_folds=comparison.results["fold"].nunique(),
        rank_by=rank_by,
        tie_note=report._tie_note(comparison).replace("`", ""),
        metrics=[
            {"name": m, "direction": report.direction(goal)}
            for m, goal in comparison.metrics.items()
        ],
        rows=rows,
        figures=figures,
        confusion=_confusion(comparison),
        failures=_failures(comparison),
        notes=comparison.notes,
    )

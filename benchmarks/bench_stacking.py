"""Many fits at once: stacked training against separate fits, in one run.

Sections (ratios are measured side by side in this run, on this machine;
every timed contender runs in a fresh Python process, so each pays its own
imports and start-up as a user's script would, and then a second time in the
same process, warm):

1. ``skweighted compare`` on the default built-in data set (``synthetic``,
   2,000 rows, the default strategies and network, 5 folds, seed 0) with
   stacking on and off; the ranking by balanced accuracy and the per-fold
   metrics must agree.
2. ``skweighted.model_selection.GridSearchCV`` over 4 class weights x 2
   learning rates x 5 folds (20,000 rows x 20 features, batch 128, 10 epochs,
   the default MLP) against scikit-learn's ``GridSearchCV(n_jobs=2)`` over
   the same estimator; ``best_params_`` must agree.
3. Memory: that search (without its refit) with ``memory_budget=64 MiB``,
   at 10 epochs and at 30, each in a fresh process: its peak resident set
   (the kernel's high-water mark, ``ru_maxrss``) above the resident set
   after the data was made and a small search ran (the one-time costs of
   imports and PyTorch's set-up, which no budget covers), against the
   budget plus the data (the target of issue 23); what the session counted
   as held besides its stacks (records, their rows, results) and the
   engine's estimate of its largest chunk; the peak added while the stacks
   train (sampled every 2 ms) and the minor page faults then (memory the
   allocator gives back and takes again each step shows there).
4. ``--device cuda``: samples per second, stacked against separate fits, on
   the GPU (skipped with a message when CUDA is absent).

Run ``python benchmarks/bench_stacking.py`` (several minutes on 2 cores);
``--quick`` for a smoke run (smaller sizes, numbers not comparable);
``--markdown FILE`` replaces this benchmark's section of FILE (between its
markers) with the report.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sections import write_section


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class _Parts:
    """Wall seconds spent inside some functions while active:
    ``name=(owner, attribute)`` each."""

    def __init__(self, **targets):
        self.targets, self.seconds = targets, dict.fromkeys(targets, 0.0)

    def __enter__(self):
        self._saved = [(o, a, getattr(o, a)) for o, a in self.targets.values()]
        for name, (owner, attr, f) in zip(self.targets, self._saved):
            setattr(owner, attr, self._timed(name, f))
        return self

    def _timed(self, name, f):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return timed

    def __exit__(self, *exc):
        for owner, attr, f in self._saved:
            setattr(owner, attr, f)


def _stacking_parts(record_owner):
    """Where a stacked run's time goes: the recording pass, the stack training
    (a search's refit included), scikit-learn's scoring, the history
    write-back."""
    from sklearn.model_selection import _validation

    from skweighted._stacking import _session

    return _Parts(
        recording=(record_owner, "record_fits"),
        training=(_session.Session, "train"),
        scoring=(_validation, "_score"),
        write_back=(_session, "write_back"),
    )


def _child(section, *args):
    """Run ``--_child section args`` in a fresh process; its JSON answer."""
    cmd = [sys.executable, __file__, "--_child", section, *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _side_by_side(name, other, stacked):
    """Cold and warm times of ``other`` (as ``name``) and the stacked run, and
    their ratios."""
    out = {}
    for kind in ("cold", "warm"):
        out[f"{name}_{kind}_s"] = other[f"{kind}_s"]
        out[f"stacked_{kind}_s"] = stacked[f"{kind}_s"]
        out[f"speedup_{kind}"] = other[f"{kind}_s"] / stacked[f"{kind}_s"]
    return out


# -- 1. compare -------------------------------------------------------------------
def _compare_child(stacking, quick):
    from skweighted import compare, load_imbalanced
    from skweighted.comparison import _runner, default_estimator

    X, y = load_imbalanced("synthetic", return_X_y=True)
    epochs = 3 if quick else 30

    def run():
        return compare(
            X,
            y,
            # fixed epochs, as measured in docs/benchmarks.md (early stopping
            # has its own benchmarks: bench_compare_default.py,
            # bench_early_stopping_search.py)
            estimator=default_estimator(
                max_epochs=epochs, early_stopping=False, random_state=0
            ),
            random_state=0,
            stacking=stacking == "on",
        )

    _, cold = _timed(run)
    with _stacking_parts(_runner) as parts:  # the warm run
        result, warm = _timed(run)
    r = result.results
    return {
        "cold_s": cold,
        "warm_s": warm,
        "parts_warm_s": parts.seconds,
        "values": r[["strategy", "fold", "metric", "value"]].to_dict("list"),
        "ranking": result.table(rank_by="balanced_accuracy").index.tolist(),
        "notes": result.notes,
    }


def bench_compare(quick):
    on, off = _child("compare", "on", int(quick)), _child("compare", "off", int(quick))
    a, b = np.asarray(on["values"]["value"]), np.asarray(off["values"]["value"])
    finite = np.isfinite(a) & np.isfinite(b)
    metrics = np.asarray(on["values"]["metric"])
    per_metric = {
        m: float(np.abs(a - b)[finite & (metrics == m)].max())
        for m in dict.fromkeys(metrics)
    }
    return {
        **_side_by_side("separate", off, on),
        "stacked_parts_warm_s": on["parts_warm_s"],
        "same_ranking": on["ranking"] == off["ranking"],
        "ranking_stacked": on["ranking"],
        "ranking_separate": off["ranking"],
        "max_metric_diff": float(np.abs(a - b)[finite].max()),
        "metric_diffs": dict(sorted(per_metric.items(), key=lambda kv: -kv[1])),
        "same_nan": bool((np.isfinite(a) == np.isfinite(b)).all()),
        "notes_stacked": [n for n in on["notes"] if n.startswith("stacking")],
    }


# -- 2. GridSearchCV -------------------------------------------------------------
def make_data(quick):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2_000 if quick else 20_000,
        n_features=20,
        n_informative=10,
        n_classes=3,
        weights=[0.8, 0.15, 0.05],
        random_state=0,
    )
    return X.astype(np.float32), y


GRID = {
    "class_weight": [None, "balanced", "inverse_sqrt", "median_frequency"],
    "lr": [1e-3, 3e-3],
}


def _estimator(quick):
    from skweighted import WeightedNeuralNetClassifier

    return WeightedNeuralNetClassifier(
        max_epochs=2 if quick else 10,
        batch_size=128,
        early_stopping=False,  # fixed epochs, as measured in docs/benchmarks.md
        random_state=0,
    )


def _search_child(which, quick):
    from sklearn import model_selection as sk

    from skweighted import model_selection as ms

    X, y = make_data(quick)
    est, kwargs = _estimator(quick), dict(cv=5, scoring="balanced_accuracy")
    if which == "stacked":

        def search():
            return ms.GridSearchCV(est, GRID, **kwargs).fit(X, y)
    else:

        def search():
            return sk.GridSearchCV(est, GRID, n_jobs=2, **kwargs).fit(X, y)

    first, cold = _timed(search)
    with _stacking_parts(ms) as parts:  # the warm run
        _, warm = _timed(search)
    return {
        "cold_s": cold,
        "warm_s": warm,
        "parts_warm_s": parts.seconds,
        "best_params": repr(first.best_params_),
        "mean_test_score": first.cv_results_["mean_test_score"].tolist(),
        "refit_s": first.refit_time_,
        "train_s": first.stacking_["train_time"] if which == "stacked" else None,
    }


def bench_search(quick):
    ours, theirs = (
        _child("search", "stacked", int(quick)),
        _child("search", "sklearn", int(quick)),
    )
    diff = np.abs(
        np.asarray(ours["mean_test_score"]) - np.asarray(theirs["mean_test_score"])
    ).max()
    return {
        "rows": 2_000 if quick else 20_000,
        **_side_by_side("sklearn", theirs, ours),
        "stacked_train_s": ours["train_s"],
        "stacked_parts_warm_s": ours["parts_warm_s"],
        "refit_s": ours["refit_s"],
        "same_best_params": ours["best_params"] == theirs["best_params"],
        "best_params": ours["best_params"],
        "max_mean_score_diff": float(diff),
    }


# -- 3. memory --------------------------------------------------------------------
def _rss():
    """Resident memory of this process now, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Peak:
    """The largest resident set sampled every 2 ms while it runs."""

    def __enter__(self):
        self.before, self.peak, self._done = _rss(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.increase = max(self.peak, _rss()) - self.before


def _memory_child(budget, epochs, quick):
    from skweighted import model_selection as ms
    from skweighted._stacking import _session

    X, y = make_data(quick)
    est = _estimator(quick).set_params(max_epochs=epochs)
    # one-time costs first (lazy imports, PyTorch's and the allocator's own
    # set-up), which no budget covers: the baseline is taken after them
    ms.GridSearchCV(est, GRID, cv=2, refit=False).fit(X[:300], y[:300])
    training, minor_faults = [], []
    train = _session.Session.train

    def measured(self):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        with _Peak() as peak:
            train(self)
        training.append(peak.increase)
        minor_faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)

    _session.Session.train = measured
    baseline = _rss()
    with _Peak() as whole:
        search = ms.GridSearchCV(est, GRID, cv=5, memory_budget=budget, refit=False)
        search.fit(X, y)
    # the kernel's high-water mark of this process (KiB on Linux)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report = search.stacking_
    return {
        "budget_bytes": budget,
        "epochs": epochs,
        "data_bytes": X.nbytes + y.nbytes,
        "estimated_chunk_bytes": report["estimated_bytes"],
        "held_bytes": report["held_bytes"],
        "chunks": report["chunks"],
        "training_peak_increase_bytes": max(training),
        "training_minor_faults": sum(minor_faults),
        "search_peak_increase_bytes": whole.increase,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak_rss,
        "peak_rss_increase_bytes": peak_rss - baseline,
    }


def bench_memory(quick, budget, epochs):
    """The memory section, in a fresh process per number of epochs (so that
    one configuration's peak cannot hide another's)."""
    return [_child("memory", budget, e, int(quick)) for e in epochs]


# -- 4. GPU -----------------------------------------------------------------------
def bench_gpu(quick):
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "CUDA is not available on this machine"}
    from sklearn.base import clone

    from skweighted import model_selection as ms

    X, y = make_data(quick)
    est = _estimator(quick).set_params(device="cuda")
    n_samples = 5 * 8 * int(0.8 * len(y)) * est.max_epochs
    kwargs = dict(cv=5, refit=False)
    ms.GridSearchCV(clone(est), GRID, **kwargs).fit(X[:500], y[:500])  # warm-up
    _, t_stacked = _timed(lambda: ms.GridSearchCV(est, GRID, **kwargs).fit(X, y))
    _, t_separate = _timed(
        lambda: ms.GridSearchCV(est, GRID, stacking=False, **kwargs).fit(X, y)
    )
    return {
        "device": torch.cuda.get_device_name(0),
        "separate_samples_per_s": n_samples / t_separate,
        "stacked_samples_per_s": n_samples / t_stacked,
        "speedup": t_separate / t_stacked,
    }


# -- report -------------------------------------------------------------------------
def _yes(ok):
    return "yes" if ok else "NO"


def markdown(results, command):
    c, s, memory, g = (results[k] for k in ("compare", "search", "memory", "gpu"))
    m = memory[0]  # the grid search's own epochs
    mib = 2**20
    lines = [
        "## Many fits at once (stacking)",
        "",
        "Generated by `benchmarks/bench_stacking.py` (see its docstring); every "
        "number below comes from that one run.",
        "",
        f"- command: `{command}`",
        f"- machine: {results['machine']}",
        f"- versions: {results['versions']}",
        "- each contender runs in a fresh process: *cold* is its first run "
        "there (imports, worker start-up), *warm* the second.",
        "",
        "| workload | contender | cold (s) | warm (s) |",
        "| --- | --- | ---: | ---: |",
        f"| `skweighted compare` (default data, strategies and network) | "
        f"stacking off | {c['separate_cold_s']:.1f} | {c['separate_warm_s']:.1f} |",
        f"| | stacking on | {c['stacked_cold_s']:.1f} | {c['stacked_warm_s']:.1f} |",
        f"| `GridSearchCV` 8 candidates x 5 folds, {s['rows']} rows | "
        f"scikit-learn, `n_jobs=2` | {s['sklearn_cold_s']:.1f} | "
        f"{s['sklearn_warm_s']:.1f} |",
        f"| | skweighted, stacked | {s['stacked_cold_s']:.1f} | "
        f"{s['stacked_warm_s']:.1f} |",
        "",
        "| target (issue 12) | cold | warm | limit | met (cold / warm) |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| compare: stacking off / on | {c['speedup_cold']:.1f}x | "
        f"{c['speedup_warm']:.1f}x | >= 8x | {_yes(c['speedup_cold'] >= 8)} / "
        f"{_yes(c['speedup_warm'] >= 8)} |",
        f"| grid search: scikit-learn / stacked | {s['speedup_cold']:.1f}x | "
        f"{s['speedup_warm']:.1f}x | >= 6x | {_yes(s['speedup_cold'] >= 6)} / "
        f"{_yes(s['speedup_warm'] >= 6)} |",
        f"| stack training within the memory budget | "
        f"{m['training_peak_increase_bytes'] / mib:.1f} MiB | | "
        f"{m['budget_bytes'] / mib:.1f} MiB | "
        f"{_yes(m['training_peak_increase_bytes'] <= m['budget_bytes'])} |",
        f"| grid search's peak resident set within the budget plus the data "
        f"(issue 23) | {m['peak_rss_increase_bytes'] / mib:.1f} MiB | | "
        f"{(m['budget_bytes'] + m['data_bytes']) / mib:.1f} MiB | "
        f"{_yes(_within(m))} |",
        "",
        f"Same results: compare ranking by balanced accuracy equal: "
        f"{c['same_ranking']} ({', '.join(c['ranking_stacked'])}); largest "
        "per-fold metric differences: "
        + ", ".join(f"{k} {v:.1e}" for k, v in list(c["metric_diffs"].items())[:4])
        + f"; failed fits alike: {c['same_nan']}. Grid search `best_params_` "
        f"equal: "
        f"{s['same_best_params']} ({s['best_params']}); largest mean-score "
        f"difference {s['max_mean_score_diff']:.1e}. Of the stacked search's "
        f"{s['stacked_cold_s']:.1f} s, {s['stacked_train_s']:.1f} s trained the "
        f"stack and {s['refit_s']:.1f} s refit the best candidate (a stack of "
        "one; scikit-learn's search refits with a separate fit).",
        "",
        "Where the stacked time goes (wall seconds of the warm runs, inside "
        "the recording pass, the stack training, scikit-learn's scoring and "
        "the history write-back):",
        "",
        "| workload | total | recording | training | scoring | write-back | the rest |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        _parts_row("`compare`", c["stacked_warm_s"], c["stacked_parts_warm_s"]),
        _parts_row(
            "grid search (training includes the refit's)",
            s["stacked_warm_s"],
            s["stacked_parts_warm_s"],
        ),
        "",
        "Memory of the stacked grid search (no refit), each row in a fresh "
        "process: the peak resident set (`ru_maxrss`) above the resident set "
        "after the data was made and a small search ran (one-time costs of "
        "imports and PyTorch, which no budget covers); what the session "
        "counted as held besides its stacks (its records, their rows, the "
        "results) and the engine's estimate of its largest chunk; the peak "
        "added while the stacks trained (sampled every 2 ms).",
        "",
        "| epochs | budget (MiB) | data (MiB) | chunks | held (MiB) | largest "
        "chunk (MiB) | peak while training (MiB) | minor faults then | peak "
        "RSS growth (MiB) | within budget + data |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *(
            f"| {r['epochs']} | {r['budget_bytes'] / mib:.1f} | "
            f"{r['data_bytes'] / mib:.1f} | {r['chunks']} | "
            f"{r['held_bytes'] / mib:.1f} | {r['estimated_chunk_bytes'] / mib:.1f} | "
            f"{r['training_peak_increase_bytes'] / mib:.1f} | "
            f"{r['training_minor_faults']:,} | "
            f"{r['peak_rss_increase_bytes'] / mib:.1f} | {_yes(_within(r))} |"
            for r in memory
        ),
        "",
    ]
    if c["notes_stacked"]:
        lines += ["Fits of compare that trained separately:", ""]
        lines += [f"- {n}" for n in c["notes_stacked"]] + [""]
    if "skipped" in g:
        lines.append(f"GPU: skipped ({g['skipped']}).")
    else:
        lines.append(
            f"GPU ({g['device']}): {g['separate_samples_per_s']:.0f} samples/s "
            f"separate, {g['stacked_samples_per_s']:.0f} samples/s stacked "
            f"({g['speedup']:.1f}x)."
        )
    return "\n".join(lines) + "\n"


def _within(memory):
    """Whether a memory run's peak stayed within its budget plus the data."""
    return memory["peak_rss_increase_bytes"] <= (
        memory["budget_bytes"] + memory["data_bytes"]
    )


def _parts_row(name, total, parts):
    keys = ("recording", "training", "scoring", "write_back")
    rest = total - sum(parts[k] for k in keys)
    cells = " | ".join(f"{parts[k]:.2f}" for k in keys)
    return f"| {name} | {total:.2f} | {cells} | {rest:.2f} |"


def _versions():
    import sklearn
    import skorch
    import torch

    import skweighted

    return (
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}, "
        f"skweighted {skweighted.__version__}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--memory-budget", type=int, default=64 * 2**20)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--_child", nargs="+", default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args._child is not None:
        section, *rest = args._child
        child = {
            "compare": _compare_child,
            "search": _search_child,
            "memory": lambda budget, epochs, q: _memory_child(
                int(budget), int(epochs), q
            ),
        }[section]
        *values, quick = rest
        print(json.dumps(child(*values, bool(int(quick)))))
        return
    argv = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/bench_stacking.py " + shlex.join(argv)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores",
        "versions": _versions(),
        "compare": bench_compare(args.quick),
        "search": bench_search(args.quick),
        "memory": bench_memory(
            args.quick, args.memory_budget, [2 if args.quick else 10, 30]
        ),
        "gpu": bench_gpu(args.quick)
        if args.device == "cuda"
        else {"skipped": "run with --device cuda"},
    }
    print(json.dumps(results, indent=2, default=str))
    report = markdown(results, command.strip())
    print(report)
    if args.markdown:
        write_section(args.markdown, os.path.basename(__file__), report)


if __name__ == "__main__":
    main()

"""Many fits at once: stacked training against separate fits, in one run.

Sections (ratios are measured side by side in this run, on this machine):

1. (``skweighted compare`` does not use the stacking engine yet; issue 12.)
2. ``skweighted.model_selection.GridSearchCV`` over 4 class weights x 2
   learning rates x 5 folds (20,000 rows x 20 features, batch 128, 10 epochs,
   the default MLP) against scikit-learn's ``GridSearchCV(n_jobs=2)`` over
   the same estimator; ``best_params_`` must agree.
3. Peak memory of the stacked search under a memory budget, in a fresh
   subprocess (the largest resident set sampled every 5 ms during the
   search, minus the resident set before it, after a warm-up search), next
   to the budget and the engine's estimate of its largest chunk.
4. ``--device cuda``: samples per second, stacked against separate fits, on
   the GPU (skipped with a message when CUDA is absent).

Run ``python benchmarks/bench_stacking.py`` (several minutes on 2 cores);
``--quick`` for a smoke run (smaller sizes, numbers not comparable);
``--markdown FILE`` writes the report.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings

import numpy as np


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


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
        max_epochs=2 if quick else 10, batch_size=128, random_state=0
    )


def bench_search(quick):
    from sklearn import model_selection as sk

    from skweighted import model_selection as ms

    X, y = make_data(quick)
    kwargs = dict(cv=5, scoring="balanced_accuracy")
    est = _estimator(quick)
    ours, t_ours = _timed(lambda: ms.GridSearchCV(est, GRID, **kwargs).fit(X, y))
    theirs, t_theirs = _timed(
        lambda: sk.GridSearchCV(est, GRID, n_jobs=2, **kwargs).fit(X, y)
    )
    diff = np.abs(
        ours.cv_results_["mean_test_score"] - theirs.cv_results_["mean_test_score"]
    ).max()
    return {
        "rows": int(len(y)),
        "fits": 5 * 8,
        "sklearn_n_jobs2_s": t_theirs,
        "stacked_s": t_ours,
        "speedup": t_theirs / t_ours,
        "same_best_params": ours.best_params_ == theirs.best_params_,
        "best_params": repr(ours.best_params_),
        "max_mean_score_diff": float(diff),
        "chunks": ours.stacking_["chunks"],
    }


# -- 3. memory --------------------------------------------------------------------
def _rss():
    """Resident memory of this process now, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_child(quick, budget):
    import threading

    from skweighted import model_selection as ms

    X, y = make_data(quick)
    est = _estimator(quick)
    ms.GridSearchCV(est, GRID, cv=2, refit=False).fit(X[:300], y[:300])  # warm-up
    before, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    search = ms.GridSearchCV(est, GRID, cv=5, memory_budget=budget, refit=False)
    search.fit(X, y)
    done.set()
    sampler.join()
    report = search.stacking_
    print(
        json.dumps(
            {
                "budget_bytes": budget,
                "estimated_chunk_bytes": report["estimated_bytes"],
                "chunks": report["chunks"],
                "peak_rss_increase_bytes": max(peak[0], _rss()) - before,
            }
        )
    )


def bench_memory(quick, budget):
    cmd = [sys.executable, __file__, "--_memory-child", str(budget)]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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
def markdown(results, command):
    s, m, g = (results[k] for k in ("search", "memory", "gpu"))
    lines = [
        "## Many fits at once (stacking)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {results['machine']}",
        "",
        "| workload | separate | stacked | speedup | same results |",
        "| --- | --- | --- | --- | --- |",
        f"| `GridSearchCV` 8 candidates x 5 folds ({s['rows']} rows), "
        f"scikit-learn `n_jobs=2` vs stacked | {s['sklearn_n_jobs2_s']:.1f} s "
        f"| {s['stacked_s']:.1f} s | {s['speedup']:.1f}x | best_params_ equal: "
        f"{s['same_best_params']}; max mean score difference "
        f"{s['max_mean_score_diff']:.1e} |",
        "",
        f"Memory: budget {m['budget_bytes'] / 2**20:.1f} MiB, largest chunk "
        f"estimated at {m['estimated_chunk_bytes'] / 2**20:.1f} MiB (chunks "
        f"{m['chunks']}), peak resident memory increase of the whole search "
        f"{m['peak_rss_increase_bytes'] / 2**20:.1f} MiB.",
        "",
    ]
    if "skipped" in g:
        lines.append(f"GPU: skipped ({g['skipped']}).")
    else:
        lines.append(
            f"GPU ({g['device']}): {g['separate_samples_per_s']:.0f} samples/s "
            f"separate, {g['stacked_samples_per_s']:.0f} samples/s stacked "
            f"({g['speedup']:.1f}x)."
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--memory-budget", type=int, default=64 * 2**20)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--_memory-child", type=int, default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args._memory_child is not None:
        return _memory_child(args.quick, args._memory_child)
    command = "python benchmarks/bench_stacking.py " + shlex.join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "search": bench_search(args.quick),
        "memory": bench_memory(args.quick, args.memory_budget),
        "gpu": bench_gpu(args.quick)
        if args.device == "cuda"
        else {"skipped": "run with --device cuda"},
    }
    print(json.dumps(results, indent=2, default=str))
    report = markdown(results, command.strip())
    print(report)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + report)


if __name__ == "__main__":
    main()

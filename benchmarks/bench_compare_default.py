"""The default ``skweighted compare`` with early stopping against a fixed 30 epochs.

Runs the default comparison (built-in dataset ``synthetic``, the default
strategies, 5 folds, seed 0) twice in one process, alternating, ``--repeats``
times each:

- ``fixed``: the network of the previous default, 30 epochs, no validation
  split (``default_estimator(early_stopping=False, max_epochs=30)``);
- ``early``: today's default network (``default_estimator()``): at most
  ``max_epochs`` epochs, stopped at the best epoch of a stratified
  validation split that resampling strategies never resample.

and prints, per setting, the wall time (the median over repeats), and per
strategy the mean balanced accuracy, calibration slope and epochs. The
targets: with early stopping, the calibration slopes of ``balanced`` and
``none`` lie in [0.75, 1.3], ``balanced`` beats ``none`` by at least 0.03 in
balanced accuracy, and the run takes at most 1.5 times the fixed run.

Run ``python benchmarks/bench_compare_default.py`` from the repository root.
"""

import argparse
import statistics
import time

import pandas as pd

from skweighted import compare, load_imbalanced
from skweighted.comparison import default_estimator


def run(estimator, X, y, stacking):
    start = time.perf_counter()
    result = compare(
        X, y, estimator=estimator, random_state=0, progress=False, stacking=stacking
    )
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-stacking", action="store_true")
    args = parser.parse_args(argv)
    X, y = load_imbalanced("synthetic", return_X_y=True)
    settings = {
        "fixed": default_estimator(early_stopping=False, max_epochs=30),
        "early": default_estimator(),
    }
    times = {name: [] for name in settings}
    results = {}
    for _ in range(args.repeats):
        for name, estimator in settings.items():
            seconds, results[name] = run(estimator, X, y, not args.no_stacking)
            times[name].append(seconds)
    rows = []
    for name, result in results.items():
        mean = result.summary.set_index(["strategy", "metric"])["mean"]
        epochs = result.results.groupby("strategy")["epochs"].mean()
        for s in result.strategies:
            rows.append(
                {
                    "setting": name,
                    "strategy": s,
                    "balanced_accuracy": mean[(s, "balanced_accuracy")],
                    "calibration_slope": mean[(s, "calibration_slope")],
                    "epochs": epochs[s],
                }
            )
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(
            f"{name}: {median[name]:.2f} s (runs: {', '.join(f'{x:.2f}' for x in t)})"
        )
    print(f"early / fixed: {median['early'] / median['fixed']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()

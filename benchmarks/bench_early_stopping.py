"""Early stopping against a fixed number of epochs, on every built-in dataset.

For each built-in table dataset, ``skweighted.compare`` cross-validates
(5-fold ``StratifiedKFold``, seed 0, the default network of ``compare``)
the strategies ``none``, ``balanced``, ``random_over`` and ``smote`` twice on
the same folds:

- ``fixed``: 30 epochs, no validation split (``early_stopping=False``);
- ``early``: ``early_stopping=True`` (``validation_fraction``,
  ``n_iter_no_change`` as given, at most 200 epochs), the best epoch's
  weights restored; the resampling strategies resample only the training
  rows (the sampler runs inside the estimator, as ``resampler=``).

and prints, per dataset, strategy and setting, the mean balanced accuracy,
calibration slope and epochs. The ``'auto'`` rule of ``early_stopping``
(:data:`skweighted._early_stopping.AUTO_MIN_SAMPLES`) is read off this table:
the smallest data sets lose balanced accuracy to the split. Not a timing
benchmark: the numbers depend only on the seed.

Run ``python benchmarks/bench_early_stopping.py`` (several minutes on 2
cores); ``--markdown FILE`` also writes the table in its section of FILE.
"""

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from skweighted import compare, load_imbalanced
from skweighted.comparison import default_estimator
from skweighted.datasets import DATASETS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sections import write_section

STRATEGIES = ["none", "balanced", "random_over", "smote"]


def run(name, early, fraction, patience, seed):
    X, y = load_imbalanced(name, return_X_y=True)
    if early:
        estimator = default_estimator(max_epochs=200).set_params(
            early_stopping=True,
            validation_fraction=fraction,
            n_iter_no_change=patience,
        )
    else:
        estimator = default_estimator(max_epochs=30).set_params(early_stopping=False)
    start = time.perf_counter()
    result = compare(
        X, y, strategies=STRATEGIES, estimator=estimator, random_state=seed,
        progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    mean = result.summary.set_index(["strategy", "metric"])["mean"]
    epochs = result.results.groupby("strategy")["epochs"].mean()
    rows = []
    for s in STRATEGIES:
        if (s, "balanced_accuracy") not in mean:
            continue
        rows.append(
            {
                "dataset": name,
                "n_samples": len(y),
                "setting": "early" if early else "fixed",
                "strategy": s,
                "balanced_accuracy": mean[(s, "balanced_accuracy")],
                # binary problems only
                "calibration_slope": mean.get((s, "calibration_slope"), np.nan),
                "epochs": epochs[s],
                "seconds": seconds,
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=None, help="comma-separated names")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--n-iter-no-change", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    names = (
        args.datasets.split(",")
        if args.datasets
        else [n for n in DATASETS if not n.endswith("_images")]
    )
    rows = []
    for name in names:
        for early in (False, True):
            rows += run(
                name, early, args.validation_fraction, args.n_iter_no_change, args.seed
            )
    table = pd.DataFrame(rows).round(3)
    print(table.to_string(index=False))
    wide = table.pivot_table(
        index=["dataset", "n_samples"], columns="setting", values="balanced_accuracy"
    )
    wide["early - fixed"] = wide["early"] - wide["fixed"]
    print()
    print("mean balanced accuracy over the strategies:")
    print(wide.round(3).sort_values("n_samples").to_string())
    if args.markdown:
        write_section(
            args.markdown, os.path.basename(__file__), table.to_markdown(index=False)
        )


if __name__ == "__main__":
    main()

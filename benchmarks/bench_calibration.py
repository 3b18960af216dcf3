"""Corrected probabilities of a 'balanced' model against the unweighted model.

For every built-in dataset, ``skweighted.compare`` cross-validates (5-fold
``StratifiedKFold``, the default network, ``--epochs`` epochs, seed 0) three
strategies on the same folds:

- ``none``: no weighting;
- ``balanced``: ``class_weight='balanced'``;
- ``balanced+corrected``: the same, with ``correct_proba=True``.

and prints, per dataset, the mean Brier score of each, the ratio
``balanced+corrected / none`` (the target: at most 1.1) and whether the
balanced accuracy of ``balanced+corrected`` equals that of ``balanced`` in
every fold (the target: the same ``predict``). Not a timing benchmark: the
numbers depend only on the seed.

Run ``python benchmarks/bench_calibration.py`` (a few minutes on 2 cores);
``--markdown FILE`` also writes the table as Markdown.
"""

import argparse
import os
import sys

import numpy as np
import pandas as pd

from skweighted import compare, load_imbalanced

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sections import write_section

from skweighted.comparison import default_estimator
from skweighted.datasets import DATASETS

STRATEGIES = ["none", "balanced", "balanced+corrected"]
TARGET = 1.1


def run(name, epochs, folds, seed):
    X, y = load_imbalanced(name, return_X_y=True)
    result = compare(
        X,
        y,
        strategies=STRATEGIES,
        estimator=default_estimator(max_epochs=epochs, early_stopping=False),
        cv=folds,
        scoring=None,
        random_state=seed,
    )
    values = result.results.pivot_table(
        index=["metric", "fold"], columns="strategy", values="value"
    )
    brier = values.loc["brier"].mean()
    same_predict = np.array_equal(
        values.loc["balanced_accuracy", "balanced"],
        values.loc["balanced_accuracy", "balanced+corrected"],
    )
    return {
        "dataset": name,
        "brier none": brier["none"],
        "brier balanced": brier["balanced"],
        "brier balanced+corrected": brier["balanced+corrected"],
        "ratio corrected/none": brier["balanced+corrected"] / brier["none"],
        "balanced accuracy (balanced)": values.loc[
            "balanced_accuracy", "balanced"
        ].mean(),
        "same predict in every fold": same_predict,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = []
    for name in args.datasets.split(","):
        rows.append(run(name, args.epochs, args.folds, args.seed))
        print(f"{name}: done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index("dataset")
    ok = (table["ratio corrected/none"] <= TARGET) & table["same predict in every fold"]
    table["target met"] = ok
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table.round(4).to_string())
    if args.markdown:
        write_section(
            args.markdown, os.path.basename(__file__), table.round(4).to_markdown()
        )
    return 0 if ok.all() else 1


if __name__ == "__main__":
    sys.exit(main())

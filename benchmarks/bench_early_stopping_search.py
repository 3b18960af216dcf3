"""A search over early-stopping networks: stacked against scikit-learn's, in one run.

``skweighted.model_selection.GridSearchCV`` over an early-stopping
``WeightedNeuralNetClassifier`` (``early_stopping=True``, at most
``--max-epochs`` epochs, patience 5, the default MLP, batch 128) on 20,000 x
20 rows of 3 classes (80 / 15 / 5 %), 3 class weights x 2 learning rates x 5
folds, against scikit-learn's ``GridSearchCV(n_jobs=2)`` over the same
estimator, each in a fresh Python process. Prints both times, their ratio
(the target: at least 3), how many fits were stacked (the target: all), the
mean epochs of the fits, and whether ``best_params_`` agree (the target:
yes).

Run ``python benchmarks/bench_early_stopping_search.py`` (a few minutes on 2
cores); ``--quick`` for a smoke run (2,000 rows; numbers not comparable).
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from bench_stacking import make_data  # the same 20,000 x 20 rows, 3 classes

GRID = {"class_weight": [None, "balanced", "inverse_sqrt"], "lr": [1e-3, 3e-3]}


def child(which, quick, max_epochs):
    from sklearn import model_selection as sk

    from skweighted import WeightedNeuralNetClassifier
    from skweighted import model_selection as ms

    X, y = make_data(quick)
    est = WeightedNeuralNetClassifier(
        early_stopping=True,
        n_iter_no_change=5,
        max_epochs=max_epochs,
        batch_size=128,
        random_state=0,
    )
    kwargs = dict(cv=5, scoring="balanced_accuracy", return_train_score=False)
    search = (
        ms.GridSearchCV(est, GRID, **kwargs)
        if which == "stacked"
        else sk.GridSearchCV(est, GRID, n_jobs=2, **kwargs)
    )
    start = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "best_params": repr(search.best_params_),
        "mean_test_score": search.cv_results_["mean_test_score"].tolist(),
        "stacking": {
            k: search.stacking_[k] for k in ("n_fits", "n_stacked", "separate")
        }
        if which == "stacked"
        else None,
        "refit_epochs": search.best_estimator_.n_iter_,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--_child", default=None)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(child(args._child, args.quick, args.max_epochs)))
        return
    out = {}
    for which in ("stacked", "sklearn"):
        cmd = [sys.executable, __file__, "--_child", which, "--max-epochs",
               str(args.max_epochs)] + (["--quick"] if args.quick else [])  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[which] = json.loads(run.stdout.strip().splitlines()[-1])
    ours, theirs = out["stacked"], out["sklearn"]
    diff = np.abs(np.subtract(ours["mean_test_score"], theirs["mean_test_score"])).max()
    print(f"stacked GridSearchCV:            {ours['seconds']:.1f} s")
    print(f"scikit-learn GridSearchCV(n_jobs=2): {theirs['seconds']:.1f} s")
    print(f"speed-up: {theirs['seconds'] / ours['seconds']:.2f}x (target >= 3)")
    print(f"stacked fits: {ours['stacking']}")
    print(f"best_params_: {ours['best_params']} / {theirs['best_params']} "
          f"(same: {ours['best_params'] == theirs['best_params']})")  # fmt: skip
    print(f"largest difference of mean_test_score: {diff:.2e}")
    print(f"epochs of the refit: {ours['refit_epochs']} / {theirs['refit_epochs']}")


if __name__ == "__main__":
    main()

"""
==========================================================
Class weighting, resampling and threshold moving, compared
==========================================================

On an imbalanced problem, plain accuracy rewards a network that ignores the
rare class. This example runs :func:`skweighted.comparison.compare` on the built-in
``'synthetic'`` dataset (1900 vs 100 samples) to show the classic picture:

* accuracy is highest for doing nothing;
* balanced accuracy and the recall of the rare class reward correcting, by
  class weights, resampling or a class-balanced mini-batch sampler;
* once the decision threshold is tuned for balanced accuracy
  (:class:`~sklearn.model_selection.TunedThresholdClassifierCV`), the
  correction methods land close together.

The conclusions at the end are computed from this run's numbers.
"""

# %%
# The problem and the strategies
# ------------------------------
# Built-in strategies are named; a strategy can also be any estimator, here
# each one wrapped in threshold moving. Every strategy is a pipeline
# ``StandardScaler -> [sampler] -> WeightedNeuralNetClassifier``, so samplers
# only ever resample the training rows of a fold.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import TunedThresholdClassifierCV

from skweighted import compare, load_imbalanced
from skweighted.comparison import default_estimator, default_scoring, make_strategies

X, y = load_imbalanced("synthetic", return_X_y=True)
labels, counts = np.unique(y, return_counts=True)
print("class counts:", dict(zip(labels.tolist(), counts.tolist())))

corrections = ["none", "balanced", "random_over", "balanced_sampler"]
estimator = default_estimator(max_epochs=20, random_state=0)
plain, _ = make_strategies(corrections, estimator, classes=np.unique(y))
strategies = dict(plain)
for name, pipeline in plain.items():
    strategies[f"{name} + threshold"] = TunedThresholdClassifierCV(
        pipeline, scoring="balanced_accuracy", cv=3
    )

metrics = ["accuracy", "balanced_accuracy", "recall[1]"]
scoring = {k: v for k, v in default_scoring([0, 1]).items() if k in metrics}
result = compare(X, y, strategies=strategies, cv=4, scoring=scoring, random_state=0)
print(result.table(rank_by="balanced_accuracy").to_string())

# %%
# One panel per metric
# --------------------
# Bars are the mean over the four folds, dots the folds themselves.
mean = result.summary.pivot(index="strategy", columns="metric", values="mean")
mean = mean.loc[list(strategies), metrics]
fig, axes = plt.subplots(1, 3, figsize=(12, 4.5), sharey=True, layout="constrained")
ypos = np.arange(len(strategies))[::-1]
colors = ["tab:gray" if "threshold" not in s else "tab:orange" for s in strategies]
for ax, metric in zip(axes, metrics):
    ax.barh(ypos, mean[metric], color=colors, alpha=0.5)
    for y0, name in zip(ypos, strategies):
        res = result.results
        folds = res.loc[(res["strategy"] == name) & (res["metric"] == metric), "value"]
        ax.plot(folds, np.full(len(folds), y0), "k.", ms=4)
    ax.set_title(metric)
    ax.set_xlim(0, 1.05)
axes[0].set_yticks(ypos, list(strategies))
fig.suptitle("grey: correction alone, orange: with a tuned threshold")
plt.show()

# %%
# What this run found
# -------------------
acc, bacc, rec = (mean[m] for m in metrics)
untuned = [s for s in corrections if s != "none"]
tuned = [f"{s} + threshold" for s in corrections]
print(
    f"Accuracy is highest for {acc.idxmax()!r} ({acc.max():.3f}); "
    f"'none' scores {acc['none']:.3f}."
)
print(
    f"Balanced accuracy: 'none' {bacc['none']:.3f}, the corrections "
    f"{bacc[untuned].min():.3f} to {bacc[untuned].max():.3f}."
)
print(
    f"Recall of the rare class: 'none' {rec['none']:.3f}, the corrections "
    f"{rec[untuned].min():.3f} to {rec[untuned].max():.3f}."
)
print(
    "Balanced accuracy spread across methods: "
    f"{bacc[corrections].max() - bacc[corrections].min():.3f} without tuning, "
    f"{bacc[tuned].max() - bacc[tuned].min():.3f} with a tuned threshold "
    f"({bacc[tuned].min():.3f} to {bacc[tuned].max():.3f})."
)

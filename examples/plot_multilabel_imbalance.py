"""
Multi-label targets with rare labels
====================================

Each row can carry several labels, and each label is a rare event of its
own: here five labels present in 30%, 15%, 8%, 4% and 2% of the rows. The
network gets one output and one binary cross-entropy per label; with
``class_weight="balanced"`` each label's positives weigh
``n_negative / n_positive`` of that label (PyTorch's ``pos_weight``), and
``"inverse_sqrt"`` the square root of that. We compare the per-label recall,
precision and F1 on held-out rows.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skweighted import WeightedNeuralNetClassifier

rng = np.random.default_rng(0)
prevalence = np.array([0.30, 0.15, 0.08, 0.04, 0.02])
X = rng.normal(size=(2000, 10)).astype(np.float32)
scores = X @ rng.normal(size=(10, 5)) + rng.normal(scale=1.5, size=(2000, 5))
# label j is present in the top prevalence[j] share of its scores
thresholds = [np.quantile(scores[:, j], 1 - p) for j, p in enumerate(prevalence)]
Y = (scores > np.array(thresholds)).astype(np.int64)
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.4, random_state=0)
print("positives per label in training:", Y_train.sum(axis=0))

# %%
# Fit three weightings
# --------------------
params = dict(
    max_epochs=25, lr=0.01, batch_size=256, module__hidden_units=(32,), random_state=0
)
models = {
    str(cw): make_pipeline(
        StandardScaler(), WeightedNeuralNetClassifier(class_weight=cw, **params)
    )
    for cw in (None, "inverse_sqrt", "balanced")
}
metrics = {}
for name, model in models.items():
    Y_pred = model.fit(X_train, Y_train).predict(X_test)
    metrics[name] = {
        "recall": recall_score(Y_test, Y_pred, average=None, zero_division=0),
        "precision": precision_score(Y_test, Y_pred, average=None, zero_division=0),
        "F1": f1_score(Y_test, Y_pred, average=None, zero_division=0),
    }
    print(
        f"{name:>12}: f1_macro {f1_score(Y_test, Y_pred, average='macro'):.3f}, "
        f"recall per label {metrics[name]['recall'].round(2)}"
    )

weights = models["balanced"][-1].class_weight_
print("pos_weight per label ('balanced'):", weights[:, 1].round(1))

# %%
# Per-label recall, precision and F1
# ----------------------------------
# Without weights the two rarest labels are never predicted. The
# ``pos_weight`` of ``'balanced'`` raises their recall the most, at the cost
# of precision; ``'inverse_sqrt'`` is the milder trade, and on this data the
# better one by macro F1. Which weighting is best depends on the data and the
# metric: search ``class_weight`` with
# ``GridSearchCV(..., scoring="f1_macro")`` on training folds.
labels = np.arange(len(prevalence))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=True)
width = 0.27
for ax, metric in zip(axes, ("recall", "precision", "F1")):
    for i, (name, values) in enumerate(metrics.items()):
        ax.bar(labels + (i - 1) * width, values[metric], width, label=name)
    ax.set_xticks(labels, [f"{p:.0%}" for p in prevalence])
    ax.set_xlabel("label (share of rows with it)")
    ax.set_title(metric)
axes[0].set_ylim(0, 1)
axes[0].legend(title="class_weight", fontsize=8)
fig.tight_layout()
plt.show()

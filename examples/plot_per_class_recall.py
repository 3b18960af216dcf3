"""
Per-class recall before and after weighting
===========================================

Accuracy hides what class imbalance does: a network can be right 90% of the
time while missing most rows of its rarest class. This example trains the
same network on a four-class problem with and without
``class_weight="balanced"`` and shows the recall of each class, and the
confusion matrices, on held-out data.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    balanced_accuracy_score,
    recall_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skweighted import WeightedNeuralNetClassifier

X, y = make_classification(
    n_samples=3000,
    n_features=12,
    n_informative=6,
    n_classes=4,
    weights=[0.7, 0.2, 0.07, 0.03],
    class_sep=1.0,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.4, random_state=0
)
print("training rows per class:", np.bincount(y_train))

# %%
# Fit both
# --------
params = dict(max_epochs=30, lr=0.01, module__hidden_units=(64,), random_state=0)
models = {
    "None": make_pipeline(StandardScaler(), WeightedNeuralNetClassifier(**params)),
    "'balanced'": make_pipeline(
        StandardScaler(),
        WeightedNeuralNetClassifier(class_weight="balanced", **params),
    ),
}
predictions = {
    name: m.fit(X_train, y_train).predict(X_test) for name, m in models.items()
}
recalls = {
    name: recall_score(y_test, p, average=None) for name, p in predictions.items()
}

for name, y_pred in predictions.items():
    print(
        f"{name:>10}: accuracy {accuracy_score(y_test, y_pred):.3f}, "
        f"balanced accuracy {balanced_accuracy_score(y_test, y_pred):.3f}, "
        f"recall per class {np.round(recalls[name], 2)}"
    )

# %%
# Recall of each class
# --------------------
# Weighting moves recall from the common class to the rare ones. Accuracy,
# dominated by the common class, cannot show that trade; balanced accuracy
# (the mean of the per-class recalls) weighs every class the same.
classes = np.unique(y)
width = 0.38
fig, ax = plt.subplots(figsize=(7, 4))
for i, (name, r) in enumerate(recalls.items()):
    bars = ax.bar(classes + (i - 0.5) * width, r, width, label=name)
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
counts = np.bincount(y_train)
ax.set_xticks(
    classes, [f"class {c}\n({n} training rows)" for c, n in zip(classes, counts)]
)
ax.set_ylabel("recall on the test set")
ax.set_ylim(0, 1.1)
ax.legend(title="class_weight")
fig.tight_layout()

# %%
# Confusion matrices
# ------------------
# Rows are the true classes, normalised so each row sums to 1: the diagonal
# is the per-class recall above.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, y_pred) in zip(axes, predictions.items()):
    ConfusionMatrixDisplay.from_predictions(
        y_test, y_pred, normalize="true", values_format=".2f", colorbar=False, ax=ax
    )
    ax.set_title(f"class_weight={name}")
fig.tight_layout()
plt.show()

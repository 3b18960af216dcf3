"""
The loss zoo on one dataset
===========================

The same network and the same data, trained with different losses and
weighting schemes. Each entry of ``ZOO`` below is a name and the estimator
parameters that select a loss (``criterion=...``, ``criterion__*``) and a
weighting (``class_weight=...``); adding a loss to the comparison is adding
one line to that list.

The entries here:

- plain cross-entropy (no weights), the baseline;
- :class:`~skweighted.losses.WeightedCrossEntropyLoss` with ``'balanced'``
  weights under its two normalisations, the weighted mean
  :math:`\\sum_i v_i \\ell_i / \\sum_i v_i` (the default) and the plain mean
  :math:`\\sum_i v_i \\ell_i / N`;
- PyTorch's own :class:`torch.nn.CrossEntropyLoss` with the same weights,
  which computes the same weighted mean;
- the other weighting schemes of :mod:`skweighted.class_weight` on the
  default loss;
- :class:`~skweighted.losses.FocalLoss`, :class:`~skweighted.losses.LogitAdjustedLoss`
  (trained and post-hoc) and
  :class:`~skweighted.losses.RealWorldWeightCrossEntropyLoss` with a cost
  matrix that makes missing the rarest class expensive.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from skweighted import (
    Deferred,
    EffectiveNumber,
    FocalLoss,
    LogitAdjustedLoss,
    PerBatch,
    RealWorldWeightCrossEntropyLoss,
    WeightedNeuralNetClassifier,
)

X, y = make_classification(
    n_samples=3000,
    n_features=10,
    n_informative=5,
    n_classes=3,
    weights=[0.85, 0.12, 0.03],
    class_sep=0.9,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.4, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print("training rows per class:", np.bincount(y_train))

# %%
# The zoo
# -------
# One line per entry: a name, and the parameters that differ from the common
# ones.
COMMON = dict(max_epochs=30, lr=0.01, module__hidden_units=(64,), random_state=0)
ZOO = [
    ("cross-entropy, unweighted", {}),
    ("weighted CE, weighted mean", dict(class_weight="balanced")),
    (
        "weighted CE, plain mean",
        dict(class_weight="balanced", criterion__normalization="mean"),
    ),
    (
        "torch CrossEntropyLoss",
        dict(class_weight="balanced", criterion=nn.CrossEntropyLoss),
    ),
    ("inverse_sqrt", dict(class_weight="inverse_sqrt")),
    ("EffectiveNumber(0.99)", dict(class_weight=EffectiveNumber(beta=0.99))),
    ("PerBatch('balanced')", dict(class_weight=PerBatch("balanced"))),
    (
        "Deferred('balanced', 15)",
        dict(class_weight=Deferred("balanced", start_epoch=15)),
    ),
    (
        "focal, gamma=2, balanced alpha",
        dict(class_weight="balanced", criterion=FocalLoss),
    ),
    ("logit-adjusted, tau=1", dict(criterion=LogitAdjustedLoss)),
    (
        "post-hoc logit adjustment",
        dict(
            criterion=LogitAdjustedLoss, criterion__tau=0.0, criterion__posthoc_tau=1.0
        ),
    ),
    (
        "real-world-weight, missing class 2 costs 20",
        dict(
            criterion=RealWorldWeightCrossEntropyLoss,
            criterion__cost_matrix=[[0, 1, 1], [5, 0, 1], [20, 20, 0]],
        ),
    ),
]

rows = []
for name, params in ZOO:
    clf = WeightedNeuralNetClassifier(**{**COMMON, **params}).fit(X_train, y_train)
    y_pred = clf.predict(X_test)
    recall = recall_score(y_test, y_pred, average=None)
    rows.append(
        {
            "loss": name,
            "balanced accuracy": balanced_accuracy_score(y_test, y_pred),
            **{f"recall class {c}": r for c, r in zip(clf.classes_, recall)},
        }
    )
results = pd.DataFrame(rows).set_index("loss")
print(results.round(3).to_string())

# %%
# Two things to read in the table. The default weighted mean and PyTorch's
# ``CrossEntropyLoss`` compute the same loss, so they train the same network
# (up to floating-point differences in the order of operations). The plain
# mean keeps the class balance of the weighted mean but scales the loss by the
# average weight of each batch, which changes the effective step size.
#
# Per-class recall and balanced accuracy on the test set:
fig, ax = plt.subplots(figsize=(10, 5))
recall_cols = [c for c in results.columns if c.startswith("recall")]
results[recall_cols + ["balanced accuracy"]].plot.barh(ax=ax, width=0.8)
ax.invert_yaxis()
ax.set_xlim(0, 1)
ax.set_xlabel("test score")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
fig.tight_layout()
plt.show()

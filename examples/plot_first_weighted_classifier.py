"""
A first weighted classifier
===========================

Train the same small network twice on a two-dimensional problem where one
class is 19 times rarer than the other: once with every row counting the
same, once with ``class_weight="balanced"``. The decision boundaries show what
the weights do: the weighted network gives the rare class a larger region,
which raises its recall and, with it, the number of false alarms (lower
precision).
"""

# %%
# The data
# --------
# Two informative features, so the decision regions can be drawn; 5% of the
# rows belong to class 1.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

from skweighted import WeightedNeuralNetClassifier

X, y = make_classification(
    n_samples=2000,
    n_features=2,
    n_informative=2,
    n_redundant=0,
    n_clusters_per_class=1,
    weights=[0.95],
    class_sep=0.8,
    random_state=3,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.5, random_state=0
)
print("rows per class in the training set:", np.bincount(y_train))

# %%
# Two networks, one difference
# ----------------------------
# ``class_weight="balanced"`` computes :math:`n / (K n_c)` from the training
# labels at ``fit``; ``class_weight_`` holds the result, aligned with
# ``classes_``.
params = dict(max_epochs=30, lr=0.01, module__hidden_units=(32, 32), random_state=0)
plain = WeightedNeuralNetClassifier(**params).fit(X_train, y_train)
weighted = WeightedNeuralNetClassifier(class_weight="balanced", **params).fit(
    X_train, y_train
)
print("class weights:", weighted.class_weight_)

for name, clf in [("None", plain), ("'balanced'", weighted)]:
    y_pred = clf.predict(X_test)
    print(
        f"class_weight={name:>10}: recall of the rare class "
        f"{recall_score(y_test, y_pred):.2f}, precision "
        f"{precision_score(y_test, y_pred):.2f}, balanced accuracy "
        f"{balanced_accuracy_score(y_test, y_pred):.2f}"
    )

# %%
# The decision regions
# --------------------
# The shaded area is where each network predicts the rare class; the dots are
# the test rows.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
for ax, (name, clf) in zip(axes, [("None", plain), ("'balanced'", weighted)]):
    DecisionBoundaryDisplay.from_estimator(
        clf, X_test, response_method="predict", cmap="coolwarm", alpha=0.3, ax=ax
    )
    ax.scatter(
        X_test[y_test == 0, 0], X_test[y_test == 0, 1], s=6, c="tab:blue", alpha=0.4
    )
    ax.scatter(
        X_test[y_test == 1, 0],
        X_test[y_test == 1, 1],
        s=14,
        c="tab:red",
        edgecolor="k",
        linewidth=0.3,
        label="rare class",
    )
    recall = recall_score(y_test, clf.predict(X_test))
    ax.set_title(f"class_weight={name}: rare-class recall {recall:.2f}")
axes[0].legend(loc="lower left")
fig.tight_layout()
plt.show()

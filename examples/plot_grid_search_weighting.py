"""
Searching over weighting options with ``GridSearchCV``
======================================================

``class_weight`` is an ordinary estimator parameter, so a
``GridSearchCV`` can choose it, together with anything else: here the
weighting scheme and the width of the network, scored by balanced accuracy.
The class weights are recomputed from the training part of every fold.

:class:`skweighted.model_selection.GridSearchCV` is scikit-learn's
``GridSearchCV`` (same arguments, same ``cv_results_``) with the networks of
every candidate and fold trained together in one vectorised stack.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skweighted import EffectiveNumber, WeightedNeuralNetClassifier
from skweighted.model_selection import GridSearchCV

X, y = make_classification(
    n_samples=1500,
    n_features=10,
    n_informative=5,
    n_classes=3,
    weights=[0.85, 0.12, 0.03],
    class_sep=0.9,
    random_state=0,
)
print("rows per class:", np.bincount(y))

# %%
# The grid
# --------
# Schemes are small scikit-learn objects, so they print readably in the
# results and their own parameters could be searched too
# (``clf__class_weight__beta``).
pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        ("clf", WeightedNeuralNetClassifier(max_epochs=20, lr=0.01, random_state=0)),
    ]
)
grid = {
    "clf__class_weight": [
        None,
        "inverse_sqrt",
        EffectiveNumber(beta=0.99),
        "balanced",
    ],
    "clf__module__hidden_units": [(16,), (64,)],
}
search = GridSearchCV(
    pipe,
    grid,
    scoring="balanced_accuracy",
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
).fit(X, y)
print("best:", search.best_params_)
print(f"best balanced accuracy: {search.best_score_:.3f}")

# %%
# The results
# -----------
results = pd.DataFrame(search.cv_results_)
results["class_weight"] = results["param_clf__class_weight"].map(str)
results["hidden_units"] = results["param_clf__module__hidden_units"].map(str)
table = results.pivot(
    index="class_weight", columns="hidden_units", values="mean_test_score"
).loc[[str(v) for v in grid["clf__class_weight"]]]
print(table.round(3))

# %%
# Mean balanced accuracy over the folds, with the spread between folds:
errors = results.pivot(
    index="class_weight", columns="hidden_units", values="std_test_score"
).loc[table.index]
fig, ax = plt.subplots(figsize=(7, 4))
table.plot.barh(xerr=errors, ax=ax, capsize=3)
ax.invert_yaxis()
ax.set_xlabel("balanced accuracy (3-fold CV)")
ax.set_ylabel("class_weight")
ax.set_xlim(0, 1)
ax.legend(title="hidden units", loc="lower right")
fig.tight_layout()
plt.show()

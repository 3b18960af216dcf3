"""
A custom network, string labels and a pandas DataFrame
======================================================

Any ``torch.nn.Module`` can be the network. If its ``__init__`` takes
``n_features_in`` and ``n_classes``, the classifier fills them in from the
data at ``fit``; every other argument is set with a ``module__`` prefix (and
so can be searched). The input here is a pandas DataFrame with named columns
and the labels are strings: they go in as strings and come out as strings,
and the class-weight dict is keyed by them.
"""

# %%
# Data: a DataFrame and string labels
# -----------------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import ConfusionMatrixDisplay, classification_report
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skweighted import WeightedNeuralNetClassifier

X, y = make_classification(
    n_samples=2000,
    n_features=6,
    n_informative=4,
    n_classes=3,
    weights=[0.8, 0.15, 0.05],
    random_state=0,
)
X = pd.DataFrame(X, columns=[f"sensor_{i}" for i in range(X.shape[1])])
y = pd.Series(np.array(["ok", "warning", "failure"])[y], name="status")
print(y.value_counts())
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.4, random_state=0
)


# %%
# The network
# -----------
# A residual block: two linear layers whose output is added back to their
# input. ``n_features_in`` and ``n_classes`` come from the data; ``width`` and
# ``dropout`` are set below with the ``module__`` prefix.
class ResidualNet(nn.Module):
    def __init__(self, n_features_in, n_classes, width=32, dropout=0.1):
        super().__init__()
        self.inp = nn.Linear(n_features_in, width)
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(width, width),
        )
        self.out = nn.Linear(width, n_classes)

    def forward(self, X):
        h = self.inp(X)
        return self.out(torch.relu(h + self.block(h)))


# %%
# Weights keyed by the labels
# ---------------------------
# A dict ``{label: weight}`` in your own labels; labels it does not mention
# weigh 1. Here a missed ``"failure"`` is taken to be 10 times as costly as a
# misclassified ``"ok"``.
clf = WeightedNeuralNetClassifier(
    ResidualNet,
    class_weight={"warning": 3.0, "failure": 10.0},
    module__width=64,
    module__dropout=0.1,
    max_epochs=30,
    lr=0.01,
    random_state=0,
)
model = make_pipeline(StandardScaler().set_output(transform="pandas"), clf)
model.fit(X_train, y_train)

print("classes_:", clf.classes_)
print("class_weight_:", clf.class_weight_)
print("feature_names_in_:", clf.feature_names_in_)

# %%
# Labels out
# ----------
# ``predict`` returns the strings; ``predict_proba`` has one column per entry
# of ``classes_``, which makes a labelled DataFrame straightforward.
print(model.predict(X_test.head()))
proba = pd.DataFrame(
    model.predict_proba(X_test.head()), columns=clf.classes_, index=X_test.head().index
)
print(proba.round(3))
print(classification_report(y_test, model.predict(X_test)))

# %%
# The confusion matrix, in the labels' own names:
fig, ax = plt.subplots(figsize=(5, 4.2))
ConfusionMatrixDisplay.from_estimator(
    model,
    X_test,
    y_test,
    labels=["ok", "warning", "failure"],
    normalize="true",
    values_format=".2f",
    colorbar=False,
    ax=ax,
)
ax.set_title("ResidualNet, class_weight by label")
fig.tight_layout()
plt.show()

"""
A CNN on imbalanced digit images
================================

Class weighting matters most where resampling by interpolation does not
apply: raw images. This example trains a small convolutional network on
scikit-learn's digits as ``1×8×8`` images in which the digits 3, 8 and 9 are
rare (15 images each against 150 of every other digit), three ways: no
correction, ``class_weight='balanced'``, and the class-balanced mini-batch
sampler ``sampler='balanced'``. It shows the recall of every digit and a
confusion matrix on held-out images.

``X`` is a 4-D array, passed as it is: with ``module=None`` the estimator
builds a :class:`~skweighted.modules.CNN` sized from the image shape.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    balanced_accuracy_score,
    recall_score,
)
from sklearn.model_selection import train_test_split

from skweighted import WeightedNeuralNetClassifier, load_imbalanced

X, y = load_imbalanced("digits_images", return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.4, random_state=0
)
print("images:", X.shape, "training images per digit:", np.bincount(y_train))

# %%
# Three ways to train the same CNN
# --------------------------------
params = dict(max_epochs=25, lr=3e-3, batch_size=64, random_state=0)
models = {
    "no correction": WeightedNeuralNetClassifier(**params),
    "class_weight='balanced'": WeightedNeuralNetClassifier(
        class_weight="balanced", **params
    ),
    "sampler='balanced'": WeightedNeuralNetClassifier(sampler="balanced", **params),
}
predictions = {}
for name, model in models.items():
    predictions[name] = model.fit(X_train, y_train).predict(X_test)
    print(
        f"{name:>24}: balanced accuracy "
        f"{balanced_accuracy_score(y_test, predictions[name]):.3f}"
    )
print("module:", models["no correction"].net_.module_.__class__.__name__)

# %%
# Recall of every digit
# ---------------------
# The rare digits (3, 8, 9) are where the three differ.
recalls = {
    name: recall_score(y_test, p, average=None) for name, p in predictions.items()
}
digits = np.arange(10)
width = 0.27
fig, ax = plt.subplots(figsize=(9, 3.8))
for i, (name, r) in enumerate(recalls.items()):
    ax.bar(digits + (i - 1) * width, r, width, label=name)
ax.set_xticks(digits, [f"{d}{'*' if d in (3, 8, 9) else ''}" for d in digits])
ax.set_xlabel("digit (* rare in training)")
ax.set_ylabel("recall on held-out images")
ax.set_ylim(0, 1.05)
ax.legend(loc="lower left", fontsize=8)
fig.tight_layout()

# %%
# Confusion matrix of the weighted CNN
# ------------------------------------
# Rows are true digits, normalised so each row sums to 1 (its diagonal entry
# is the recall above).
fig, ax = plt.subplots(figsize=(6, 5))
ConfusionMatrixDisplay.from_predictions(
    y_test,
    predictions["class_weight='balanced'"],
    normalize="true",
    values_format=".1f",
    colorbar=False,
    ax=ax,
)
ax.set_title("class_weight='balanced'")
fig.tight_layout()
plt.show()

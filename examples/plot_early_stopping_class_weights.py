"""
=========================================================
Early stopping with class weights, and without leakage
=========================================================

A network trained for a fixed number of epochs on imbalanced data learns its
few minority rows by heart: the validation loss turns up after a few epochs
while the training loss keeps falling, and the probabilities become
over-confident (calibration slope well below 1).

This example trains ``class_weight='balanced'`` networks with
``early_stopping=True`` and shows:

1. which loss early stopping watches: the **class-weighted** criterion on the
   validation rows (``net_.history``'s ``valid_loss``), the loss the network
   minimises;
2. why validation rows must never be resampled: with a
   ``RandomOverSampler`` in front of the network, a validation split taken
   from the resampled rows holds copies of training rows, and its loss
   never turns up; ``resampler=`` holds the validation rows out first;
3. what stopping at the best epoch buys on held-out data.

The numbers printed at the end come from this run.
"""

# %%
# Data: 5 % positives
# -------------------
import matplotlib.pyplot as plt
import numpy as np
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit

from skweighted import WeightedNeuralNetClassifier
from skweighted.comparison import calibration_intercept_slope

X, y = make_classification(
    n_samples=2000, n_features=20, n_informative=6, weights=[0.95],
    flip_y=0.02, random_state=0,
)  # fmt: skip
X = X.astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
common = dict(
    module__hidden_units=(64,), lr=3e-3, batch_size=64, random_state=0
)  # fmt: skip

# %%
# Fixed epochs against early stopping
# ------------------------------------
# ``early_stopping=True`` holds out a stratified 15 % of the training rows,
# and stops after 6 epochs without improvement of the validation loss,
# restoring the best epoch's weights.
fixed = WeightedNeuralNetClassifier(
    class_weight="balanced", max_epochs=40, early_stopping=False, **common
).fit(X_train, y_train)
early = WeightedNeuralNetClassifier(
    class_weight="balanced", max_epochs=40, early_stopping=True,
    validation_fraction=0.15, n_iter_no_change=5, **common,
).fit(X_train, y_train)  # fmt: skip
print(f"stopped after {early.n_iter_} epochs, best epoch {early.best_iteration_}")

# %%
# The class-weighted validation loss is what early stopping watches; the
# training loss goes on falling.
history = early.net_.history
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(history[:, "train_loss"], label="training loss (class-weighted)")
ax.plot(history[:, "valid_loss"], label="validation loss (class-weighted)")
ax.axvline(early.best_iteration_ - 1, color="grey", ls=":", label="best epoch")
ax.set(xlabel="epoch", ylabel="loss")
ax.legend()
fig.tight_layout()

# %%
# Validation rows must not be resampled
# -------------------------------------
# ``leaky``: a ``RandomOverSampler`` in front of the network, and skorch's
# ``ValidSplit`` + ``EarlyStopping`` inside it, so the validation rows are
# drawn from the oversampled rows. ``clean``: the sampler given to the
# estimator as ``resampler=``, which resamples only the training rows.
leaky = make_pipeline(
    RandomOverSampler(random_state=0),
    WeightedNeuralNetClassifier(
        max_epochs=40, early_stopping=False,
        train_split=ValidSplit(0.15, stratified=True, random_state=0),
        callbacks=[EarlyStopping(patience=6, load_best=True)], **common,
    ),
).fit(X_train, y_train)  # fmt: skip
clean = WeightedNeuralNetClassifier(
    resampler=RandomOverSampler(random_state=0), max_epochs=40,
    early_stopping=True, validation_fraction=0.15, n_iter_no_change=5, **common,
).fit(X_train, y_train)  # fmt: skip

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(leaky[-1].net_.history[:, "valid_loss"], label="validation from resampled rows")
ax.plot(clean.net_.history[:, "valid_loss"], label="validation held out first")
ax.set(xlabel="epoch", ylabel="validation loss")
ax.legend()
fig.tight_layout()

# %%
# On held-out data
# ----------------
# Balanced accuracy and calibration slope (ideal 1) on the test half.
rows = []
for name, model in [
    ("balanced, 40 epochs", fixed),
    ("balanced, early stopping", early),
    ("random_over, leaky split", leaky),
    ("random_over, resampler=", clean),
]:
    proba = model.predict_proba(X_test)[:, 1]
    _, slope = calibration_intercept_slope(y_test, proba)
    bacc = balanced_accuracy_score(y_test, model.predict(X_test))
    epochs = model[-1].n_iter_ if hasattr(model, "steps") else model.n_iter_
    rows.append((name, epochs, bacc, slope))
    print(f"{name:26s} epochs {epochs:3d}  balanced accuracy {bacc:.3f}  "
          f"calibration slope {slope:.2f}")  # fmt: skip

# %%
# Stopping at the best epoch of the class-weighted validation loss keeps the
# probabilities far better calibrated than a fixed number of epochs; with a
# sampler, the validation rows must be held out before it resamples, or the
# validation loss follows the training loss and stopping comes late.

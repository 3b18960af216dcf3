"""
Token ids and ``nn.Embedding``: a rare intent in event sequences
================================================================

Integer arrays keep their dtype, so a module that starts with
``nn.Embedding`` gets ``int64`` token ids as they are. This example generates
sequences of 20 event ids from a vocabulary of 40; 3% of them belong to a
rare class, marked by a motif of three events hidden somewhere in the
sequence; half of the others hold two thirds of that motif. The same
embedding model is trained with and without ``class_weight='balanced'``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import PrecisionRecallDisplay, classification_report
from sklearn.model_selection import train_test_split
from torch import nn

from skweighted import WeightedNeuralNetClassifier

rng = np.random.default_rng(0)
n, length, vocab = 3000, 20, 40
y = (rng.random(n) < 0.03).astype(int)
X = rng.integers(1, vocab, (n, length))
motif = np.array([7, 13, 21])
for i in np.flatnonzero(y):  # plant the motif in the rare sequences
    start = rng.integers(0, length - 3)
    X[i, start : start + 3] = motif
for i in np.flatnonzero(y == 0)[:1500]:  # and two thirds of it in half the others
    start = rng.integers(0, length - 2)
    X[i, start : start + 2] = motif[:2] if rng.random() < 0.5 else motif[1:]
print(X.dtype, X.shape, "rare sequences:", y.sum())

X_train, X_test, y_train, y_test = train_test_split(
    X, y, stratify=y, test_size=0.4, random_state=0
)


# %%
# An embedding model
# ------------------
# Each id becomes a vector; a 1-D convolution of width 3 can spot the motif;
# the strongest response over the sequence feeds the output layer.
class EventModel(nn.Module):
    def __init__(self, vocab_size=vocab, dim=16, n_classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.conv = nn.Conv1d(dim, 32, kernel_size=3)
        self.out = nn.Linear(32, n_classes)

    def forward(self, X):
        h = self.embed(X).transpose(1, 2)  # (batch, dim, length)
        return self.out(torch.relu(self.conv(h)).amax(dim=2))


params = dict(module=EventModel, max_epochs=8, lr=3e-3, random_state=0)
models = {}
for weight in (None, "balanced"):
    clf = WeightedNeuralNetClassifier(class_weight=weight, **params)
    models[weight] = clf.fit(X_train, y_train)
    print(f"class_weight={weight!r}")
    print(classification_report(y_test, clf.predict(X_test), digits=3, zero_division=0))

# %%
# Precision and recall of the rare class
# --------------------------------------
# The model outputs probabilities; the curves show every threshold at once,
# the dots the default decision (the most probable class).
fig, ax = plt.subplots(figsize=(5.5, 4))
for weight, clf in models.items():
    PrecisionRecallDisplay.from_estimator(
        clf, X_test, y_test, ax=ax, name=f"class_weight={weight!r}"
    )
    pred = clf.predict(X_test)
    hit = (pred == 1) & (y_test == 1)
    recall, precision = hit.sum() / y_test.sum(), hit.sum() / max(pred.sum(), 1)
    ax.plot(recall, precision, "o", color=ax.lines[-1].get_color())
ax.set_title("rare class, held-out sequences")
fig.tight_layout()
plt.show()

# %%
# Without weighting, the network settles for the common class: the few rare
# sequences barely move a loss that 97% of the rows dominate. With
# ``'balanced'`` weights each class carries the same total weight, and the
# rare intent is found, at the price of some false alarms.

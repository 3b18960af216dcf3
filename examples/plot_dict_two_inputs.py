"""
Two inputs from a dict: a sensor signal and a device type
=========================================================

A module whose ``forward`` takes several inputs gets them from a dict of
arrays, by name (skorch's convention): here a short sensor signal (float)
and the type of the device that recorded it (an integer id for an
``nn.Embedding``). Each array keeps its own dtype. Wrapped in skorch's
``SliceDict``, the dict goes through scikit-learn's cross-validation as it
is; a grid search picks the class weighting.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch.helper import SliceDict
from torch import nn

from skweighted import WeightedNeuralNetClassifier

rng = np.random.default_rng(0)
n, steps, n_devices = 1500, 16, 5
device = rng.integers(0, n_devices, n)
y = (rng.random(n) < 0.06).astype(int)  # 6% faults
signal = rng.normal(0, 1, (n, steps)).astype(np.float32)
# a fault is a bump whose sign depends on the device type
sign = np.where(device % 2 == 0, 1.0, -1.0)
signal[y == 1, 6:10] += 1.5 * sign[y == 1, None]
X = SliceDict(signal=signal, device=device)
print({k: (v.dtype, v.shape) for k, v in X.items()}, "faults:", y.sum())


# %%
# The module: one argument per key
# --------------------------------
class SignalAndDevice(nn.Module):
    def __init__(self, n_classes=2):
        super().__init__()
        self.device_embed = nn.Embedding(n_devices, 4)
        self.mlp = nn.Sequential(nn.Linear(steps + 4, 32), nn.ReLU())
        self.out = nn.Linear(32, n_classes)

    def forward(self, signal, device):
        h = torch.cat([signal, self.device_embed(device)], dim=1)
        return self.out(self.mlp(h))


# %%
# Grid search over the class weighting
# ------------------------------------
search = GridSearchCV(
    WeightedNeuralNetClassifier(
        SignalAndDevice, max_epochs=20, lr=3e-3, random_state=0
    ),
    {"class_weight": [None, "balanced", "inverse_sqrt"]},
    scoring="balanced_accuracy",
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
search.fit(X, y)
names = [str(p["class_weight"]) for p in search.cv_results_["params"]]
means = search.cv_results_["mean_test_score"]
stds = search.cv_results_["std_test_score"]
for name, mean in zip(names, means):
    print(f"{name:>12}: balanced accuracy {mean:.3f}")
print("best:", search.best_params_)

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.bar(names, means, yerr=stds, capsize=4)
ax.set_xlabel("class_weight")
ax.set_ylabel("balanced accuracy (3-fold CV)")
ax.set_ylim(0.5, 1)
fig.tight_layout()
plt.show()

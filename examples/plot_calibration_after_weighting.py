"""
===========================================================
Probabilities after class weighting: what correction buys
===========================================================

van den Goorbergh et al. (JAMIA 2022, "The harm of class imbalance
corrections for risk prediction models") found on clinical data that random
under- and oversampling and SMOTE make a risk model strongly overestimate
the risk of the minority class -- with no gain in AUROC -- and that moving
the decision threshold of the uncorrected model gives the same sensitivity
and specificity without the miscalibration.

This example reproduces their experiment on generated data, with a small
network instead of logistic regression, at event fractions of 1%, 5% and
20%: every strategy is trained on one training set and scored on a large
test set from the same distribution, by AUROC, calibration intercept and
slope (:func:`~skweighted.comparison.calibration_intercept_slope`),
sensitivity and specificity. Besides their strategies it runs
``class_weight='balanced'`` with ``correct_proba=True``, which divides the
weights back out of the probabilities and keeps the weighted decisions.

The conclusions at the end are computed from this run's numbers.
"""

# %%
# Data from a logistic model
# --------------------------
# Eight standard-normal features; the true risk is a logistic function of
# five of them, its intercept set so that the mean risk is the event fraction.
import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from skweighted import WeightedNeuralNetClassifier
from skweighted.comparison import calibration_intercept_slope

BETA = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0])
FRACTIONS = [0.01, 0.05, 0.20]
N_TRAIN, N_TEST = 3000, 20_000
rng = np.random.default_rng(0)


def draw(n, b0):
    X = rng.standard_normal((n, len(BETA))).astype(np.float32)
    risk = expit(b0 + X @ BETA)
    return X, (rng.uniform(size=n) < risk).astype(int)


def intercept_for(fraction):
    z = rng.standard_normal((100_000, len(BETA))) @ BETA
    return brentq(lambda b0: expit(b0 + z).mean() - fraction, -15, 5)


def network(**params):
    return WeightedNeuralNetClassifier(
        module__hidden_units=(16,),
        max_epochs=15,
        batch_size=256,
        lr=0.01,
        random_state=0,
        **params,
    )


# %%
# The strategies
# --------------
# Each returns the probability of an event and the decisions on the test set.
# Threshold moving uses the probabilities of the uncorrected network and
# calls an event when the risk exceeds the training event fraction (the
# decision that ``'balanced'`` weights train for).
def resampled(sampler):
    def fit(X, y, X_test):
        Xr, yr = sampler.fit_resample(X, y)
        model = network().fit(Xr, yr)
        return model.predict_proba(X_test)[:, 1], model.predict(X_test)

    return fit


def unweighted(X, y, X_test):
    model = network().fit(X, y)
    return model.predict_proba(X_test)[:, 1], model.predict(X_test)


def balanced_pair(X, y, X_test):
    corrected = network(class_weight="balanced", correct_proba=True).fit(X, y)
    # the same fitted network, its probabilities not corrected
    plain = copy.deepcopy(corrected).set_params(correct_proba=False)
    decisions = corrected.predict(X_test)  # the same for both
    return {
        "balanced": (plain.predict_proba(X_test)[:, 1], decisions),
        "balanced + correction": (corrected.predict_proba(X_test)[:, 1], decisions),
    }


def threshold_moving(X, y, X_test):
    p, _ = unweighted(X, y, X_test)
    return p, (p > y.mean()).astype(int)


STRATEGIES = {
    "none": unweighted,
    "random undersampling": resampled(RandomUnderSampler(random_state=0)),
    "random oversampling": resampled(RandomOverSampler(random_state=0)),
    "SMOTE": resampled(SMOTE(random_state=0)),
    "threshold moving": threshold_moving,
}

rows = []
for fraction in FRACTIONS:
    b0 = intercept_for(fraction)
    X, y = draw(N_TRAIN, b0)
    X_test, y_test = draw(N_TEST, b0)
    outputs = {name: fit(X, y, X_test) for name, fit in STRATEGIES.items()}
    outputs.update(balanced_pair(X, y, X_test))
    for name, (p, decisions) in outputs.items():
        intercept, slope = calibration_intercept_slope(y_test, p)
        rows.append(
            {
                "event fraction": fraction,
                "strategy": name,
                "AUROC": roc_auc_score(y_test, p),
                "intercept": intercept,
                "slope": slope,
                "sensitivity": np.mean(decisions[y_test == 1] == 1),
                "specificity": np.mean(decisions[y_test == 0] == 0),
            }
        )

table = pd.DataFrame(rows).set_index(["event fraction", "strategy"])
with pd.option_context("display.width", 120, "display.max_columns", None):
    print(table.round(3).to_string())

# %%
# One panel per measure
# ---------------------
# A calibrated model has intercept 0 (a negative intercept: the risk is
# overestimated) and slope 1 (below 1: too extreme).
order = [
    "none",
    "balanced",
    "balanced + correction",
    "random undersampling",
    "random oversampling",
    "SMOTE",
    "threshold moving",
]
measures = ["AUROC", "intercept", "slope", "sensitivity", "specificity"]
fig, axes = plt.subplots(1, 5, figsize=(17, 4), layout="constrained")
for ax, measure in zip(axes, measures):
    for i, name in enumerate(order):
        values = table.xs(name, level="strategy")[measure]
        ax.plot(
            [100 * f for f in FRACTIONS],
            values,
            ("-", "--", ":")[i % 3],
            marker="o",
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in FRACTIONS], [f"{100 * f:g}%" for f in FRACTIONS])
    ax.set_xlabel("event fraction")
    ax.set_title(measure)
    ax.grid(alpha=0.3)
axes[1].axhline(0, color="gray", lw=1)
axes[2].axhline(1, color="gray", lw=1)
axes[-1].legend(fontsize=8, loc="lower left")
plt.show()

# %%
# What this run found
# -------------------
auroc = table["AUROC"].unstack("strategy")
intercept = table["intercept"].unstack("strategy")
sens = table["sensitivity"].unstack("strategy")
spec = table["specificity"].unstack("strategy")
resampling = ["random undersampling", "random oversampling", "SMOTE"]
print(
    "AUROC, largest gap between strategies at each event fraction: "
    + ", ".join(
        f"{100 * f:g}%: {auroc.loc[f].max() - auroc.loc[f].min():.3f}"
        for f in FRACTIONS
    )
)
print(
    "Calibration intercept of the resampling strategies: "
    f"{intercept[resampling].min().min():.2f} to "
    f"{intercept[resampling].max().max():.2f} "
    f"(none: {intercept['none'].min():.2f} to {intercept['none'].max():.2f}); "
    "negative means the risk is overestimated."
)
print(
    "'balanced' weights: intercept "
    f"{intercept['balanced'].min():.2f} to {intercept['balanced'].max():.2f}; "
    "with the correction "
    f"{intercept['balanced + correction'].min():.2f} to "
    f"{intercept['balanced + correction'].max():.2f}, with the same "
    "sensitivity and specificity (the decisions are unchanged)."
)
for f in FRACTIONS:
    print(
        f"At {100 * f:g}% events: sensitivity / specificity of threshold moving "
        f"{sens.loc[f, 'threshold moving']:.2f} / "
        f"{spec.loc[f, 'threshold moving']:.2f}, of 'balanced' "
        f"{sens.loc[f, 'balanced']:.2f} / {spec.loc[f, 'balanced']:.2f}, of "
        f"undersampling {sens.loc[f, 'random undersampling']:.2f} / "
        f"{spec.loc[f, 'random undersampling']:.2f}, of 'none' "
        f"{sens.loc[f, 'none']:.2f} / {spec.loc[f, 'none']:.2f}."
    )

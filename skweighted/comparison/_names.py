"""The names of the built-in strategies, with what each does.

A leaf module (no imports), so that ``skweighted compare --help`` lists the
strategies without loading PyTorch or imbalanced-learn.
"""

__all__ = ["BUILTIN_STRATEGIES", "CORRECTED", "DEFAULT_STRATEGIES"]

_SAMPLERS_NAMES = ("random_over", "random_under", "smote")

#: Every built-in strategy name, with what it does.
BUILTIN_STRATEGIES = {
    "none": "no correction",
    "balanced": "class_weight='balanced' (scikit-learn's formula)",
    "inverse_sqrt": "class_weight='inverse_sqrt' (1 / sqrt(count))",
    "median_frequency": "class_weight='median_frequency'",
    "effective_number": "class_weight=EffectiveNumber(beta=0.999)",
    "random_over": "RandomOverSampler, then the network",
    "random_under": "RandomUnderSampler, then the network",
    "smote": "SMOTE, then the network",
    "balanced_sampler": "sampler='balanced': class-balanced mini-batches each epoch",
    "sampler+weights": "sampler='inverse_sqrt' and class_weight='inverse_sqrt': "
    "half the correction from the batches, half from the loss",
    "threshold": "TunedThresholdClassifierCV over 'none', tuned for balanced "
    "accuracy (binary only)",
}
#: The suffix of a strategy whose probabilities are corrected back to the
#: class prior of the data (``correct_proba=True``, and for a resampling
#: strategy ``class_prior=`` the prior before resampling).
CORRECTED = "+corrected"
_CORRECTABLE = (
    "balanced",
    "inverse_sqrt",
    "median_frequency",
    "effective_number",
    "random_over",
    "random_under",
    "smote",
    "balanced_sampler",
    "sampler+weights",
)
BUILTIN_STRATEGIES.update(
    {
        f"{name}{CORRECTED}": f"{name}, predict_proba corrected to the class "
        "prior of the data (correct_proba=True"
        + (", class_prior=before resampling)" if name in _SAMPLERS_NAMES else ")")
        for name in _CORRECTABLE
    }
)

#: The strategies a comparison runs when none are named.
DEFAULT_STRATEGIES = (
    "none",
    "balanced",
    "balanced+corrected",
    "effective_number",
    "random_over",
    "random_under",
    "smote",
    "balanced_sampler",
    "sampler+weights",
    "threshold",
)

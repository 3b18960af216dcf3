"""Which rows a fit trains on and which it validates on.

The order is the point: first the validation rows are held out of the rows
``fit`` received (:func:`skweighted._early_stopping.validation_split`), then
the estimator's ``resampler`` resamples the rest. A validation row is
therefore never a copy (``RandomOverSampler``) nor a synthetic neighbour
(``SMOTE``) of a training row, and the validation rows keep the class ratio
of the data, which a sampler in front of the estimator (an imbalanced-learn
``Pipeline``) cannot guarantee: the estimator only sees resampled rows.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from ._early_stopping import rare_classes, validation_split
from .resampling import RowSampler, _take


@dataclass(frozen=True)
class FitRows:
    """The data one fit trains with.

    Attributes
    ----------
    X, y, sample_weight
        The rows the net's dataset holds (resampled rows, then validation rows
        when a synthesising resampler made new ones), ``y`` encoded.
    train, valid : ndarray or None
        With early stopping, the rows of ``X`` trained on (repeats allowed)
        and scored on; ``None`` without.
    """

    X: object
    y: np.ndarray
    sample_weight: np.ndarray | None
    train: np.ndarray | None = None
    valid: np.ndarray | None = None


def split_rows(y, *, early_stopping, fraction, seed, classes):
    """``(train, valid)`` rows, or ``(None, None)`` when the fit does not stop
    early; ``early_stopping`` is True, False or ``'auto'`` resolved to a
    bool with ``auto=True`` meaning the split may fall back (with a warning)."""
    if not early_stopping:
        return None, None
    rare = rare_classes(y, fraction)
    if rare:
        labels = [classes[c].item() if hasattr(classes[c], "item") else classes[c]
                  for c in rare]  # fmt: skip
        message = (
            f"early stopping holds out a stratified validation_fraction="
            f"{fraction} of the rows, which needs at least 2 samples of every "
            f"class; class(es) {labels!r} have only 1."
        )
        if early_stopping != "auto":
            raise ValueError(
                message + " Set early_stopping=False, or pass more samples of "
                "those classes."
            )
        warnings.warn(
            message + " Training without early stopping.", UserWarning, stacklevel=4
        )
        return None, None
    return validation_split(y, fraction, seed)


def fit_rows(X, y, sample_weight, *, train, valid, resampler, seed, classes):
    """Resample the training rows of ``X, y`` (all rows when ``train`` is
    None) with ``resampler``; a :class:`FitRows`.

    ``y`` is encoded ``0..K-1``; the resampler sees the original labels
    (``classes[y]``), so its ``sampling_strategy`` may name them.
    """
    if resampler is None:
        return FitRows(X, y, sample_weight, train, valid)
    if y.ndim != 1:
        raise ValueError(
            "resampler= resamples rows by their class, which a multi-label y "
            "does not have; use class_weight for multi-label targets."
        )
    sampler = clone(resampler)
    if "random_state" in sampler.get_params() and sampler.random_state is None:
        sampler.set_params(random_state=seed)
    rows = np.arange(len(y)) if train is None else train
    row_sampler = RowSampler(sampler)
    Xr, yr = row_sampler.fit_resample(_take(X, rows), classes[y[rows]])
    yr = np.searchsorted(classes, yr).astype(np.int64)
    picked = row_sampler.sample_indices_
    if picked is not None:
        picked = rows[picked]
        sw = None if sample_weight is None else sample_weight[picked]
        if valid is None:
            return FitRows(Xr, yr, sw)
        return FitRows(X, y, sample_weight, picked, valid)
    if sample_weight is not None:
        raise ValueError(
            f"resampler={type(resampler).__name__} synthesises new samples, "
            "which have no sample_weight; drop sample_weight or use a sampler "
            "that selects rows (RandomOverSampler, RandomUnderSampler)."
        )
    if isinstance(X, np.ndarray):
        Xr = np.asarray(Xr).astype(X.dtype, copy=False)
    if valid is None:
        return FitRows(Xr, yr, None)
    n = len(yr)
    X = np.concatenate([Xr, _take(np.asarray(X), valid)])
    y = np.concatenate([yr, y[valid]])
    return FitRows(X, y, None, np.arange(n), n + np.arange(len(valid)))

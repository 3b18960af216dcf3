"""Resampling for every input form: imbalanced-learn samplers beyond tables.

imbalanced-learn's samplers take 2-D feature tables only. :class:`RowSampler`
applies one to images, sequences, token ids, dicts of arrays and datasets, so
that ``RandomUnderSampler`` or ``SMOTE`` can sit in an imbalanced-learn
``Pipeline`` in front of a network on any input.
"""

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from ._compat import safe_indexing
from ._inputs import form_of, n_samples

__all__ = ["RowSampler"]


def _take(X, idx):
    """Rows ``idx`` of ``X`` of any form, in its own form."""
    if isinstance(X, dict):
        from skorch.helper import SliceDict

        return SliceDict(**{k: safe_indexing(v, idx) for k, v in X.items()})
    if isinstance(X, torch.utils.data.Dataset):
        return torch.utils.data.Subset(X, idx.tolist())
    if form_of(X).name == "dataset":  # a SliceDataset slices itself
        return X[idx]
    return safe_indexing(X, idx)


def _selects_rows_only(sampler):
    """Samplers that pick rows from ``y`` alone (``X`` is never read)."""
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    if isinstance(sampler, RandomOverSampler):
        return sampler.shrinkage is None  # a smoothed bootstrap reads X
    return isinstance(sampler, RandomUnderSampler)


class RowSampler(BaseEstimator):
    """An imbalanced-learn sampler applied to ``X`` of any form, row by row.

    - **2-D tables**: the sampler runs as it is.
    - **N-D arrays** (images ``N×C×H×W``, sequences): the sampler sees each
      sample flattened to one row (a view, no copy). A sampler that selects
      rows (``RandomUnderSampler``, ``RandomOverSampler``, ``TomekLinks``, any
      sampler with ``sample_indices_``) returns those rows of the original
      array, dtype and shape unchanged. A sampler that synthesises samples
      (``SMOTE`` and friends) returns its new rows reshaped to the sample
      shape: for images, pixel-wise interpolations between two images of a
      class. Synthesising is refused for integer arrays other than ``uint8``
      (token ids have no values in between) and for booleans.
    - **dicts of arrays** and **Datasets** (``SliceDataset`` too): only
      ``RandomUnderSampler`` and ``RandomOverSampler`` (which read ``y``
      alone), returning the selected rows as a ``SliceDict``, a
      ``SliceDataset`` or a ``torch.utils.data.Subset``.

    Parameters
    ----------
    sampler : imbalanced-learn sampler
        Cloned at each ``fit_resample``; never modified.

    Attributes
    ----------
    sampler_ : imbalanced-learn sampler
        The fitted clone.
    sample_indices_ : ndarray or None
        The rows of ``X`` that were kept or repeated, when the sampler selects
        rows.

    Examples
    --------
    >>> import numpy as np
    >>> from imblearn.under_sampling import RandomUnderSampler
    >>> from skweighted.resampling import RowSampler
    >>> images = np.zeros((10, 1, 8, 8), dtype=np.uint8)
    >>> y = np.array([0] * 8 + [1] * 2)
    >>> Xr, yr = RowSampler(RandomUnderSampler(random_state=0)).fit_resample(
    ...     images, y
    ... )
    >>> Xr.shape, Xr.dtype, np.bincount(yr).tolist()
    ((4, 1, 8, 8), dtype('uint8'), [2, 2])
    """

    def __init__(self, sampler):
        self.sampler = sampler

    def fit_resample(self, X, y, **params):
        """Resample ``X``, ``y`` with a clone of ``sampler``.

        Parameters
        ----------
        X : array-like, dict of arrays or Dataset
        y : array-like of shape (n_samples,)
        **params
            Passed to the sampler's ``fit_resample``.

        Returns
        -------
        X_resampled : same form as ``X``
        y_resampled : ndarray
        """
        sampler = clone(self.sampler)
        form = form_of(X).name
        self.sample_indices_ = None
        if form == "table":
            Xr, yr = sampler.fit_resample(X, y, **params)
            self.sample_indices_ = getattr(sampler, "sample_indices_", None)
        elif form == "array":
            Xr, yr = self._resample_array(sampler, X, y, params)
        else:
            if not _selects_rows_only(sampler):
                raise TypeError(
                    f"RowSampler: {type(sampler).__name__} reads the values of X, "
                    f"which a {form} X does not provide as one array; with a dict "
                    "or a Dataset use RandomUnderSampler or RandomOverSampler "
                    "(or class_weight / sampler= on the estimator)."
                )
            rows = np.arange(n_samples(X)).reshape(-1, 1)
            _, yr = sampler.fit_resample(rows, y, **params)
            self.sample_indices_ = sampler.sample_indices_
            Xr = _take(X, self.sample_indices_)
        self.sampler_ = sampler
        return Xr, yr

    def _resample_array(self, sampler, X, y, params):
        X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X
        X = np.asarray(X)
        flat = X.reshape(len(X), -1)
        Xr, yr = sampler.fit_resample(flat, y, **params)
        idx = getattr(sampler, "sample_indices_", None)
        if idx is not None:
            self.sample_indices_ = idx
            return X[idx], yr
        if X.dtype.kind in "biu" and X.dtype != np.uint8:
            raise TypeError(
                f"RowSampler: {type(sampler).__name__} synthesises new samples by "
                f"interpolating values, which has no meaning for {X.dtype} data "
                "such as token ids; use RandomOverSampler or RandomUnderSampler, "
                "or class_weight / sampler= on the estimator."
            )
        Xr = np.asarray(Xr).reshape(-1, *X.shape[1:])
        if X.dtype == np.uint8:
            Xr = np.clip(np.rint(Xr), 0, 255)
        return Xr.astype(X.dtype, copy=False), yr

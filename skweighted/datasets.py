"""Built-in imbalanced datasets.

Every dataset is either generated (:func:`sklearn.datasets.make_classification`)
or made imbalanced with :func:`imblearn.datasets.make_imbalance` from data that
ships with scikit-learn (digits, wine, breast cancer). Nothing is downloaded,
and each dataset is built from a fixed seed, so it is the same on every call.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "load_imbalanced"]

_SEED = 0


@dataclass(frozen=True)
class _Spec:
    build: object
    description: str


def _synthetic(n_samples, weights, class_sep=1.0, n_features=20):
    def build():
        from sklearn import datasets as skdatasets

        X, y = skdatasets.make_classification(
            n_samples=n_samples,
            n_classes=max(2, len(weights)),
            n_features=n_features,
            n_informative=6,
            n_redundant=4,
            n_clusters_per_class=2,
            weights=weights,
            class_sep=class_sep,
            flip_y=0.0,
            random_state=_SEED,
        )
        names = [f"x{i}" for i in range(X.shape[1])]
        return X, y, names

    return build


def _from_bundled(loader, counts):
    """Subsample the bundled dataset of scikit-learn's ``loader`` (a name in
    :mod:`sklearn.datasets`) to ``counts = {label: n}``."""

    def build():
        from imblearn.datasets import make_imbalance
        from sklearn import datasets as skdatasets

        data = getattr(skdatasets, loader)()
        X, y = make_imbalance(
            data.data, data.target, sampling_strategy=counts, random_state=_SEED
        )
        return X, y, list(data.feature_names)

    return build


def _digit_images():
    """Digits as 1x8x8 images in [0, 1], with the digits 3, 8 and 9 made rare."""
    counts = {d: (15 if d in _RARE_DIGITS else 150) for d in range(10)}
    flat = _from_bundled("load_digits", counts)

    def build():
        X, y, names = flat()
        return X.reshape(-1, 1, 8, 8) / 16.0, y, names

    return build


#: the digits ``digits_images`` keeps 15 samples of (the others keep 150)
_RARE_DIGITS = (3, 8, 9)


def _digits_counts():
    # Ten classes, from 170 down to 17 samples: imbalance ratio 10.
    return {k: int(round(170 * 0.1 ** (k / 9))) for k in range(10)}


#: The built-in datasets: name -> short description.
_SPECS = {
    "synthetic": _Spec(
        _synthetic(2000, [0.95], class_sep=0.8),
        "Generated binary problem, 2000 samples x 20 features, ratio about 19.",
    ),
    "synthetic_rare": _Spec(
        _synthetic(3000, [0.98], class_sep=1.0),
        "Generated binary problem, 3000 samples x 20 features, ratio about 50.",
    ),
    "synthetic_multiclass": _Spec(
        _synthetic(2000, [0.75, 0.15, 0.06, 0.04], class_sep=1.0),
        "Generated 4-class problem, 2000 samples x 20 features, ratio about 19.",
    ),
    "breast_cancer": _Spec(
        _from_bundled("load_breast_cancer", {0: 36, 1: 357}),
        "scikit-learn's breast cancer data, malignant class cut to 36: ratio 10.",
    ),
    "wine": _Spec(
        _from_bundled("load_wine", {0: 40, 1: 71, 2: 14}),
        "scikit-learn's wine data cut to 40/71/14 samples: 3 classes, ratio 5.",
    ),
    "digits": _Spec(
        _from_bundled("load_digits", _digits_counts()),
        "scikit-learn's digits cut to 170..17 samples per digit: 10 classes, ratio 10.",
    ),
    "digits_images": _Spec(
        _digit_images(),
        "scikit-learn's digits as 1x8x8 images in [0, 1]; digits 3, 8 and 9 cut "
        "to 15 samples, the others to 150: 10 classes, ratio 10.",
    ),
}

#: Names of the built-in datasets, with a one-line description each.
DATASETS = {name: spec.description for name, spec in _SPECS.items()}


def load_imbalanced(name="synthetic", *, return_X_y=False, as_frame=False):
    """Load a built-in imbalanced classification dataset.

    Parameters
    ----------
    name : str, default='synthetic'
        One of :data:`DATASETS`: ``'synthetic'`` (binary, ratio ~19),
        ``'synthetic_rare'`` (binary, ratio ~50), ``'synthetic_multiclass'``
        (4 classes, ratio ~19), ``'breast_cancer'`` (binary, ratio 10),
        ``'wine'`` (3 classes, ratio 5), ``'digits'`` (10 classes, ratio 10),
        ``'digits_images'`` (the digits as ``(N, 1, 8, 8)`` images in
        ``[0, 1]``, digits 3, 8 and 9 rare: 10 classes, ratio 10).
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.
    as_frame : bool, default=False
        Return ``X`` as a DataFrame with named columns and ``y`` as a Series
        (not for image data sets).

    Returns
    -------
    data : Bunch
        ``data`` (2-D, or ``(N, C, H, W)`` for images), ``target``,
        ``feature_names`` (one per value of a sample), ``class_counts`` (a dict
        label -> count), ``imbalance_ratio`` (largest over smallest class)
        and ``DESCR``. ``(X, y)`` when ``return_X_y`` is true.

    Examples
    --------
    >>> from skweighted import load_imbalanced
    >>> data = load_imbalanced("wine")
    >>> data.data.shape, data.class_counts, data.imbalance_ratio
    ((125, 13), {0: 40, 1: 71, 2: 14}, 5.07...)
    >>> X, y = load_imbalanced("digits_images", return_X_y=True)
    >>> X.shape, float(X.min()), float(X.max())
    ((1095, 1, 8, 8), 0.0, 1.0)
    """
    from sklearn.utils import Bunch

    if name not in _SPECS:
        raise ValueError(
            f"Unknown dataset name={name!r}; choose one of {sorted(_SPECS)}."
        )
    X, y, names = _SPECS[name].build()
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    labels, counts = np.unique(y, return_counts=True)
    if as_frame and X.ndim > 2:
        raise ValueError(
            f"as_frame=True needs a table, but dataset {name!r} holds images of "
            f"shape {X.shape[1:]}; use as_frame=False."
        )
    if as_frame:
        import pandas as pd

        X = pd.DataFrame(X, columns=names)
        y = pd.Series(y, name="target")
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        feature_names=list(names),
        class_counts={int(k): int(c) for k, c in zip(labels, counts)},
        imbalance_ratio=float(counts.max() / counts.min()),
        DESCR=_SPECS[name].description,
        name=name,
    )

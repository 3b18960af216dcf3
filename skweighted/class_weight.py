r"""Class-weighting schemes and the one function that resolves them.

Every accepted form of ``class_weight`` -- ``None``, a scheme name, a dict
keyed by the original labels, a scheme object or a plain callable -- goes
through :func:`resolve_class_weight`, which returns one float64 array aligned
with ``classes``. Everything downstream (the loss, the sampler) sees only that
array.

A count-based scheme is a small function of the per-class sample counts of the
classes present in ``y``. Adding a scheme means adding one such function (or a
small :class:`WeightingScheme` subclass for a parameterised one).

Classes listed in ``classes`` but absent from ``y`` (possible when the full
label set is passed with ``classes=``, e.g. a CV fold that misses a rare class)
contribute no sample to the loss; they get weight 1.0, scikit-learn's value for
a class a ``class_weight`` dict does not mention.

Only the ratios matter
----------------------
Under the default loss normalisation, PyTorch's weighted mean
:math:`\sum_i w_{y_i} \ell_i / \sum_i w_{y_i}`, multiplying every class
weight by the same constant changes nothing: not the loss, not its gradients,
not the trained network. ``'balanced'`` (:math:`n / (K n_c)`), ``'inverse'``
(:math:`1 / n_c`) and inverse frequency normalised to sum to 1
(``InversePower(normalize=True)``) are the same weights up to a constant, so
they train identically with the same seed, whatever tutorials that normalise
weights "to keep the loss scale" suggest. The scale only matters with
``criterion__normalization='mean'`` (the tutorials'
``torch.mean(weights * loss)``), where it acts like a learning-rate factor.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator

from ._compat import Interval, StrOptions

__all__ = [
    "SCHEME_NAMES",
    "Deferred",
    "EffectiveNumber",
    "InversePower",
    "PerBatch",
    "WeightingScheme",
    "class_counts",
    "resolve_class_weight",
    "resolve_from_counts",
    "resolve_label_weight",
]


def class_counts(y, classes):
    """Count the samples of each class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels, each of which must be in ``classes``.
    classes : ndarray of shape (n_classes,)
        Sorted unique labels.

    Returns
    -------
    counts : ndarray of shape (n_classes,), dtype=int64
        ``counts[k]`` is the number of samples of ``classes[k]`` in ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> class_counts(np.array(["b", "a", "b"]), np.array(["a", "b", "c"]))
    array([1, 2, 0])
    """
    y = np.asarray(y)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    if not np.array_equal(np.asarray(classes)[idx], y):
        unknown = sorted(set(y.tolist()) - set(np.asarray(classes).tolist()), key=str)
        raise ValueError(f"y contains labels that are not in classes: {unknown}.")
    return np.bincount(idx, minlength=len(classes)).astype(np.int64)


# --------------------------------------------------------------------------
# Count-based schemes: counts of the present classes (all > 0) -> weights.
# --------------------------------------------------------------------------


def _balanced(counts):
    """``'balanced'``: :math:`n / (K n_c)`, scikit-learn's ``compute_class_weight``.

    King & Zeng, "Logistic Regression in Rare Events Data", Political
    Analysis 2001; scikit-learn's ``class_weight='balanced'``. Each class
    then carries the same total weight :math:`n / K`.

    Examples
    --------
    >>> import numpy as np
    >>> _balanced(np.array([6, 2]))
    array([0.66666667, 2.        ])
    """
    # scikit-learn's compute_class_weight, operation for operation, so the
    # result is bit-identical: n_samples / (n_classes * bincount(y)).
    return counts.sum() / (len(counts) * counts.astype(np.float64))


def _inverse(counts):
    """``'inverse'``: :math:`1 / n_c`, inverse class frequency.

    The weighting of the PyTorch forum and tutorial recipes
    (``weight = 1 / class_count``); ``'balanced'`` times :math:`K / n`.

    Examples
    --------
    >>> import numpy as np
    >>> _inverse(np.array([4, 1]))
    array([0.25, 1.  ])
    """
    return 1.0 / counts.astype(np.float64)


def _inverse_sqrt(counts):
    """``'inverse_sqrt'``: :math:`1 / \\sqrt{n_c}`, a milder inverse frequency.

    Square-root re-weighting as in Mahajan et al., "Exploring the Limits of
    Weakly Supervised Pretraining", ECCV 2018, and Mikolov et al. 2013's
    sub-sampling of frequent words.

    Examples
    --------
    >>> import numpy as np
    >>> _inverse_sqrt(np.array([4, 1]))
    array([0.5, 1. ])
    """
    return 1.0 / np.sqrt(counts.astype(np.float64))


def _median_frequency(counts):
    """``'median_frequency'``: :math:`\\mathrm{median}(n) / n_c`.

    Median frequency balancing, Eigen & Fergus, "Predicting Depth, Surface
    Normals and Semantic Labels with a Common Multi-Scale Convolutional
    Architecture", ICCV 2015 (the median over the classes present).

    Examples
    --------
    >>> import numpy as np
    >>> _median_frequency(np.array([9, 3, 1]))
    array([0.33333333, 1.        , 3.        ])
    """
    counts = counts.astype(np.float64)
    return np.median(counts) / counts


_NAMED = {
    "balanced": _balanced,
    "inverse": _inverse,
    "inverse_sqrt": _inverse_sqrt,
    "median_frequency": _median_frequency,
}

#: The scheme names ``class_weight`` accepts as a string.
SCHEME_NAMES = tuple(sorted(_NAMED))


_NON_NEGATIVE = Interval(Real, 0, None, closed="left")


class WeightingScheme(BaseEstimator):
    """Base class of the parameterised weighting schemes.

    A scheme is a small, printable, cloneable object (a scikit-learn
    ``BaseEstimator``, so ``GridSearchCV`` shows it readably and can search
    its parameters as ``class_weight__<param>``). Subclasses implement
    :meth:`weights_from_counts` and declare their parameters'
    ``_parameter_constraints`` as scikit-learn estimators do; calling a
    scheme validates them first.

    Examples
    --------
    A scheme that weighs each class by the inverse of its count's logarithm:

    >>> import numpy as np
    >>> class InverseLog(WeightingScheme):
    ...     def __init__(self, offset=1.0):
    ...         self.offset = offset
    ...
    ...     def weights_from_counts(self, counts):
    ...         return 1.0 / np.log(counts + self.offset)
    >>> InverseLog()
    InverseLog(offset=1.0)
    >>> resolve_class_weight(InverseLog(), np.array([0, 0, 0, 1]), np.array([0, 1]))
    array([0.72134752, 1.44269504])
    """

    def weights_from_counts(self, counts):  # pragma: no cover - abstract
        """Map the counts of the present classes (all > 0) to weights."""
        raise NotImplementedError

    _parameter_constraints: dict = {}

    def __call__(self, counts):
        self._validate_params()
        return self.weights_from_counts(np.asarray(counts))

    def __repr__(self, N_CHAR_MAX=700):
        # Every parameter, defaults included: in a cv_results_ table
        # ``EffectiveNumber(beta=0.999)`` reads better than ``EffectiveNumber()``.
        with config_context(print_changed_only=False):
            return super().__repr__(N_CHAR_MAX)


#: What PerBatch and Deferred may wrap (nesting them is refused when called).
_INNER_SCHEME = [StrOptions(set(SCHEME_NAMES)), WeightingScheme]


class InversePower(WeightingScheme):
    r"""Smoothed inverse-frequency weights raised to a power.

    .. math:: w_c = \left(\frac{1 + s}{n_c + s}\right)^{p}

    ``power=1, smoothing=0`` is plain inverse frequency :math:`1/n_c`,
    ``power=0.5`` its square root, and ``smoothing > 0`` the smoothed inverse
    frequency of the tutorials. With ``normalize=True`` the weights are
    rescaled to sum to 1 (which, under the default weighted-mean loss, trains
    exactly like the unnormalised weights).

    It generalises the ``1 / class_count`` of the PyTorch forum recipes and
    the square-root re-weighting of Mahajan et al., "Exploring the Limits of
    Weakly Supervised Pretraining", ECCV 2018; the smoothing :math:`s` keeps
    a class with one or two samples from dominating the loss.

    Parameters
    ----------
    power : float, default=1.0
        Exponent :math:`p`, non-negative.
    smoothing : float, default=0.0
        Additive smoothing :math:`s`, non-negative.
    normalize : bool, default=False
        Rescale the weights of the present classes to sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> InversePower(power=1.0, smoothing=1.0)(np.array([1, 3]))
    array([1. , 0.5])
    """

    _parameter_constraints = {
        "power": [_NON_NEGATIVE],
        "smoothing": [_NON_NEGATIVE],
        "normalize": ["boolean"],
    }

    def __init__(self, power=1.0, smoothing=0.0, normalize=False):
        self.power = power
        self.smoothing = smoothing
        self.normalize = normalize

    def weights_from_counts(self, counts):
        s = float(self.smoothing)
        w = ((1.0 + s) / (counts.astype(np.float64) + s)) ** float(self.power)
        return w / w.sum() if self.normalize else w


class EffectiveNumber(WeightingScheme):
    r"""Class-balanced weights from the effective number of samples.

    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
    CVPR 2019:

    .. math:: w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}}

    rescaled so the weights of the present classes sum to their number.
    ``beta -> 0`` gives uniform weights, ``beta -> 1`` inverse frequency.

    Parameters
    ----------
    beta : float, default=0.999
        Hyperparameter in ``[0, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> EffectiveNumber(beta=0.9)(np.array([10, 1])).round(4)
    array([0.2662, 1.7338])
    """

    _parameter_constraints = {"beta": [Interval(Real, 0, 1, closed="left")]}

    def __init__(self, beta=0.999):
        self.beta = beta

    def weights_from_counts(self, counts):
        beta = self.beta
        w = (1.0 - beta) / (1.0 - np.power(float(beta), counts.astype(np.float64)))
        return w * (len(counts) / w.sum())


class PerBatch(WeightingScheme):
    """Recompute a scheme's weights from the labels of each mini-batch.

    During training, every batch gets weights resolved from its own label
    counts. A class absent from a batch has no sample there, so it gets no
    weight and can produce neither ``inf`` nor ``NaN``. ``class_weight_``
    holds the scheme resolved on the whole training ``y``.

    Recomputing class weights from each batch's labels is the recipe of,
    e.g., the generalised Dice loss (Sudre et al., "Generalised Dice Overlap
    as a Deep Learning Loss Function for Highly Unbalanced Segmentations",
    DLMIA 2017) and of many segmentation tutorials.

    Note that under the default weighted-mean normalisation a batch's loss
    is invariant to rescaling its weights, so only the *relative* weights of
    the classes in each batch matter.

    Parameters
    ----------
    scheme : str or WeightingScheme, default="balanced"
        The scheme to apply to every batch.

    Examples
    --------
    >>> import numpy as np
    >>> PerBatch("inverse")(np.array([2, 4]))
    array([0.5 , 0.25])
    """

    _parameter_constraints = {"scheme": _INNER_SCHEME}

    def __init__(self, scheme="balanced"):
        self.scheme = scheme

    def weights_from_counts(self, counts):
        return _inner_scheme(self, self.scheme)(counts)


class Deferred(WeightingScheme):
    """Deferred re-weighting (DRW): uniform weights first, then a scheme.

    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
    Margin Loss", NeurIPS 2019: train with uniform class weights for the
    first ``start_epoch`` epochs, then switch to ``scheme``. ``class_weight_``
    holds the weights used after the switch.

    Parameters
    ----------
    scheme : str or WeightingScheme, default=EffectiveNumber(0.999)
        The scheme used from epoch ``start_epoch`` on (epochs count from 0).
        ``None`` means ``EffectiveNumber(beta=0.999)``, the paper's choice.
    start_epoch : int, default=10
        The first epoch (0-based) that uses the scheme. Epochs are counted
        over the network's whole training: with ``warm_start=True`` a second
        ``fit`` goes on from the first fit's epoch count, as one longer fit
        would.

    Examples
    --------
    >>> import numpy as np
    >>> Deferred("inverse", start_epoch=3)(np.array([1, 4]))
    array([1.  , 0.25])
    """

    _parameter_constraints = {
        "scheme": [None, *_INNER_SCHEME],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, scheme=None, start_epoch=10):
        self.scheme = scheme
        self.start_epoch = start_epoch

    def weights_from_counts(self, counts):
        scheme = EffectiveNumber(0.999) if self.scheme is None else self.scheme
        return _inner_scheme(self, scheme)(counts)


def _inner_scheme(outer, scheme):
    """The scheme wrapped by PerBatch / Deferred (a name or a plain scheme)."""
    if isinstance(scheme, PerBatch | Deferred):
        raise ValueError(
            f"{type(outer).__name__} cannot wrap {type(scheme).__name__}; pass a "
            f"scheme name from {list(SCHEME_NAMES)} or a scheme such as "
            "EffectiveNumber or InversePower."
        )
    return _count_scheme(scheme)


def _count_scheme(spec):
    """Return the count -> weight function for a name or scheme object."""
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(
                f"Unknown class_weight scheme {spec!r}. Valid names are "
                f"{list(SCHEME_NAMES)}, or pass a dict, a WeightingScheme or a "
                "callable."
            )
        return _NAMED[spec]
    if isinstance(spec, WeightingScheme):
        return spec
    raise TypeError(
        f"A scheme must be one of {list(SCHEME_NAMES)} or a WeightingScheme, "
        f"got {spec!r}."
    )


def scheme_weights(fn, counts):
    """Apply a count-based scheme to the present classes; absent ones get 1."""
    weights = np.ones(len(counts), dtype=np.float64)
    present = counts > 0
    weights[present] = fn(counts[present])
    return weights


def _from_dict(spec, classes, what="class_weight"):
    known = set(np.asarray(classes).tolist())
    unknown = [k for k in spec if k not in known]
    if unknown:
        raise ValueError(
            f"{what} has keys that are not classes: {unknown!r}. The classes "
            f"are {np.asarray(classes).tolist()!r}."
        )
    weights = np.ones(len(classes), dtype=np.float64)
    for k, label in enumerate(np.asarray(classes).tolist()):
        if label in spec:
            value = spec[label]
            if not isinstance(value, Real | np.number) or isinstance(value, bool):
                raise TypeError(
                    f"{what}[{label!r}] must be a real number, got {value!r}."
                )
            weights[k] = float(value)
    return weights


def resolve_class_weight(class_weight, y, classes, *, name="class_weight"):
    """Turn any accepted ``class_weight`` into one array aligned with ``classes``.

    Parameters
    ----------
    class_weight : None, str, dict, WeightingScheme or callable
        - ``None``: every class weighs 1.
        - a name from :data:`SCHEME_NAMES`:

          * ``'balanced'``: :math:`n / (K n_c)`, scikit-learn's formula, bit
            for bit (:math:`K` is the number of classes present in ``y``);
          * ``'inverse'``: :math:`1 / n_c`;
          * ``'inverse_sqrt'``: :math:`1 / \\sqrt{n_c}`;
          * ``'median_frequency'``: :math:`\\mathrm{median}(n) / n_c`.
        - a dict ``{label: weight}`` keyed by the original labels; labels it
          does not mention weigh 1.
        - a :class:`WeightingScheme` such as :class:`EffectiveNumber`.
        - a callable ``f(y) -> {label: weight}`` called with the training
          labels.
    y : array-like of shape (n_samples,)
        The training labels, in their original form.
    classes : ndarray of shape (n_classes,)
        Sorted unique labels (the estimator's ``classes_``).
    name : str, default="class_weight"
        The parameter the spec came from, named in error messages (the
        estimator's ``sampler`` goes through this resolver too).

    Returns
    -------
    weights : ndarray of shape (n_classes,), dtype=float64
        Finite, non-negative, not all zero.

    Raises
    ------
    ValueError
        For an unknown name, a dict key that is not a class, or a negative,
        NaN, infinite or all-zero result.
    TypeError
        For a value of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array(["cat", "cat", "cat", "dog"])
    >>> resolve_class_weight("balanced", y, np.array(["cat", "dog"]))
    array([0.66666667, 2.        ])
    >>> resolve_class_weight({"dog": 5}, y, np.array(["cat", "dog"]))
    array([1., 5.])
    """
    classes = np.asarray(classes)
    return resolve_from_counts(
        class_weight, class_counts(y, classes), classes, y, name=name
    )


def resolve_from_counts(class_weight, counts, classes, y, *, name="class_weight"):
    """:func:`resolve_class_weight` for labels already counted.

    The estimator encodes its labels once and counts them from the encoded
    form; this resolves a spec from those counts without scanning ``y``
    again (``y`` is only passed to a callable spec).

    Parameters
    ----------
    class_weight : None, str, dict, WeightingScheme or callable
        As in :func:`resolve_class_weight`.
    counts : ndarray of shape (n_classes,)
        Samples per class of ``classes`` in ``y``.
    classes : ndarray of shape (n_classes,)
    y : array-like of shape (n_samples,)
        The labels in their original form.
    name : str, default="class_weight"
        The parameter named in error messages.

    Returns
    -------
    weights : ndarray of shape (n_classes,), dtype=float64

    Examples
    --------
    >>> import numpy as np
    >>> resolve_from_counts("balanced", np.array([3, 1]), np.array([0, 1]), None)
    array([0.66666667, 2.        ])
    """
    classes = np.asarray(classes)
    counts = np.asarray(counts)
    if class_weight is None:
        weights = np.ones(len(classes), dtype=np.float64)
    elif isinstance(class_weight, str | WeightingScheme):
        weights = scheme_weights(_count_scheme(class_weight), counts)
    elif isinstance(class_weight, dict):
        weights = _from_dict(class_weight, classes, what=name)
    elif callable(class_weight):
        spec = class_weight(np.asarray(y))
        if not isinstance(spec, dict):
            raise TypeError(
                f"A callable {name} must return a dict {{label: weight}}, "
                f"got {type(spec).__name__}."
            )
        weights = _from_dict(spec, classes, what=f"the dict returned by {name}")
    else:
        raise TypeError(
            f"{name} must be None, one of "
            f"{list(SCHEME_NAMES)}, a dict {{label: weight}}, a WeightingScheme "
            f"or a callable, got {type(class_weight).__name__}."
        )
    _check_weights(weights, classes, name)
    return weights


def _check_weights(weights, classes, name):
    labels = np.asarray(classes).tolist()
    bad = [labels[k] for k in np.flatnonzero(~np.isfinite(weights))]
    if bad:
        raise ValueError(f"{name} is not finite (NaN or inf) for classes {bad}.")
    neg = [labels[k] for k in np.flatnonzero(weights < 0)]
    if neg:
        raise ValueError(f"{name} is negative for classes {neg}.")
    if not np.any(weights > 0):
        raise ValueError(
            f"{name} is zero for every class; at least one must be positive."
        )


# --------------------------------------------------------------------------
# Multi-label targets: one binary problem per label.
# --------------------------------------------------------------------------

_BINARY = np.array([0, 1])


def label_counts(Y):
    """Negative and positive entries of each label of an indicator matrix.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_labels)
        A 0/1 indicator matrix.

    Returns
    -------
    counts : ndarray of shape (n_labels, 2), dtype=int64
        ``counts[j] = [n_negative_j, n_positive_j]``.

    Examples
    --------
    >>> label_counts([[1, 0], [1, 1], [0, 0]])
    array([[1, 2],
           [2, 1]])
    """
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(
            f"A multi-label y must be 2-D (n_samples, n_labels), got shape {Y.shape}."
        )
    values = np.unique(Y)
    if not np.isin(values, _BINARY).all():
        raise ValueError(
            "A multi-label y must be a 0/1 indicator matrix, but it holds the "
            f"values {values.tolist()[:10]!r}."
        )
    n_pos = np.count_nonzero(Y, axis=0).astype(np.int64)
    return np.column_stack([len(Y) - n_pos, n_pos])


def resolve_label_weight(class_weight, Y, *, name="class_weight"):
    r"""Per-label weights for a multi-label indicator matrix ``Y``.

    Every label is a binary problem of its own (negative 0, positive 1), as
    in scikit-learn's multi-output ``class_weight``. The result holds, for
    each label :math:`j`, the weight of a negative and of a positive entry;
    :class:`~skweighted.losses.MultiLabelBCELoss` multiplies each entry's
    binary cross-entropy by it.

    - ``None``: every entry weighs 1.
    - a scheme name from :data:`SCHEME_NAMES` or a :class:`WeightingScheme`
      (e.g. :class:`EffectiveNumber`): the scheme applied to the label's
      counts :math:`[n^-_j, n^+_j]`, divided by the negative's weight, so
      the negative weighs 1 and the positive the ratio, PyTorch's
      ``pos_weight``. ``'balanced'`` (and ``'inverse'``) give
      :math:`n^-_j / n^+_j`, ``'inverse_sqrt'``
      :math:`\sqrt{n^-_j / n^+_j}`, ``EffectiveNumber(beta)``
      :math:`(1 - \beta^{n^-_j}) / (1 - \beta^{n^+_j})`.
    - a list of ``n_labels`` dicts ``{0: w_negative, 1: w_positive}``, as
      scikit-learn's multi-output ``class_weight``; a key a dict does not
      mention weighs 1.
    - a callable ``f(Y) -> list of dicts``.

    A label with no positive entry in ``Y`` (a rare label missing from a
    cross-validation fold), or no negative one, has no defined ratio: under
    a scheme both of its entries weigh 1 and a ``UserWarning`` names it. The
    network then only learns to predict that label's one value.

    Parameters
    ----------
    class_weight : None, str, WeightingScheme, list of dict or callable
        The spec.
    Y : array-like of shape (n_samples, n_labels)
        The training indicator matrix (0/1).
    name : str, default="class_weight"
        The parameter named in error messages.

    Returns
    -------
    weights : ndarray of shape (n_labels, 2), dtype=float64
        ``weights[j, 0]`` for a negative entry of label ``j``,
        ``weights[j, 1]`` for a positive one.

    Raises
    ------
    ValueError
        For a ``Y`` that is not a 0/1 matrix, a list of the wrong length, a
        dict key other than 0 and 1, a :class:`PerBatch` or :class:`Deferred`
        scheme, or a negative, non-finite or all-zero weight of a label.
    TypeError
        For a value of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1, 0], [0, 0], [0, 1], [0, 1], [0, 0]])
    >>> resolve_label_weight("balanced", Y)  # pos_weight = n_neg / n_pos
    array([[1. , 4. ],
           [1. , 1.5]])
    >>> resolve_label_weight([{1: 3.0}, {0: 0.5, 1: 2.0}], Y)
    array([[1. , 3. ],
           [0.5, 2. ]])
    """
    counts = label_counts(Y)
    n_labels = len(counts)
    if class_weight is None:
        weights = np.ones((n_labels, 2))
    elif isinstance(class_weight, str | WeightingScheme):
        weights = _label_scheme(class_weight, counts, name)
    elif isinstance(class_weight, dict):
        raise ValueError(
            f"For a multi-label y, {name} takes a list of {n_labels} dicts "
            "{0: weight of a negative, 1: weight of a positive}, one per label, "
            "or a scheme name such as 'balanced'; got one dict."
        )
    elif isinstance(class_weight, list | tuple) or callable(class_weight):
        spec = class_weight
        what = name
        if callable(class_weight):
            spec = class_weight(np.array(Y))
            what = f"the list returned by {name}"
        weights = _label_dicts(spec, n_labels, what)
    else:
        raise TypeError(
            f"For a multi-label y, {name} must be None, one of "
            f"{list(SCHEME_NAMES)}, a WeightingScheme, a list of dicts or a "
            f"callable, got {type(class_weight).__name__}."
        )
    for j in range(n_labels):
        _check_weights(weights[j], _BINARY, f"{name} of label {j}")
    return weights


def _label_scheme(spec, counts, name):
    if isinstance(spec, PerBatch | Deferred):
        raise ValueError(
            f"{name}={spec!r}: PerBatch and Deferred are not supported for a "
            "multi-label y; use a scheme name or a scheme such as "
            "EffectiveNumber."
        )
    fn = _count_scheme(spec)
    weights = np.ones((len(counts), 2))
    defined = (counts > 0).all(axis=1)
    for j in np.flatnonzero(defined):
        w = np.asarray(fn(counts[j]), dtype=np.float64)
        weights[j] = w / w[0]
    no_pos = np.flatnonzero(counts[:, 1] == 0).tolist()
    no_neg = np.flatnonzero(counts[:, 0] == 0).tolist()
    if no_pos or no_neg:
        parts = []
        if no_pos:
            parts.append(f"labels {no_pos} have no positive example")
        if no_neg:
            parts.append(f"labels {no_neg} have no negative example")
        warnings.warn(
            f"{name}={spec!r}: in this y, {' and '.join(parts)}, so their "
            "weights are undefined; both entries of such a label weigh 1, and "
            "the network can only learn the one value it sees. In "
            "cross-validation, use splits that keep every label.",
            UserWarning,
            stacklevel=3,
        )
    return weights


def _label_dicts(spec, n_labels, what):
    if not isinstance(spec, list | tuple) or not all(isinstance(d, dict) for d in spec):
        raise TypeError(
            f"{what} must be a list of dicts {{0: weight, 1: weight}}, one per "
            f"label, got {spec!r}."
        )
    if len(spec) != n_labels:
        raise ValueError(
            f"{what} has {len(spec)} dicts but y has {n_labels} labels; give "
            "one dict {0: weight, 1: weight} per label."
        )
    return np.array(
        [_from_dict(d, _BINARY, what=f"{what}[{j}]") for j, d in enumerate(spec)]
    )

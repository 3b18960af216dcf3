"""The accepted forms of ``X``: how each is recognised, validated and made torch.

Four forms, one interface (:class:`Form`), picked by :func:`form_of`:

============  ===========================================  =====================
form          what ``X`` is                                a sample is
============  ===========================================  =====================
``table``     a 2-D array-like or DataFrame                a row of features
``array``     an N-D array (N >= 3) or tensor              an array, e.g. C×H×W
``dict``      a dict (or skorch ``SliceDict``) of arrays   one row of each array
``dataset``   a ``torch.utils.data.Dataset`` or skorch     one item
              ``SliceDataset``
============  ===========================================  =====================

The dtype rule, the same for every in-memory form: floating arrays become
float32 (once, without a copy when they already are); integer and boolean
arrays keep their dtype (``int64`` token ids for ``nn.Embedding``, ``uint8``
images that the module scales itself), except ``uint16``/``uint32``/``uint64``,
which are widened to a signed type torch fully supports; object arrays of
numbers become float32. DataFrames are feature tables and become float32.

Each form validates at fit (:meth:`Form.fit`: lengths, at least one sample,
finite floats, ragged or object arrays, dict keys against the module's
``forward``; it records the per-sample shape) and at predict
(:meth:`Form.check`: the same, plus the recorded per-sample shape). Nothing
here modifies or copies more of the caller's data than the dtype rule needs.
:func:`to_torch` turns validated in-memory data into tensors that share its
memory; :class:`LabelledDataset` serves a user ``Dataset`` with the encoded
labels (and sample weights) of a fit.
"""

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._compat import check_sample_weight, validate_data

__all__ = [
    "FORMS",
    "Fitted",
    "LabelledDataset",
    "form_of",
    "n_samples",
    "tensor",
    "to_torch",
    "validate_fit",
    "validate_predict",
    "validate_sample_weight",
]

#: dtypes kept as they are (besides float32)
KEPT_DTYPES = tuple(
    np.dtype(t)
    for t in (np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.float32)
)
#: unsigned types torch supports only partly -> the signed type that holds them
_WIDENED = {
    np.dtype(np.uint16): np.int32,
    np.dtype(np.uint32): np.int64,
    np.dtype(np.uint64): np.int64,
}
#: the key under which the net passes sample weights next to ``X``
RESERVED_KEYS = frozenset({"sample_weight"})


def _slice_dataset_type():
    from skorch.helper import SliceDataset

    return SliceDataset


def is_dataset(X):
    """Whether ``X`` is a torch ``Dataset`` or a skorch ``SliceDataset``."""
    return isinstance(X, torch.utils.data.Dataset | _slice_dataset_type())


# -- the dtype rule ------------------------------------------------------------
def _target_dtype(dtype, name):
    """The dtype an array of ``dtype`` is trained with (see the module doc)."""
    if dtype in KEPT_DTYPES:
        return dtype
    if dtype in _WIDENED:
        return np.dtype(_WIDENED[dtype])
    if dtype.kind in "fO":  # float16/64 and object arrays of numbers
        return np.dtype(np.float32)
    raise TypeError(
        f"{name} has dtype {dtype}; expected a numeric array (float, integer or bool)."
    )


def _ragged_error(name):
    return ValueError(
        f"{name} is a ragged or object array: its samples are sequences of "
        "different lengths or Python objects, which cannot be stacked into one "
        "tensor. Pad them to one shape (e.g. token ids padded with 0 and a "
        "length mask), or pass a torch.utils.data.Dataset whose collate_fn "
        "(iterator_train__collate_fn) batches them."
    )


def _check_not_ragged(X, name):
    """An object array whose elements are sequences is ragged."""
    sequences = (list, tuple, np.ndarray, torch.Tensor)
    if any(isinstance(v, sequences) for v in X.flat[:100]):
        raise _ragged_error(name)


def _as_array(X, name="X"):
    """``X`` as an ndarray with the trained dtype; no copy when none is needed."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()  # a view for CPU tensors
    elif not isinstance(X, np.ndarray):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.VisibleDeprecationWarning)
            try:
                X = np.asarray(X)
            except ValueError:  # "inhomogeneous shape": a ragged nested list
                raise _ragged_error(name) from None
    if X.dtype == object:
        _check_not_ragged(X, name)
        try:
            return X.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name} is an object array that is not numeric ({exc}); "
                "convert it to numbers first."
            ) from None
    dtype = _target_dtype(X.dtype, name)
    return X if X.dtype == dtype else X.astype(dtype)


def _check_array(X, name, min_ndim):
    """Shape and finiteness of an in-memory array (already converted)."""
    if X.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions (samples first), "
            f"got shape {X.shape}."
        )
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) in {name} while a "
            "minimum of 1 is required."
        )
    if 0 in X.shape[1:]:
        raise ValueError(f"{name} has an empty per-sample shape {X.shape[1:]}.")
    if X.dtype.kind == "f":
        assert_all_finite(X, input_name=name)
    return X


def _shape_error(name, got, expected):
    return ValueError(
        f"{name} has per-sample shape {tuple(got)}, but the estimator was fitted "
        f"on samples of shape {tuple(expected)} (sample_shape_). Reshape or "
        "resize the input to the shape seen in fit."
    )


def labels(y):
    """Labels as an ndarray, from arrays, tensors or a ``SliceDataset``."""
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    if is_dataset(y):
        return np.asarray([_scalar(y[i], i) for i in range(len(y))])
    return np.asarray(y) if isinstance(y, list | tuple) else y


def _scalar(label, i):
    if isinstance(label, torch.Tensor | np.ndarray):
        if np.prod(label.shape, dtype=int) != 1:
            raise ValueError(
                f"The label of item {i} has shape {tuple(label.shape)}; one "
                "label per sample is expected."
            )
        return label.item()
    return label


def validate_sample_weight(sample_weight, n):
    """``sample_weight`` checked against ``n`` samples: float32, or None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, torch.Tensor):
        sample_weight = sample_weight.detach().cpu().numpy()
    return check_sample_weight(sample_weight, np.empty((n, 0), dtype=np.float32))


# -- the forms -----------------------------------------------------------------
@dataclass(frozen=True)
class Fitted:
    """What :func:`validate_fit` returns.

    Attributes
    ----------
    X : ndarray, dict of ndarray, or Dataset
        The validated data (the caller's object when nothing had to change).
    y : ndarray
        The labels (read from the Dataset when ``y`` was None).
    form : str
        The form's name, kept by the estimator as ``input_form_``.
    sample_shape : tuple, dict or None
        The shape of one sample (``{key: shape}`` for a dict), kept as
        ``sample_shape_`` and checked at predict.
    """

    X: object
    y: np.ndarray
    form: str
    sample_shape: object


class Form:
    """One accepted form of ``X``.

    Subclasses implement :meth:`validate_fit` and :meth:`_check_in_memory`;
    both return ``X`` validated (converted by the dtype rule), never
    modifying the caller's.
    """

    name = ""

    def validate_fit(self, estimator, X, y, *, reset, module, multi_output=False):
        """Validate ``X`` of this form and ``y`` for fit; ``(X, y, sample_shape)``."""
        raise NotImplementedError

    def validate_predict(self, estimator, X, sample_shape):
        """Validate ``X`` for predict with a model fitted on this form.

        A Dataset is always accepted (its samples are checked as it is
        read); in-memory ``X`` goes to :meth:`_check_in_memory`, where the
        fitted form says which forms it takes.
        """
        form = form_of(X)  # a clear TypeError for what is no form at all
        if form.name == "dataset":
            DatasetForm._check_len(X)
            return X
        return self._check_in_memory(estimator, X, sample_shape)

    def _check_in_memory(self, estimator, X, sample_shape):
        """Validate in-memory ``X`` against the fitted ``sample_shape``."""
        raise NotImplementedError


def _check_y(X_len, y, multi_output):
    if y is None:
        raise ValueError(
            "y is None; fit needs labels (only a torch Dataset can carry its own)."
        )
    y = np.asarray(labels(y))
    if not multi_output:
        y = column_or_1d(y, warn=True)
    check_consistent_length(np.empty((X_len, 0)), y)
    return y


class Table(Form):
    """A 2-D table: scikit-learn's ``validate_data`` (feature names included)."""

    name = "table"

    @staticmethod
    def _dtype(X):
        if hasattr(X, "iloc") or not hasattr(X, "dtype"):
            return np.float32 if hasattr(X, "iloc") else [np.float32, *KEPT_DTYPES]
        if X.dtype in _WIDENED:
            return _WIDENED[X.dtype]
        return [np.float32, *KEPT_DTYPES]

    def validate_fit(self, estimator, X, y, *, reset, module, multi_output=False):
        if isinstance(X, torch.Tensor):
            X = _as_array(X)
        y = labels(y)
        dtype = self._dtype(X)
        X, y = validate_data(
            estimator, X, y, dtype=dtype, reset=reset, multi_output=multi_output
        )
        return X, y, (X.shape[1],)

    def _check_in_memory(self, estimator, X, sample_shape):
        if isinstance(X, torch.Tensor):
            X = _as_array(X)
        return validate_data(estimator, X, dtype=self._dtype(X), reset=False)


class Array(Form):
    """An N-D numeric array (N >= 3) or tensor, sliced along the first axis."""

    name = "array"

    def validate_fit(self, estimator, X, y, *, reset, module, multi_output=False):
        X = _check_array(_as_array(X), "X", 3)
        return X, _check_y(len(X), y, multi_output), X.shape[1:]

    def _check_in_memory(self, estimator, X, sample_shape):
        # 2-D X too: e.g. token ids after a fit on a Dataset
        if isinstance(X, Mapping) and sample_shape is not None:
            raise ValueError(
                f"The estimator was fitted on samples of shape "
                f"{tuple(sample_shape)}, not on a dict; got a dict X."
            )
        if isinstance(X, Mapping):
            return FORMS["dict"]._check_in_memory(estimator, X, None)
        X = _check_array(_as_array(X), "X", 2)
        if sample_shape is not None and X.shape[1:] != tuple(sample_shape):
            raise _shape_error("X", X.shape[1:], sample_shape)
        return X


def forward_parameters(module):
    """``(accepted, required, takes_any)`` keyword names of ``module.forward``."""
    if module is None:
        return set(), set(), False
    forward = module.forward
    try:
        params = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return set(), set(), True
    if isinstance(module, type):  # unbound: drop ``self``
        params = params[1:]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    accepted = {p.name for p in named if p.kind is not p.POSITIONAL_ONLY}
    required = {p.name for p in named if p.default is p.empty}
    return accepted, required, takes_any


def check_keys(keys, module):
    """The keys of a dict ``X`` against the keyword arguments of ``forward``."""
    keys = list(keys)
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise TypeError(f"The keys of a dict X must be strings; got {bad[0]!r}.")
    reserved = sorted(RESERVED_KEYS & set(keys))
    if reserved:
        raise ValueError(
            f"X has the key {reserved[0]!r}, which is reserved: pass sample "
            "weights as fit(X, y, sample_weight=...)."
        )
    if module is None:
        raise TypeError(
            f"X is a dict with keys {keys}, which the default network cannot "
            "take: pass module= a torch.nn.Module whose forward takes these "
            "names as keyword arguments."
        )
    accepted, required, takes_any = forward_parameters(module)
    name = getattr(module, "__name__", type(module).__name__)
    unknown = [k for k in keys if k not in accepted]
    if unknown and not takes_any:
        raise ValueError(
            f"X has key(s) {unknown} that {name}.forward does not accept; its "
            f"keyword arguments are {sorted(accepted)}. The keys of a dict X are "
            "passed to forward by name."
        )
    missing = sorted(required - set(keys))
    if missing:
        raise ValueError(
            f"{name}.forward requires the argument(s) {missing}, which X (a dict "
            f"with keys {keys}) does not provide."
        )


class Dict(Form):
    """A dict of arrays (skorch's ``SliceDict`` too), one per ``forward`` argument.

    Each value follows the dtype rule on its own (a float image and int64
    token ids can travel together); all share their first dimension.
    """

    name = "dict"

    @staticmethod
    def _convert(X):
        if not X:
            raise ValueError("X is an empty dict; it needs at least one array.")
        out = {}
        for key, value in X.items():
            out[key] = _check_array(_as_array(value, f"X[{key!r}]"), f"X[{key!r}]", 1)
        lengths = {k: len(v) for k, v in out.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "The arrays of a dict X must have the same number of samples "
                f"(first dimension); got {lengths}."
            )
        return out

    def validate_fit(self, estimator, X, y, *, reset, module, multi_output=False):
        check_keys(X.keys(), module)
        X = self._convert(X)
        n = len(next(iter(X.values())))
        shapes = {k: v.shape[1:] for k, v in X.items()}
        return X, _check_y(n, y, multi_output), shapes

    def _check_in_memory(self, estimator, X, sample_shape):
        if not isinstance(X, Mapping):
            raise ValueError(
                f"The estimator was fitted on a dict X with keys "
                f"{sorted(sample_shape)}; got {type(X).__name__}."
            )
        X = self._convert(X)
        if isinstance(sample_shape, dict):
            if set(X) != set(sample_shape):
                raise ValueError(
                    f"X has the keys {sorted(X)}, but the estimator was fitted on "
                    f"a dict with keys {sorted(sample_shape)}."
                )
            for key, shape in sample_shape.items():
                if X[key].shape[1:] != tuple(shape):
                    raise _shape_error(f"X[{key!r}]", X[key].shape[1:], shape)
        return X


def _x_part(item, x_only):
    """The ``X`` of one dataset item: ``item[0]`` of an ``(X, y)`` pair."""
    if x_only or not isinstance(item, tuple | list):
        return item
    return item[0]


def _shape_of(x):
    if isinstance(x, torch.Tensor | np.ndarray):
        return tuple(x.shape)
    if isinstance(x, Mapping):
        shapes = {k: _shape_of(v) for k, v in x.items()}
        return None if None in shapes.values() else shapes
    return None


class DatasetForm(Form):
    """A ``torch.utils.data.Dataset`` (items ``(X, y)`` or ``X``) or ``SliceDataset``.

    Batches come from a ``DataLoader`` over :class:`LabelledDataset`. With
    ``y=None`` the labels are read once from the items' second element.
    """

    name = "dataset"

    @staticmethod
    def _check_len(X):
        if isinstance(X, torch.utils.data.IterableDataset) or not hasattr(X, "__len__"):
            raise TypeError(
                f"X is a {type(X).__name__} without a length (an IterableDataset "
                "or a Dataset with no __len__); the estimator needs a map-style "
                "Dataset (__getitem__ and __len__), e.g. a TensorDataset."
            )
        if len(X) < 1:
            raise ValueError(
                "Found a Dataset with 0 sample(s) in X while a minimum of 1 is "
                "required."
            )

    @staticmethod
    def read_labels(X):
        """The labels of every item of ``X`` (its second element), once."""
        if isinstance(X, torch.utils.data.TensorDataset) and len(X.tensors) == 2:
            return X.tensors[1].detach().cpu().numpy()  # no per-item reads
        x_only = isinstance(X, _slice_dataset_type())
        labels = []
        for i in range(len(X)):
            item = X[i]
            if x_only or not isinstance(item, tuple | list) or len(item) < 2:
                raise ValueError(
                    f"y is None, so the labels are read from the Dataset X, but "
                    f"its item {i} is a {type(item).__name__}, not an (X, y) pair"
                    + (" (a SliceDataset yields only X)" if x_only else "")
                    + ". Pass the labels as y=, or make __getitem__ return (X, y)."
                )
            if item[1] is None:
                raise ValueError(
                    f"y is None, so the labels are read from the Dataset X, but "
                    f"its item {i} has the label None. Pass the labels as y=."
                )
            labels.append(_scalar(item[1], i))
        return np.asarray(labels)

    def validate_fit(self, estimator, X, y, *, reset, module, multi_output=False):
        self._check_len(X)
        if y is None:
            y = self.read_labels(X)
        y = _check_y(len(X), y, multi_output)
        x_only = isinstance(X, _slice_dataset_type())
        return X, y, _shape_of(_x_part(X[0], x_only))

    def _check_in_memory(self, estimator, X, sample_shape):
        # samples of the shape its items had: a dict's keys, or an array's
        form = FORMS["dict" if isinstance(sample_shape, dict) else "array"]
        return form._check_in_memory(estimator, X, sample_shape)


#: form name -> the form
FORMS = {form.name: form for form in (Table(), Array(), Dict(), DatasetForm())}


def form_of(X):
    """The :class:`Form` of ``X`` (a ragged nested list is a clear ValueError)."""
    if is_dataset(X):
        return FORMS["dataset"]
    # DataFrames and sparse matrices (a DOK matrix is also a dict)
    if hasattr(X, "iloc") or hasattr(X, "tocsr"):
        return FORMS["table"]
    if isinstance(X, Mapping):
        return FORMS["dict"]
    if isinstance(X, str | bytes) or X is None:
        raise TypeError(
            f"X must be an array-like, a DataFrame, a dict of arrays or a torch "
            f"Dataset; got {type(X).__name__}."
        )
    if isinstance(X, np.ndarray) and X.dtype == object:
        _check_not_ragged(X, "X")
    ndim = getattr(X, "ndim", None)
    if ndim is None:  # a list: its nesting depth decides
        ndim = _as_array(X).ndim
    return FORMS["array"] if ndim >= 3 else FORMS["table"]


def validate_fit(estimator, X, y, *, reset=True, module=None, multi_output=False):
    """Recognise and validate ``X`` (and ``y``) for ``fit``; a :class:`Fitted`.

    Parameters
    ----------
    estimator : BaseEstimator
        For the table form's ``validate_data`` (``n_features_in_``,
        ``feature_names_in_``).
    X : array-like, DataFrame, dict of arrays or Dataset
    y : array-like, tensor, SliceDataset or None
        None only when ``X`` is a Dataset whose items are ``(X, y)`` pairs.
    reset : bool, default=True
        Record the table's feature count and names (False for a warm fit).
    module : torch.nn.Module class or instance or None
        Whose ``forward`` the keys of a dict ``X`` are checked against.
    multi_output : bool, default=False
        Accept a 2-D ``y``.
    """
    form = form_of(X)
    X, y, shape = form.validate_fit(
        estimator, X, y, reset=reset, module=module, multi_output=multi_output
    )
    return Fitted(X=X, y=y, form=form.name, sample_shape=shape)


def validate_predict(estimator, X):
    """Validate ``X`` for predict against the fitted form and sample shape.

    The fitted form answers (:meth:`Form.validate_predict`): a model fitted
    on a table takes tables (scikit-learn's checks); one fitted on an
    array, a dict or a Dataset takes any form whose samples have the shape
    seen in fit; every model takes a Dataset.
    """
    fitted = FORMS[getattr(estimator, "input_form_", "table")]
    return fitted.validate_predict(
        estimator, X, getattr(estimator, "sample_shape_", None)
    )


def n_samples(X):
    """The number of samples of validated ``X`` of any form."""
    if isinstance(X, Mapping):
        return len(next(iter(X.values())))
    return len(X)


# -- to torch ------------------------------------------------------------------
def tensor(a, dtype=None):
    """``a`` as a tensor sharing its memory where it can (None stays None).

    A tensor is returned as it is; an array is converted to ``dtype`` (its
    own when None) and copied only when it must be: torch cannot share
    read-only memory, and a non-contiguous array or another dtype needs a copy.
    """
    if a is None or isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if not a.flags.writeable:
        a = a.copy()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def to_torch(X):
    """Validated in-memory ``X`` as a tensor, or a dict of tensors."""
    if isinstance(X, Mapping):
        return {k: tensor(v) for k, v in X.items()}
    return tensor(X)


def item_to_torch(x):
    """One dataset item's ``X`` as tensors, by the dtype rule."""
    if isinstance(x, Mapping):
        return {k: item_to_torch(v) for k, v in x.items()}
    if isinstance(x, np.ndarray | np.generic):
        x = np.asarray(x)
        return torch.from_numpy(np.array(x, dtype=_target_dtype(x.dtype, "X")))
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.float()
    return x


class LabelledDataset(torch.utils.data.Dataset):
    """A user's Dataset with one fit's encoded labels and sample weights.

    Item ``i`` is ``(X_i, y_i)``, or ``({"X": X_i, "sample_weight": w_i}, y_i)``
    with sample weights (the net's convention), where ``X_i`` is the first
    element of the user's item (the whole item for a ``SliceDataset`` or an
    item that is not a tuple), converted by the dtype rule. Without labels
    (predict) ``y_i`` is 0.

    Parameters
    ----------
    dataset : Dataset or SliceDataset
    y : LongTensor or None
    sample_weight : FloatTensor or None
    """

    def __init__(self, dataset, y=None, sample_weight=None):
        self.dataset = dataset
        self.y = y
        self.sample_weight = sample_weight
        self.x_only = isinstance(dataset, _slice_dataset_type())

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x = item_to_torch(_x_part(self.dataset[i], self.x_only))
        if self.sample_weight is not None:
            x = {"X": x, "sample_weight": self.sample_weight[i]}
        y = self.y[i] if self.y is not None else torch.zeros((), dtype=torch.long)
        return x, y

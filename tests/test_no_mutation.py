"""``fit``, ``predict``, ``predict_proba`` and ``score`` never modify their inputs.

X, y, sample_weight, a ``class_weight`` dict and DataFrames are
fingerprinted (type, dtype, shape, strides, flags and a hash of the
contents) before and after, for every accepted input type. Read-only arrays
(as joblib's memory-mapped CV folds are) must be accepted, not copied into
and written.
"""

import copy
import hashlib

import numpy as np
import pandas as pd
import pytest
from conftest import ONE_EPOCH, make_imbalanced, read_only

from skweighted import WeightedNeuralNetClassifier

_X, _Y = make_imbalanced(None, [0, 1, 2], 48, n_features=4, n_informative=3)
_X, _Y = (
    _X.astype(np.float64),
    _Y.astype(np.int64),
)  # the plain types; each case converts
_SW = np.linspace(0.5, 2.0, 48)


def fingerprint(obj):
    """Everything about ``obj`` that a mutation could change."""
    if isinstance(obj, np.ndarray):
        contents = obj.tobytes() if obj.dtype != object else repr(obj.tolist()).encode()
        return (
            "ndarray",
            obj.dtype.str,
            obj.shape,
            obj.strides,
            obj.flags.writeable,
            obj.flags.c_contiguous,
            hashlib.sha256(contents).hexdigest(),
        )
    if isinstance(obj, pd.DataFrame | pd.Series):
        return (
            type(obj).__name__,
            repr(obj.dtypes),
            obj.shape,
            list(obj.index),
            list(obj.columns) if isinstance(obj, pd.DataFrame) else [obj.name],
            hashlib.sha256(
                pd.util.hash_pandas_object(obj, index=True).values.tobytes()
            ).hexdigest(),
        )
    # lists, dicts, None: their repr and a deep copy (compared with ==)
    return ("py", repr(obj), copy.deepcopy(obj))


X_TYPES = {
    "float64": lambda: _X.copy(),
    "float32": lambda: _X.astype(np.float32),  # no conversion copy is made
    "float32-fortran": lambda: np.asfortranarray(_X.astype(np.float32)),
    "int64": lambda: (_X * 10).astype(np.int64),
    "readonly-float32": lambda: read_only(_X.astype(np.float32)),
    "list": lambda: _X.tolist(),
    "dataframe": lambda: pd.DataFrame(_X, columns=list("abcd")),
    "dataframe-mixed": lambda: pd.DataFrame(
        {"a": _X[:, 0], "b": (_X[:, 1] * 10).astype(int), "c": _X[:, 2], "d": 1.0}
    ),
}
Y_TYPES = {
    "int": lambda: _Y.copy(),
    "str-object": lambda: np.array(["x", "y", "z"], dtype=object)[_Y],
    "str-unicode": lambda: np.array(["x", "y", "z"])[_Y],
    "readonly-int": lambda: read_only(_Y),
    "list": lambda: _Y.tolist(),
    "series": lambda: pd.Series(np.array(["x", "y", "z"], dtype=object)[_Y]),
    "categorical": lambda: pd.Series(pd.Categorical(np.array(["x", "y", "z"])[_Y])),
}
SW_TYPES = {
    "none": lambda: None,
    "float64": lambda: _SW.copy(),
    "float32": lambda: _SW.astype(np.float32),  # no conversion copy is made
    "readonly": lambda: read_only(_SW),
    "list": lambda: _SW.tolist(),
    "series": lambda: pd.Series(_SW),
}

#: Every X, y and sample_weight type at least once, without the full product,
#: plus the no-copy pairs: float32 X with float32 weights, pandas throughout.
CASES = [
    (x, list(Y_TYPES)[k % 7], list(SW_TYPES)[k % 6]) for k, x in enumerate(X_TYPES)
] + [("float32", "str-unicode", "float32"), ("dataframe", "series", "series")]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("x_type", "y_type", "sw_type"), CASES)
def test_inputs_are_never_modified(x_type, y_type, sw_type):
    X, y, sw = X_TYPES[x_type](), Y_TYPES[y_type](), SW_TYPES[sw_type]()
    labels = sorted(set(np.asarray(y).tolist()), key=str)
    class_weight = {labels[0]: 0.5, labels[-1]: 4}
    inputs = {"X": X, "y": y, "sample_weight": sw, "class_weight": class_weight}
    before = {k: fingerprint(v) for k, v in inputs.items()}
    items = list(class_weight.items())

    clf = WeightedNeuralNetClassifier(class_weight=class_weight, **ONE_EPOCH)
    clf.fit(X, y, sample_weight=sw)
    clf.predict(X)
    clf.predict_proba(X)
    clf.score(X, y, sample_weight=sw)

    for key, value in inputs.items():
        assert fingerprint(value) == before[key], key
    assert list(class_weight.items()) == items  # same keys, order and values
    assert clf.class_weight is class_weight  # the parameter is the caller's dict
    np.testing.assert_array_equal(clf.classes_, labels)

"""The input forms: recognised, validated, converted by the dtype rule, untouched.

These test :mod:`skweighted._inputs` on its own; the estimator on every form is
tested in ``test_input_forms.py``.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TwoInputs
from sklearn.base import BaseEstimator
from skorch.helper import SliceDataset, SliceDict
from torch.utils.data import TensorDataset

from skweighted import _inputs
from skweighted._inputs import (
    LabelledDataset,
    form_of,
    n_samples,
    to_torch,
    validate_fit,
    validate_predict,
)

N = 12
rng = np.random.default_rng(0)
IMAGES = rng.random((N, 1, 4, 4))
TOKENS = rng.integers(0, 50, (N, 7))
Y = np.array(["a", "b", "c"] * 4)


class AnyInputs(torch.nn.Module):
    def forward(self, **parts):
        return parts


class Est(BaseEstimator):
    pass


def _fitted(X, y=Y, **kw):
    est = Est()
    fitted = validate_fit(est, X, y, **kw)
    est.input_form_ = fitted.form
    est.sample_shape_ = fitted.sample_shape
    return est, fitted


@pytest.mark.parametrize(
    "X, form",
    [
        (IMAGES[:, 0, 0], "table"),
        (pd.DataFrame(IMAGES[:, 0, 0]), "table"),
        (IMAGES[:, 0, 0].tolist(), "table"),
        (IMAGES, "array"),
        (IMAGES[:, 0], "array"),
        (torch.as_tensor(IMAGES), "array"),
        (IMAGES.tolist(), "array"),
        ({"image": IMAGES}, "dict"),
        (SliceDict(image=IMAGES), "dict"),
        (TensorDataset(torch.as_tensor(IMAGES)), "dataset"),
        (SliceDataset(TensorDataset(torch.as_tensor(IMAGES))), "dataset"),
    ],
)
def test_form_of(X, form):
    assert form_of(X).name == form


@pytest.mark.parametrize(
    "dtype, trained",
    [
        (np.float64, np.float32),
        (np.float32, np.float32),
        (np.float16, np.float32),
        (np.int64, np.int64),
        (np.int32, np.int32),
        (np.uint8, np.uint8),
        (np.bool_, np.bool_),
        (np.uint16, np.int32),
        (np.uint32, np.int64),
        (object, np.float32),
    ],
)
@pytest.mark.parametrize("shape", [(N, 5), (N, 2, 3, 3)], ids=["2d", "4d"])
def test_dtype_rule(dtype, trained, shape):
    X = (rng.random(shape) * 3).astype(dtype)
    _, fitted = _fitted(X)
    assert fitted.X.dtype == trained
    np.testing.assert_array_equal(fitted.X, X.astype(trained))
    if X.dtype == trained:  # nothing converted, nothing copied
        assert np.shares_memory(fitted.X, X)


def test_dataframe_is_a_float32_table_with_feature_names():
    frame = pd.DataFrame({"a": np.arange(N), "b": np.arange(N) * 2})
    est, fitted = _fitted(frame)
    assert fitted.X.dtype == np.float32 and fitted.form == "table"
    assert list(est.feature_names_in_) == ["a", "b"] and est.n_features_in_ == 2
    assert fitted.sample_shape == (2,)


def test_uint8_images_are_not_converted_or_copied():
    X = (IMAGES * 255).astype(np.uint8)
    _, fitted = _fitted(X)
    assert fitted.X is X
    tensor = to_torch(fitted.X)
    assert tensor.dtype == torch.uint8 and tensor.data_ptr() == X.ctypes.data


def test_read_only_arrays_are_copied_for_torch_only():
    X = IMAGES.astype(np.float32)
    X.flags.writeable = False
    _, fitted = _fitted(X)
    assert fitted.X is X
    tensor = to_torch(fitted.X)
    np.testing.assert_array_equal(tensor.numpy(), X)


def test_array_records_and_checks_the_sample_shape():
    est, fitted = _fitted(IMAGES)
    assert fitted.form == "array" and fitted.sample_shape == (1, 4, 4)
    assert validate_predict(est, IMAGES[:3].astype(np.uint8)).dtype == np.uint8
    with pytest.raises(ValueError, match=r"per-sample shape \(1, 5, 5\).*\(1, 4, 4\)"):
        validate_predict(est, np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"per-sample shape \(16,\)"):
        validate_predict(est, np.zeros((2, 16)))


def test_dict_values_follow_the_dtype_rule_each():
    X = {"image": IMAGES, "tokens": TOKENS}
    est, fitted = _fitted(X, module=TwoInputs)
    assert fitted.X["image"].dtype == np.float32
    assert fitted.X["tokens"] is TOKENS
    assert fitted.sample_shape == {"image": (1, 4, 4), "tokens": (7,)}
    assert n_samples(fitted.X) == N
    tensors = to_torch(fitted.X)
    assert tensors["tokens"].dtype == torch.int64
    assert set(X) == {"image", "tokens"} and X["image"] is IMAGES  # untouched
    with pytest.raises(ValueError, match=r"keys \['image'\].*\['image', 'tokens'\]"):
        validate_predict(est, {"image": IMAGES})
    with pytest.raises(ValueError, match=r"X\['tokens'\] has per-sample shape"):
        validate_predict(est, {"image": IMAGES, "tokens": TOKENS[:, :3]})
    with pytest.raises(ValueError, match="fitted on a dict"):
        validate_predict(est, IMAGES)


def test_forward_with_var_keywords_takes_any_key():
    _, fitted = _fitted({"x": IMAGES, "anything": TOKENS}, module=AnyInputs())
    assert set(fitted.X) == {"x", "anything"}


def test_dataset_labels_are_read_once_when_y_is_none():
    y = torch.tensor([0, 1, 2] * 4)
    _, fitted = _fitted(TensorDataset(torch.as_tensor(IMAGES), y), y=None)
    np.testing.assert_array_equal(fitted.y, y.numpy())
    assert fitted.sample_shape == (1, 4, 4)

    class Pairs(torch.utils.data.Dataset):  # labels as strings, items as lists
        def __len__(self):
            return N

        def __getitem__(self, i):
            return [IMAGES[i], Y[i]]

    _, fitted = _fitted(Pairs(), y=None)
    np.testing.assert_array_equal(fitted.y, Y)


def test_dataset_with_y_given_and_slice_dataset():
    ds = TensorDataset(torch.as_tensor(IMAGES), torch.zeros(N))
    _, fitted = _fitted(SliceDataset(ds), y=Y)
    assert fitted.form == "dataset" and fitted.sample_shape == (1, 4, 4)
    # the labels themselves as a SliceDataset (skorch's idiom for CV)
    labelled = TensorDataset(torch.as_tensor(IMAGES), torch.arange(N) % 3)
    _, fitted = _fitted(SliceDataset(labelled), y=SliceDataset(labelled, idx=1))
    np.testing.assert_array_equal(fitted.y, np.arange(N) % 3)


def test_labelled_dataset_replaces_labels_and_applies_the_dtype_rule():
    ds = TensorDataset(torch.as_tensor(IMAGES), torch.full((N,), 7))
    y = torch.arange(N)
    w = torch.linspace(0.5, 1.5, N)
    x, label = LabelledDataset(ds, y)[3]
    assert x.dtype == torch.float32 and label == 3
    x, label = LabelledDataset(ds, y, w)[3]
    assert set(x) == {"X", "sample_weight"} and x["sample_weight"] == w[3]
    x, label = LabelledDataset(SliceDataset(ds))[0]  # predict: no labels
    assert x.shape == (1, 4, 4) and label == 0


BAD = {
    "ragged list": ([[1, 2, 3], [4, 5]], [0, 1], None, ValueError, "ragged"),
    "ragged object array": (
        np.array([np.zeros(3), np.zeros(2)], dtype=object),
        [0, 1],
        None,
        ValueError,
        "ragged",
    ),
    "strings": (np.array([["a"], ["b"]]), [0, 1], None, ValueError, "float"),
    "nan image": (
        np.where(IMAGES > 0.99, np.nan, IMAGES),
        Y,
        None,
        ValueError,
        "NaN",
    ),
    "no sample": (np.zeros((0, 1, 4, 4)), [], None, ValueError, "0 sample"),
    "y length": (IMAGES, Y[:5], None, ValueError, "inconsistent numbers"),
    "dict lengths": (
        {"image": IMAGES, "tokens": TOKENS[:5]},
        Y,
        TwoInputs,
        ValueError,
        r"same number of samples.*'tokens': 5",
    ),
    "dict unknown key": (
        {"image": IMAGES, "mask": TOKENS},
        Y,
        TwoInputs,
        ValueError,
        r"key\(s\) \['mask'\] that TwoInputs.forward does not accept",
    ),
    "dict missing key": (
        {"tokens": TOKENS},
        Y,
        TwoInputs,
        ValueError,
        r"requires the argument\(s\) \['image'\]",
    ),
    "dict reserved key": (
        {"image": IMAGES, "sample_weight": np.ones(N)},
        Y,
        TwoInputs,
        ValueError,
        "reserved",
    ),
    "dict without module": ({"image": IMAGES}, Y, None, TypeError, "pass module="),
    "dataset without labels": (
        TensorDataset(torch.as_tensor(IMAGES)),
        None,
        None,
        ValueError,
        "not an \\(X, y\\) pair",
    ),
    "slice dataset without labels": (
        SliceDataset(TensorDataset(torch.as_tensor(IMAGES), torch.zeros(N))),
        None,
        None,
        ValueError,
        "SliceDataset yields only X",
    ),
    "empty dataset": (
        TensorDataset(torch.zeros(0, 3)),
        [],
        None,
        ValueError,
        "0 sample",
    ),
    "string X": ("images.npy", Y, None, TypeError, "got str"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_clear_error(case):
    X, y, module, error, match = BAD[case]
    with pytest.raises(error, match=match):
        validate_fit(Est(), X, y, module=module)


def test_iterable_dataset_is_refused():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(3), 0

    with pytest.raises(TypeError, match="map-style Dataset"):
        validate_fit(Est(), Stream(), None)


def test_the_callers_data_is_not_modified():
    images = IMAGES.copy()
    tokens = TOKENS.copy()
    X = {"image": images, "tokens": tokens}
    fitted = validate_fit(Est(), X, Y, module=TwoInputs)
    fitted.X["image"][:] = -1  # the float32 copy, not the caller's array
    assert list(X) == ["image", "tokens"] and X["image"] is images
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(tokens, TOKENS)


def test_sample_weight_is_checked_against_the_number_of_samples():
    w = _inputs.validate_sample_weight([1, 2, 3], 3)
    assert w.dtype == np.float32
    with pytest.raises(ValueError, match="sample_weight"):
        _inputs.validate_sample_weight([1, 2], 3)

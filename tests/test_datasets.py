"""Built-in imbalanced datasets: shipped or generated, fixed, imbalanced."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from skweighted import load_imbalanced
from skweighted.datasets import DATASETS


@pytest.mark.parametrize("name", list(DATASETS))
def test_dataset(name):
    data = load_imbalanced(name)
    X, y = data.data, data.target
    assert X.dtype == np.float64 and X.ndim in (2, 4) and len(X) == len(y)
    assert len(data.feature_names) == np.prod(X.shape[1:])
    labels, counts = np.unique(y, return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist())) == data.class_counts
    assert data.imbalance_ratio == counts.max() / counts.min()
    assert 4.5 <= data.imbalance_ratio <= 55
    assert counts.min() >= 10  # every class survives 5-fold stratified CV
    X2, y2 = load_imbalanced(name, return_X_y=True)
    np.testing.assert_array_equal(X, X2)  # the same on every call
    np.testing.assert_array_equal(y, y2)


def test_collection_spans_binary_multiclass_and_ratios():
    loaded = [load_imbalanced(name) for name in DATASETS]
    n_classes = [len(d.class_counts) for d in loaded]
    ratios = [d.imbalance_ratio for d in loaded]
    assert 2 in n_classes and max(n_classes) >= 3
    assert min(ratios) <= 6 and max(ratios) >= 45


def test_as_frame():
    X, y = load_imbalanced("wine", return_X_y=True, as_frame=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    assert X.columns[0] == "alcohol"


def test_digit_images():
    data = load_imbalanced("digits_images")
    X, y = data.data, data.target
    assert X.shape[1:] == (1, 8, 8) and 0 <= X.min() and X.max() == 1
    rare = [d for d, c in data.class_counts.items() if c < 50]
    assert rare == [3, 8, 9]
    # every image is one of scikit-learn's digits, scaled from 0..16 to 0..1
    digits = load_digits()
    label_of = {tuple(row): t for row, t in zip(digits.data, digits.target)}
    assert [label_of[tuple(img.ravel() * 16)] for img in X] == y.tolist()
    with pytest.raises(ValueError, match="as_frame=True needs a table"):
        load_imbalanced("digits_images", as_frame=True)


def test_unknown_name():
    with pytest.raises(ValueError, match="Unknown dataset name='nope'"):
        load_imbalanced("nope")

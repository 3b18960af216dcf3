"""RowSampler: imbalanced-learn samplers on every input form."""

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import RandomUnderSampler, TomekLinks
from skorch.helper import SliceDataset, SliceDict
from torch.utils.data import Subset, TensorDataset

from skweighted.resampling import RowSampler

rng = np.random.default_rng(0)
IMAGES = rng.random((30, 1, 4, 4))
Y = np.array([0] * 24 + [1] * 6)


def test_row_selection_keeps_the_original_rows_and_dtype():
    images = (IMAGES * 255).astype(np.uint8)
    before = images.copy()
    rs = RowSampler(RandomOverSampler(random_state=0))
    Xr, yr = rs.fit_resample(images, Y)
    assert Xr.dtype == np.uint8 and Xr.shape == (48, 1, 4, 4)
    np.testing.assert_array_equal(Xr, images[rs.sample_indices_])
    np.testing.assert_array_equal(yr, Y[rs.sample_indices_])
    np.testing.assert_array_equal(images, before)


def test_a_sampler_that_reads_x_sees_flattened_samples():
    X = np.concatenate([IMAGES, IMAGES[:1] + 1e-3])  # a Tomek link across classes
    y = np.r_[Y, 1]
    rs = RowSampler(TomekLinks())
    Xr, _ = rs.fit_resample(X, y)
    flat = TomekLinks().fit(X.reshape(len(X), -1), y)
    flat.fit_resample(X.reshape(len(X), -1), y)
    np.testing.assert_array_equal(rs.sample_indices_, flat.sample_indices_)
    assert Xr.shape[1:] == X.shape[1:]


def test_smote_synthesises_images_of_the_sample_shape():
    Xr, yr = RowSampler(SMOTE(k_neighbors=3, random_state=0)).fit_resample(IMAGES, Y)
    assert Xr.shape == (48, 1, 4, 4) and np.bincount(yr).tolist() == [24, 24]
    np.testing.assert_array_equal(Xr[:30], IMAGES)  # originals first, unchanged
    # each synthetic image lies between images of the minority class
    lo, hi = IMAGES[Y == 1].min(axis=0), IMAGES[Y == 1].max(axis=0)
    assert np.all((Xr[30:] >= lo - 1e-12) & (Xr[30:] <= hi + 1e-12))


def test_smote_on_token_ids_is_refused():
    tokens = rng.integers(0, 100, (30, 2, 5))
    with pytest.raises(TypeError, match="no meaning for int64"):
        RowSampler(SMOTE(k_neighbors=3)).fit_resample(tokens, Y)


@pytest.mark.parametrize(
    "X, kind",
    [
        (SliceDict(image=IMAGES, ids=np.arange(30)), SliceDict),
        ({"image": IMAGES, "ids": np.arange(30)}, SliceDict),
        (TensorDataset(torch.as_tensor(IMAGES)), Subset),
        (SliceDataset(TensorDataset(torch.as_tensor(IMAGES))), SliceDataset),
    ],
    ids=["slicedict", "dict", "dataset", "slicedataset"],
)
def test_dicts_and_datasets_are_resampled_by_index(X, kind):
    rs = RowSampler(RandomUnderSampler(random_state=0))
    Xr, yr = rs.fit_resample(X, Y)
    assert isinstance(Xr, kind) and len(Xr) == 12
    assert np.bincount(yr).tolist() == [6, 6]
    if isinstance(Xr, dict):
        np.testing.assert_array_equal(Xr["ids"], rs.sample_indices_)
    else:
        first = Xr[0][0] if isinstance(Xr, Subset) else Xr[0]
        np.testing.assert_array_equal(first, IMAGES[rs.sample_indices_[0]])


def test_smote_on_a_dict_is_refused():
    with pytest.raises(TypeError, match="RandomUnderSampler or RandomOverSampler"):
        RowSampler(SMOTE()).fit_resample({"image": IMAGES}, Y)


def test_tables_go_to_the_sampler_unchanged():
    X = IMAGES.reshape(30, -1)
    Xr, _ = RowSampler(RandomUnderSampler(random_state=0)).fit_resample(X, Y)
    Xe, _ = RandomUnderSampler(random_state=0).fit_resample(X, Y)
    np.testing.assert_array_equal(Xr, Xe)

"""The estimator on every input form: images, sequences, token ids, uint8,
dicts and torch Datasets (issue 11's "Done means" 1-5).

Small data and two epochs: these check behaviour, not accuracy.
"""

import pickle

import numpy as np
import pytest
import torch
from conftest import TwoInputs
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import Callback
from skorch.helper import SliceDataset, SliceDict
from torch import nn
from torch.utils.data import TensorDataset

from skweighted import WeightedNeuralNetClassifier, _inputs
from skweighted._batching import ArrayDataset, BatchIterator
from skweighted.resampling import RowSampler

N = 60
rng = np.random.default_rng(0)
Y = rng.permutation(np.array(["common"] * 36 + ["mid"] * 16 + ["rare"] * 8))
CODES = np.searchsorted(["common", "mid", "rare"], Y)
IMAGES = rng.normal(0, 1, (N, 1, 6, 6)) + CODES[:, None, None, None]
SEQUENCES = rng.normal(0, 1, (N, 5, 3)) + CODES[:, None, None]
TOKENS = rng.integers(0, 30, (N, 7))
TOKENS[:, 0] = CODES * 10  # the first token tells the class
UINT8 = np.clip(IMAGES * 40 + 100, 0, 255).astype(np.uint8)


class Bag(nn.Module):
    """Token ids -> EmbeddingBag -> logits."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.embed = nn.EmbeddingBag(30, 8)
        self.out = nn.Linear(8, n_classes)

    def forward(self, X):
        return self.out(self.embed(X))


class LabelledImages(torch.utils.data.Dataset):
    """Items ``(image, label string)``: labels read from the Dataset."""

    def __len__(self):
        return N

    def __getitem__(self, i):
        return IMAGES[i].astype(np.float32), Y[i]


SMALL_CNN = {"module__channels": (4,), "module__hidden_units": (8,)}

#: form -> (X for fit, y for fit, estimator parameters)
FORMS = {
    "4d float": (IMAGES, Y, SMALL_CNN),
    "3d float": (SEQUENCES, Y, {"module__hidden_units": (8,)}),
    "int64 tokens": (TOKENS, Y, {"module": Bag}),
    "uint8 images": (UINT8, Y, SMALL_CNN),
    "dict": (
        {"image": IMAGES.astype(np.float32), "tokens": TOKENS},
        Y,
        {"module": TwoInputs},
    ),
    "TensorDataset with y": (
        TensorDataset(torch.as_tensor(IMAGES, dtype=torch.float32)),
        Y,
        SMALL_CNN,
    ),
    "Dataset with y=None": (LabelledImages(), None, SMALL_CNN),
}


def _clf(**params):
    defaults = dict(
        class_weight="balanced", max_epochs=2, batch_size=16, lr=0.01, random_state=0
    )
    return WeightedNeuralNetClassifier(**{**defaults, **params})


@pytest.fixture(scope="module", params=list(FORMS))
def fitted(request):
    X, y, params = FORMS[request.param]
    return X, _clf(**params).fit(X, y), _clf(**params).fit(X, y)


def test_labels_in_labels_out(fitted):
    X, clf, _ = fitted
    assert clf.classes_.tolist() == ["common", "mid", "rare"]
    pred = clf.predict(X)
    assert pred.shape == (N,) and set(pred) <= set(clf.classes_)
    proba = clf.predict_proba(X)
    assert proba.shape == (N, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, Y) == accuracy_score(Y, pred)


def test_class_weight_is_sklearns_and_on_the_module_device(fitted):
    _, clf, _ = fitted
    expected = compute_class_weight("balanced", classes=clf.classes_, y=Y)
    np.testing.assert_array_equal(clf.class_weight_, expected)
    weight = clf.net_.criterion_.weight
    assert weight.device == next(clf.net_.module_.parameters()).device
    np.testing.assert_array_equal(weight.numpy(), expected.astype(np.float32))


def test_same_random_state_same_predictions(fitted):
    X, a, b = fitted
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_pickle_round_trip(fitted):
    X, clf, _ = fitted
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.sample_shape_ == clf.sample_shape_


def test_warm_start_goes_on_for_images():
    clf = _clf(warm_start=True, **SMALL_CNN).fit(UINT8, Y)
    clf.fit(UINT8[:30], Y[:30])
    assert len(clf.net_.history) == 4
    with pytest.raises(ValueError, match="same input shape"):
        clf.fit(UINT8[:, :, :4, :4], Y)


def test_dtype_and_shape_are_recorded():
    clf = _clf(**SMALL_CNN).fit(UINT8, Y)
    assert clf.input_form_ == "array" and clf.sample_shape_ == (1, 6, 6)
    assert type(clf.net_.module_).__name__ == "CNN"
    clf = _clf(module=Bag).fit(TOKENS, Y)
    assert clf.input_form_ == "table" and clf.n_features_in_ == 7


# -- Done means 2: scikit-learn CV on images, SliceDict and SliceDataset -------
CV_FORMS = {
    "4d images": (IMAGES, SMALL_CNN),
    "SliceDict": (
        SliceDict(image=IMAGES.astype(np.float32), tokens=TOKENS),
        {"module": TwoInputs},
    ),
    "SliceDataset": (
        SliceDataset(TensorDataset(torch.as_tensor(IMAGES, dtype=torch.float32))),
        SMALL_CNN,
    ),
}
CV = StratifiedKFold(3, shuffle=True, random_state=0)


@pytest.mark.parametrize("form", list(CV_FORMS))
def test_cross_val_score(form):
    X, params = CV_FORMS[form]
    scores = cross_val_score(_clf(**params), X, Y, cv=CV)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("form", list(CV_FORMS))
def test_grid_search_over_class_weight_in_two_processes(form):
    X, params = CV_FORMS[form]
    search = GridSearchCV(
        _clf(class_weight=None, **params),
        {"class_weight": [None, "balanced"]},
        cv=CV,
        n_jobs=2,
    ).fit(X, Y)
    assert search.best_params_["class_weight"] in (None, "balanced")
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.predict(X).shape == (N,)


def test_imblearn_pipeline_with_random_undersampling_on_images():
    pipe = make_pipeline(
        RowSampler(RandomUnderSampler(random_state=0)), _clf(**SMALL_CNN)
    )
    pipe.fit(IMAGES, Y)
    clf = pipe[-1]
    # the network saw the under-sampled, balanced images: every weight is 1
    np.testing.assert_array_equal(clf.class_weight_, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(clf.class_counts_, [8, 8, 8])
    assert pipe.predict(IMAGES).shape == (N,)
    scores = cross_val_score(pipe, IMAGES, Y, cv=CV)
    assert scores.shape == (3,)


# -- Done means 3: the fast path for every in-memory form ---------------------
IN_MEMORY = ["4d float", "3d float", "int64 tokens", "uint8 images", "dict"]


@pytest.mark.parametrize("form", IN_MEMORY)
def test_in_memory_forms_take_the_fast_path(form, monkeypatch):
    X, y, params = FORMS[form]
    calls = []
    original = ArrayDataset.__getitem__
    monkeypatch.setattr(
        ArrayDataset, "__getitem__", lambda ds, i: calls.append(i) or original(ds, i)
    )
    clf = _clf(**params).fit(X, y)
    clf.predict_proba(X)
    assert calls == []  # no per-row __getitem__, in training or prediction
    validated = _inputs.validate_predict(clf, X)
    dataset = clf.net_.make_dataset(validated, np.zeros(N, np.int64))
    assert isinstance(clf.net_.get_iterator(dataset, training=True), BatchIterator)


def test_a_dataset_takes_the_dataloader_path():
    X, y, params = FORMS["TensorDataset with y"]
    clf = _clf(**params).fit(X, y)
    dataset = clf.net_.make_dataset(X, np.zeros(N, np.int64))
    iterator = clf.net_.get_iterator(dataset, training=True)
    assert isinstance(iterator, torch.utils.data.DataLoader)


@pytest.mark.parametrize(
    "sampler, weighted",
    [(None, False), ("balanced", False), (None, True)],
    ids=["shuffle", "sampler", "sample_weight"],
)
def test_fast_path_and_dataloader_path_train_alike(sampler, weighted):
    """Same seed, same batch order: the same network from both paths."""
    images = IMAGES.astype(np.float32)
    sw = np.linspace(0.2, 2.0, N) if weighted else None
    fast = _clf(sampler=sampler, **SMALL_CNN).fit(images, Y, sample_weight=sw)
    loader = _clf(sampler=sampler, **SMALL_CNN).fit(
        TensorDataset(torch.as_tensor(images)), Y, sample_weight=sw
    )
    np.testing.assert_allclose(
        fast.predict_proba(images), loader.predict_proba(images), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_array_equal(fast.predict(images), loader.predict(images))


def test_sample_weight_on_a_dict():
    X, y, params = FORMS["dict"]
    sw = np.where(Y == "rare", 0.0, 1.0)
    a = _clf(**params).fit(X, y, sample_weight=sw)
    b = _clf(**params).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.net_.history[-1, "train_batch_count"] == 4


def test_dataloader_options_pass_through():
    X = TensorDataset(torch.as_tensor(IMAGES, dtype=torch.float32))
    clf = _clf(iterator_train__drop_last=True, **SMALL_CNN).fit(X, Y)
    # 60 images in batches of 16 without the last partial batch: 3 per epoch
    assert clf.net_.history[-1, "train_batch_count"] == 3


class _Holds(Callback):
    """Records what a fit holds: the training data and each batch's input."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.data = X.X
        self.batches = []
        net.module_.register_forward_pre_hook(
            lambda m, args: self.batches.append((args[0].dtype, args[0].shape))
        )


def test_a_uint8_fit_holds_uint8_data_and_float_only_per_batch():
    images = rng.integers(0, 256, (N, 1, 32, 32), dtype=np.uint8)  # 1 KiB each
    holds = _Holds()
    _clf(callbacks=[holds], **SMALL_CNN).fit(images, Y)
    data = holds.data
    assert data.dtype == torch.uint8 and data.shape == images.shape
    assert data.data_ptr() == images.ctypes.data  # the caller's memory, no copy
    dtypes = {dtype for dtype, _ in holds.batches}
    assert dtypes == {torch.uint8}  # the module converts, one batch at a time
    assert max(shape[0] for _, shape in holds.batches) <= 16


# -- Done means 4: bad input, before training, caller's data untouched ---------
class _Never(nn.Module):
    def __init__(self, n_classes=3):
        super().__init__()
        self.out = nn.Linear(2, n_classes)

    def forward(self, image, tokens=None):
        raise AssertionError("trained on bad input")


class _NoLabels(torch.utils.data.Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return torch.zeros(3)


BAD_FIT = {
    "ragged list": ([[1.0, 2.0]] * 30 + [[1.0]] * 30, Y, {}, ValueError, "ragged"),
    "object array": (
        np.array([np.zeros(2)] * 30 + [np.zeros(3)] * 30, dtype=object),
        Y,
        {},
        ValueError,
        "ragged or object array",
    ),
    "dict lengths": (
        {"image": IMAGES, "tokens": TOKENS[:50]},
        Y,
        {"module": _Never},
        ValueError,
        "same number of samples",
    ),
    "dict key": (
        {"image": IMAGES, "mask": TOKENS},
        Y,
        {"module": _Never},
        ValueError,
        r"\['mask'\] that _Never.forward does not accept",
    ),
    "dataset without labels": (
        _NoLabels(),
        None,
        {"module": _Never},
        ValueError,
        "not an \\(X, y\\) pair",
    ),
    "nan in images": (
        np.where(IMAGES > 2.5, np.nan, IMAGES),
        Y,
        {},
        ValueError,
        "NaN",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FIT))
def test_bad_input_fails_before_training(case):
    X, y, params, error, match = BAD_FIT[case]
    before = {k: v.copy() for k, v in X.items()} if isinstance(X, dict) else None
    clf = _clf(**params)
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")
    if before is not None:  # the caller's dict and arrays are untouched
        assert list(X) == list(before)
        for key in before:
            np.testing.assert_array_equal(X[key], before[key])


def test_changed_sample_shape_at_predict():
    clf = _clf(**SMALL_CNN).fit(IMAGES, Y)
    with pytest.raises(ValueError, match=r"per-sample shape \(1, 5, 5\)"):
        clf.predict(IMAGES[:, :, :5, :5])
    with pytest.raises(ValueError, match="per-sample shape"):
        clf.predict_proba(IMAGES.reshape(N, -1))


def test_integer_input_to_a_float_module_says_what_to_do():
    with pytest.raises(RuntimeError, match="convert X to float32"):
        _clf(module=nn.Sequential(nn.Flatten(), nn.Linear(36, 3))).fit(UINT8, Y)


def test_the_callers_arrays_and_datasets_are_not_modified():
    images, tokens = IMAGES.copy(), TOKENS.copy()
    tensor = torch.as_tensor(IMAGES, dtype=torch.float32)
    dataset = TensorDataset(tensor.clone())
    X = {"image": images, "tokens": tokens}
    _clf(module=TwoInputs).fit(X, Y)
    _clf(**SMALL_CNN).fit(dataset, Y)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(tokens, TOKENS)
    assert list(X) == ["image", "tokens"]
    assert torch.equal(dataset.tensors[0], tensor) and len(dataset.tensors) == 1


# -- Done means 5: partial_fit --------------------------------------------------
def test_partial_fit_trains_one_epoch_per_chunk_and_keeps_classes():
    clf = _clf(**SMALL_CNN)
    chunks = np.array_split(np.arange(N), 3)
    for k, idx in enumerate(chunks):
        clf.partial_fit(IMAGES[idx], Y[idx], classes=["common", "mid", "rare"])
        assert len(clf.net_.history) == k + 1
    np.testing.assert_array_equal(clf.class_counts_, [36, 16, 8])
    assert clf.classes_.tolist() == ["common", "mid", "rare"]
    assert np.isfinite(clf.net_.history[:, "train_loss"]).all()
    assert clf.predict(IMAGES).shape == (N,)


def test_partial_fit_classes_rules():
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        _clf(**SMALL_CNN).partial_fit(IMAGES, Y)
    clf = _clf(**SMALL_CNN).partial_fit(
        IMAGES[:10], np.array(["common"] * 10), classes=["common", "mid", "rare"]
    )
    assert clf.classes_.tolist() == ["common", "mid", "rare"]  # from classes
    with pytest.raises(ValueError, match=r"\['unknown'\] that are not in classes"):
        clf.partial_fit(IMAGES[:2], np.array(["unknown", "mid"]))
    with pytest.raises(ValueError, match="not the label set of the first call"):
        clf.partial_fit(IMAGES[:2], Y[:2], classes=["common", "mid"])
    with pytest.raises(ValueError, match="same input shape"):
        clf.partial_fit(IMAGES[:, :, :5, :5], Y)


def test_partial_fit_balanced_uses_running_class_counts():
    """Chunks of opposite class mixes: the weights follow the counts so far."""
    classes = np.array(["a", "b", "c"])
    chunk1 = np.array(["a"] * 16 + ["b"] * 4)  # mostly a, no c yet
    chunk2 = np.array(["a"] * 4 + ["b"] * 14 + ["c"] * 2)  # mostly b
    X = rng.normal(size=(20, 4)).astype(np.float32)
    clf = _clf(module__hidden_units=(4,))
    seen = np.array([], dtype=str)
    for chunk in (chunk1, chunk2):
        clf.partial_fit(X, chunk, classes=classes)
        seen = np.concatenate([seen, chunk])
        present = np.unique(seen)
        expected = np.ones(3)  # a class not seen yet weighs 1
        expected[np.searchsorted(classes, present)] = compute_class_weight(
            "balanced", classes=present, y=seen
        )
        np.testing.assert_array_equal(clf.class_weight_, expected)
        np.testing.assert_array_equal(
            clf.net_.criterion_.weight.numpy(), expected.astype(np.float32)
        )
    # after both chunks: the weights of one fit on their concatenation
    full = _clf(module__hidden_units=(4,), classes=classes).fit(
        np.concatenate([X, X]), seen
    )
    np.testing.assert_array_equal(clf.class_weight_, full.class_weight_)


def test_partial_fit_on_a_dataset():
    ds = TensorDataset(
        torch.as_tensor(IMAGES, dtype=torch.float32), torch.as_tensor(CODES)
    )
    clf = _clf(**SMALL_CNN).partial_fit(ds, None, classes=[0, 1, 2])
    clf.partial_fit(ds, None)
    assert len(clf.net_.history) == 2 and clf.input_form_ == "dataset"


@pytest.mark.parametrize("row", [0, N - 1])  # in the probe batch, or only beyond it
def test_ids_beyond_the_embedding_name_the_input_and_the_size(row):
    tokens = TOKENS.copy()
    tokens[row, 3] = 41
    clf = WeightedNeuralNetClassifier(Bag, max_epochs=1, random_state=0)
    with pytest.raises(
        ValueError,
        match=r"^X holds ids outside the range of the embedding 'embed': the "
        r"largest id is 41, but num_embeddings=30",
    ):
        clf.fit(tokens, Y)
    X = {"image": IMAGES.astype(np.float32), "tokens": tokens}
    clf = WeightedNeuralNetClassifier(TwoInputs, max_epochs=1, random_state=0)
    with pytest.raises(
        ValueError, match=r"^X\['tokens'\] holds ids .* largest id is 41, but "
    ):
        clf.fit(X, Y)
    tokens[row, 3] = -2
    with pytest.raises(ValueError, match=r"^X holds ids .*: it holds id -2"):
        WeightedNeuralNetClassifier(Bag, max_epochs=1).fit(tokens, Y)

"""Models survive pickling, joblib, skorch's save/load and moving off a GPU."""

import ast
import io
import os
import pathlib
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from conftest import FAST
from sklearn.base import clone
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from skorch.exceptions import DeviceWarning

import skweighted
from skweighted import WeightedNeuralNetClassifier
from skweighted._compat import torch_load
from skweighted.class_weight import Deferred

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def data(three):
    return three


@pytest.fixture(scope="module")
def fitted(data):
    """Every tensor-holding option on: class weights, a sampler, DRW."""
    X, y = data
    return WeightedNeuralNetClassifier(
        class_weight=Deferred("balanced", start_epoch=1), sampler="balanced", **FAST
    ).fit(X, y)


def _same_model(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.classes_, b.classes_)
    np.testing.assert_array_equal(a.class_weight_, b.class_weight_)
    assert a.n_features_in_ == b.n_features_in_
    assert len(a.net_.history) == len(b.net_.history)
    wa, wb = a.net_.criterion_.weight, b.net_.criterion_.weight
    assert (wa is None) == (wb is None)
    if wa is not None:
        torch.testing.assert_close(wa.cpu(), wb.cpu())
    np.testing.assert_array_equal(
        a.net_.plan_.sampling_weight, b.net_.plan_.sampling_weight
    )
    assert a.net_.plan_.deferred_start == b.net_.plan_.deferred_start


def test_pickle_roundtrip(fitted, data):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    _same_model(restored, fitted, X)
    assert restored.get_params()["sampler"] == "balanced"
    assert "net_" not in vars(clone(restored))


def test_joblib_roundtrip(fitted, data, tmp_path):
    X, _ = data
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    _same_model(joblib.load(path), fitted, X)


def test_restored_model_keeps_training(fitted, data):
    """warm_start on a restored model continues from the saved weights."""
    X, y = data
    restored = pickle.loads(pickle.dumps(fitted)).set_params(warm_start=True)
    restored.fit(X, y)
    assert len(restored.net_.history) == 2 * FAST["max_epochs"]
    assert np.all(np.isfinite(restored.predict_proba(X)))


@pytest.mark.skipif(CUDA, reason="simulates a CPU-only machine")
def test_cuda_model_loads_on_cpu_by_mapping(fitted, data):
    """A net saved with device='cuda' maps its tensors to the CPU on load.

    On a CPU-only machine the model is marked as CUDA-fitted before pickling,
    so unpickling goes through skorch's ``map_location`` fallback exactly as
    for a real CUDA pickle (the GPU test below pickles a real one)."""
    X, _ = data
    clf = pickle.loads(pickle.dumps(fitted))
    clf.set_params(device="cuda")
    clf.net_.device = "cuda"
    payload = pickle.dumps(clf)
    with pytest.warns(DeviceWarning, match="(?i)cuda.*available"):
        restored = pickle.loads(payload)
    assert str(restored.net_.device) == "cpu"
    assert restored.get_params()["device"] == "cuda"  # the parameter is kept
    _same_model(restored, fitted, X)
    # refitting needs the parameter changed, and says so before training
    with pytest.raises(ValueError, match="CUDA is not available"):
        clone(restored).fit(X, data[1])
    restored.set_params(device="cpu").fit(X, data[1])


def _tensors(obj, seen=None):
    """Every tensor reachable through lists, tuples, dicts and plain attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v, seen)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v, seen)
    elif hasattr(obj, "get_params") and not isinstance(obj, type):
        yield from _tensors(obj.get_params(deep=False), seen)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_real_cuda_model_loads_in_a_cpu_only_process(data, tmp_path):
    X, y = data
    clf = WeightedNeuralNetClassifier(
        class_weight=Deferred("balanced", start_epoch=1),
        sampler="balanced",
        device="cuda",
        **FAST,
    ).fit(X, y)
    assert clf.net_.criterion_.weight.device.type == "cuda"
    # the estimator's parameters and the net's extra state hold no CUDA tensor
    assert not [t for t in _tensors(clf.get_params()) if t.is_cuda]
    net = clf.net_
    assert not list(_tensors(vars(net.plan_)))  # the plan holds numpy arrays only
    path = tmp_path / "cuda_model.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "proba.npy", clf.predict_proba(X))
    script = (
        "import pickle, sys, warnings, numpy as np, torch\n"
        "assert not torch.cuda.is_available()\n"
        "d = sys.argv[1]\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        "    clf = pickle.load(open(d + '/cuda_model.pkl', 'rb'))\n"
        "assert str(clf.net_.device) == 'cpu'\n"
        "p = clf.predict_proba(np.load(d + '/X.npy'))\n"
        "np.testing.assert_allclose(p, np.load(d + '/proba.npy'), atol=1e-5)\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, check=True)


def test_save_params_load_params_through_the_wrapper(fitted, data, tmp_path):
    X, y = data
    files = {
        "f_params": tmp_path / "params.pt",
        "f_optimizer": tmp_path / "optimizer.pt",
        "f_criterion": tmp_path / "criterion.pt",
        "f_history": tmp_path / "history.json",
    }
    fitted.net_.save_params(**files)
    # a second model of the same shape, trained differently
    other = clone(fitted).set_params(random_state=1, max_epochs=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), fitted.predict_proba(X))
    other.net_.load_params(**files)
    np.testing.assert_array_equal(other.predict_proba(X), fitted.predict_proba(X))
    assert len(other.net_.history) == len(fitted.net_.history)
    torch.testing.assert_close(
        other.net_.criterion_.weight, fitted.net_.criterion_.weight
    )


class _Payload:
    """Not a tensor: a weights-only loader must refuse to build it."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_files_is_weights_only(fitted, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"layers.0.weight": _Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="[Ww]eights only"):
        torch_load(path)
    with pytest.raises(pickle.UnpicklingError, match="[Ww]eights only"):
        fitted.net_.load_params(f_params=path)
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch_load(buffer)["w"], torch.ones(2))


def test_skweighted_never_calls_torch_load_unsafely():
    """Any file skweighted loads goes through ``_compat.torch_load``."""
    root = pathlib.Path(skweighted.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                safe = any(
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in node.keywords
                )
                if not (path.name == "_compat.py" and safe):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


def test_pickle_does_not_warn(fitted):
    """No FutureWarning/DeviceWarning on a same-device round trip."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(fitted))


SKOPS_CASES = {
    "none": {},
    "balanced": {"class_weight": "balanced"},
    "dict": {"class_weight": {"a": 1.0, "b": 3.0, "c": 9.0}},
    "effective": {"class_weight": skweighted.EffectiveNumber(0.9)},
    "per_batch": {"class_weight": skweighted.PerBatch("balanced")},
    "deferred": {"class_weight": Deferred("balanced", start_epoch=1)},
    "sampler": {"sampler": "balanced"},
    "early_stopping": {
        "callbacks": [EarlyStopping(patience=2)],
        "train_split": ValidSplit(0.25, stratified=True),
    },
}


@pytest.fixture(scope="module", params=list(SKOPS_CASES), ids=list(SKOPS_CASES))
def fitted_each_form(request, data):
    X, y = data
    return WeightedNeuralNetClassifier(**SKOPS_CASES[request.param], **FAST).fit(X, y)


def test_skops_roundtrip_with_the_documented_trusted_types(fitted_each_form, data):
    sio = pytest.importorskip("skops.io")
    from skweighted.persistence import SKOPS_TRUSTED_TYPES

    X, _ = data
    blob = sio.dumps(fitted_each_form)
    assert set(sio.get_untrusted_types(data=blob)) <= set(SKOPS_TRUSTED_TYPES)
    restored = sio.loads(blob, trusted=SKOPS_TRUSTED_TYPES)
    _same_model(restored, fitted_each_form, X)
    # no function is trusted, and the optimizer's virtual parameters still
    # reach the restored optimizer
    assert not {"builtins.print", "functools.partial"} & set(SKOPS_TRUSTED_TYPES)
    sinks = [getattr(cb, "sink", print) for _, cb in restored.net_.callbacks_]
    assert all(sink is print for sink in sinks)  # restored by name
    restored.net_.set_params(lr=0.123)
    assert restored.net_.optimizer_.param_groups[0]["lr"] == 0.123


def test_mlflow_default_format_roundtrip(fitted, data, tmp_path):
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from skweighted.persistence import SKOPS_TRUSTED_TYPES

    X, _ = data
    path = str(tmp_path / "model")
    mlflow_sklearn.save_model(fitted, path, skops_trusted_types=SKOPS_TRUSTED_TYPES)
    assert (tmp_path / "model" / "model.skops").exists()  # MLflow's default format
    _same_model(mlflow_sklearn.load_model(path), fitted, X)

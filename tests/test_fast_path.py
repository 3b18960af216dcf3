"""The fast in-memory training path gives what skorch's general path gives.

No timing here: speed is measured by ``benchmarks/bench_fit.py``.
"""

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit
from threadpoolctl import threadpool_limits
from torch.utils.data import default_collate

from skweighted import MLP, WeightedCrossEntropyLoss, WeightedNeuralNetClassifier
from skweighted._batching import BatchIterator
from skweighted._compat import fast_optimizer_kwargs

EPOCHS, BATCH, LR = 3, 32, 0.01


@pytest.fixture(scope="module")
def data(small_three):
    """Integer labels, as vanilla skorch takes them."""
    return small_three


@pytest.fixture(scope="module")
def module(data):
    torch.manual_seed(0)
    return MLP(data[0].shape[1], 3, hidden_units=(16,))


def _fit(data, module, sample_weight=None, **kwargs):
    X, y = data
    clf = WeightedNeuralNetClassifier(
        module=module,
        class_weight="balanced",
        lr=LR,
        max_epochs=EPOCHS,
        batch_size=BATCH,
        random_state=0,
        iterator_train__shuffle=False,
        **kwargs,
    )
    return clf.fit(X, y, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def fast(data, module):
    return _fit(data, module)


def test_fast_path_is_used(fast, data):
    iterator = fast.net_.get_iterator(fast.net_.make_dataset(*data), training=True)
    assert isinstance(iterator, BatchIterator)
    general = _fit(data, fast.net_.module_, iterator_train__collate_fn=default_collate)
    iterator = general.net_.get_iterator(
        general.net_.make_dataset(*data), training=True
    )
    assert isinstance(iterator, torch.utils.data.DataLoader)


@pytest.mark.parametrize("weighted", [False, True], ids=["no_sw", "sample_weight"])
def test_fast_path_equals_general_path(data, module, weighted):
    """Same seed and batch order: the same training, bit for bit."""
    sw = np.linspace(0.5, 2.0, len(data[1])) if weighted else None
    fast = _fit(data, module, sample_weight=sw)
    general = _fit(
        data, module, sample_weight=sw, iterator_train__collate_fn=default_collate
    )
    X = data[0]
    np.testing.assert_array_equal(fast.predict(X), general.predict(X))
    np.testing.assert_array_equal(fast.predict_proba(X), general.predict_proba(X))
    for key in ("train_loss", "train_batch_count"):
        assert fast.net_.history[:, key] == general.net_.history[:, key]


def test_fast_path_equals_vanilla_skorch(fast, data, module):
    """Vanilla skorch, same initial weights, optimizer, class weights and order."""
    X, y = (a.copy() for a in data)  # skorch warns on read-only rows
    w = compute_class_weight("balanced", classes=np.unique(y), y=y)
    vanilla = NeuralNetClassifier(
        copy.deepcopy(module),
        criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=torch.as_tensor(w, dtype=torch.float32),
        optimizer=torch.optim.Adam,
        lr=LR,
        max_epochs=EPOCHS,
        batch_size=BATCH,
        train_split=None,
        iterator_train__shuffle=False,
        verbose=0,
        **{
            f"optimizer__{k}": v
            for k, v in fast_optimizer_kwargs(torch.optim.Adam, "cpu").items()
        },
    ).fit(X, y)
    np.testing.assert_array_equal(fast.predict(X), vanilla.predict(X))
    np.testing.assert_allclose(
        fast.predict_proba(X), vanilla.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        fast.net_.history[:, "train_loss"],
        vanilla.history[:, "train_loss"],
        rtol=1e-5,
    )
    # every batch is recorded, with a float loss and its size, as skorch does
    assert (
        fast.net_.history[:, "batches", :, "train_batch_size"]
        == (vanilla.history[:, "batches", :, "train_batch_size"])
    )
    losses = fast.net_.history[:, "batches", :, "train_loss"]
    assert all(isinstance(v, float) for epoch in losses for v in epoch)


class _Recorder(Callback):
    """Counts batch events and the module's mode at each."""

    def initialize(self):
        self.events = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        self.events.append(("begin", training, net.module_.training))

    def on_grad_computed(self, net, named_parameters, batch=None, **kwargs):
        grads = [p.grad is not None for _, p in named_parameters]
        again = [n for n, _ in named_parameters]  # TeeGenerator: iterable twice
        self.events.append(("grad", all(grads) and len(again) == len(grads), True))

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        self.events.append(("end", training, net.module_.training))


def test_callbacks_hear_every_batch_event(data):
    X, y = data
    rec = _Recorder()
    clf = WeightedNeuralNetClassifier(
        module__hidden_units=(8,),
        module__dropout=0.2,
        max_epochs=2,
        batch_size=64,
        lr=LR,
        random_state=0,
        train_split=ValidSplit(0.2, stratified=True, random_state=0),
        callbacks=[rec],
    ).fit(X, y)
    history = clf.net_.history
    n_train = sum(history[:, "train_batch_count"])
    n_valid = sum(history[:, "valid_batch_count"])
    kinds = [e[0] for e in rec.events]
    assert kinds.count("begin") == kinds.count("end") == n_train + n_valid
    assert kinds.count("grad") == n_train
    assert all(ok for kind, ok, _ in rec.events if kind == "grad")
    # dropout on in every training step, off in every validation step (as in
    # skorch, the mode is set by the step, so checked at on_batch_end)
    for kind, training, module_training in rec.events:
        if kind == "end":
            assert module_training == training
    assert all(np.isfinite(history[:, "valid_loss"]))


def test_loss_shortcut_matches_the_weighted_mean():
    torch.manual_seed(0)
    logits = torch.randn(20, 3, requires_grad=True)
    target = torch.randint(0, 3, (20,))
    loss = WeightedCrossEntropyLoss(weight=[0.5, 2.0, 4.0])
    per_sample = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    w = loss.weight[target]
    torch.testing.assert_close(loss(logits, target), (w * per_sample).sum() / w.sum())
    # in-place changes of the weights are seen (the positivity check is cached)
    loss.weight.mul_(0.0)
    assert loss(logits, target).item() == 0.0  # all-zero weights: 0, not NaN
    loss.weight.copy_(torch.tensor([0.0, 1.0, 1.0]))
    only_zero = target == 0
    assert loss(logits[only_zero], target[only_zero]).item() == 0.0


# -- the benchmark script stays runnable -----------------------------------------
def _bench():
    path = Path(__file__).parents[1] / "benchmarks" / "bench_fit.py"
    spec = importlib.util.spec_from_file_location("bench_fit", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_benchmark_script_smoke(tmp_path, capsys, monkeypatch):
    bench = _bench()
    monkeypatch.setattr(bench, "warm_up", lambda contenders: None)
    out = tmp_path / "bench.md"
    # the script sets torch's and BLAS's thread counts for the process (its
    # --threads); give the later tests theirs back
    threads = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS limits on exit
        try:
            bench.main(
                [
                    "--rows", "400", "--epochs", "1", "--repeats", "1",
                    "--batch-sizes", "64", "256", "--scaling-rows", "200", "400",
                    "--no-memory", "--threads", "1", "--markdown", str(out),
                    "--device", "cpu",
                ]
            )  # fmt: skip
        finally:
            torch.set_num_threads(threads)
    text = out.read_text()
    for contender in bench.CONTENDERS:
        assert f"| 256 | {contender} |" in text
    assert "skorch time / skweighted time | 256" in text
    assert "| 400 |" in text  # scaling table
    assert "all on cpu: **yes**" in text
    assert "bfloat16 autocast fit with class weights" in text


def test_benchmark_gpu_section_skips_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the section runs instead")
    bench = _bench()
    report = bench.Report()
    bench.section_device(bench.parse_args(["--device", "cuda", "--quick"]), report)
    assert "CUDA is not available" in report.parts[0]

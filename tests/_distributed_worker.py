"""The processes of tests/test_distributed.py: ``python _distributed_worker.py OUT
[gloo|nccl] [--report]`` (``--report`` prints the parameter differences).

Spawns two processes joined in a gloo process group; each fits the
scenarios of :data:`SCENARIOS` data-parallel and writes what it got to
``OUT/rank{r}.npz`` (parameters, predictions, histories) and
``OUT/rank{r}.json`` (errors, dtypes, the rows a Dataset served). The test
compares them with single-process fits in its own process. One launch for
every check keeps the test in a few seconds (starting processes is the cost).
"""

import json
import os
import pickle
import socket
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from skorch.callbacks import Checkpoint

# the checkout's skweighted, whichever one is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORLD = 2


def data():
    """Rows whose classes alternate by position, so that with the rows in
    order rank 0 (even positions) holds nearly all the rare classes and
    rank 1 nearly none: the shards' class mixes differ."""
    rng = np.random.default_rng(0)
    n = 96
    y = np.zeros(n, dtype=np.int64)
    y[0:48:4] = 1  # rank 0's rows (even positions): 1 in 2 is rare
    y[2:48:4] = 2
    y[49] = 1  # rank 1's rows: one rare row
    X = rng.normal(size=(n, 5)).astype(np.float32) + y[:, None].astype(np.float32)
    w = rng.uniform(0.5, 2.0, size=n)
    return X, y, w


def multilabel_data():
    X, y, _ = data()
    Y = np.stack([y == 1, y == 2, (y == 0) & (np.arange(len(y)) % 3 == 0)], axis=1)
    return X, Y.astype(np.int64)


#: name -> (estimator parameters, fit keywords); batch_size is per process.
#: The test fits each in one process with batch_size * WORLD.
BASE = dict(
    optimizer=torch.optim.SGD,
    lr=0.2,
    max_epochs=3,
    batch_size=8,
    random_state=0,
    class_weight="balanced",
    iterator_train__shuffle=False,
)
SCENARIOS = {
    "weighted_mean": dict(BASE),
    "mean": dict(BASE, criterion__normalization="mean"),
    "focal_sample_weight": dict(BASE, criterion="focal", sample_weight=True),
    "balanced_sampler_accumulate": dict(
        BASE,
        class_weight="inverse_sqrt",
        sampler="balanced",
        iterator_train__shuffle=True,
        accumulate_grad_batches=2,
        batch_size=4,
    ),
    "per_batch": dict(BASE, class_weight="per_batch"),
    # 81 rows: rank 0 has 41 (6 batches), rank 1 has 40 (5 batches, and a filler)
    "uneven": dict(BASE, rows=81),
    "dataset": dict(BASE, dataset=True),
    "dict": dict(BASE, dict_input=True),
    "multilabel": dict(BASE, multilabel=True),
}


def make(name, **extra):
    """The estimator and fit data of a scenario (shared with the test)."""
    from skweighted import WeightedNeuralNetClassifier
    from skweighted.class_weight import PerBatch
    from skweighted.losses import FocalLoss

    params = {**SCENARIOS[name], **extra}
    use_sw = params.pop("sample_weight", False)
    as_dataset = params.pop("dataset", False)
    multilabel = params.pop("multilabel", False)
    dict_input = params.pop("dict_input", False)
    rows = slice(params.pop("rows", None))
    if params.get("criterion") == "focal":
        params["criterion"] = FocalLoss
    if params.get("class_weight") == "per_batch":
        params["class_weight"] = PerBatch("balanced")
    X, y, w = data()
    if multilabel:
        X, y = multilabel_data()
    fit = {"X": X[rows], "y": y[rows], "sample_weight": w[rows] if use_sw else None}
    if dict_input:  # two inputs: the features and a token id per row
        params["module"] = TwoInputs
        fit["X"] = {
            "x": fit["X"],
            "token": (fit["y"] * 2 + np.arange(len(fit["y"])) % 2),
        }
    if as_dataset:
        fit["X"] = RecordingDataset(fit["X"])
    return WeightedNeuralNetClassifier(**params), fit


class TwoInputs(torch.nn.Module):
    """A module whose forward takes a dict's arrays by name."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.embed = torch.nn.Embedding(6, 2)
        self.out = torch.nn.Linear(5 + 2, n_classes)

    def forward(self, x, token):
        return self.out(torch.cat([x, self.embed(token)], dim=1))


class ZeroOnTrainEnd(Checkpoint):
    """A checkpoint-like callback (rank 0 alone runs those) that zeroes the
    module's parameters when training ends, instead of writing files."""

    def on_epoch_end(self, net, **kwargs):
        pass

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for p in net.module_.parameters():
                p.zero_()


class RecordingDataset(torch.utils.data.Dataset):
    """A Dataset that records which rows it served."""

    def __init__(self, X):
        self.X = X
        self.served = []

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.served.append(int(i))
        return torch.from_numpy(self.X[i])


def parameters(clf):
    return torch.cat([p.detach().reshape(-1) for p in clf.net_.module_.parameters()])


def _errors(rank, out):
    from skweighted import WeightedNeuralNetClassifier
    from skweighted.sampling import DistributedClassBalancedSampler

    X, y, _ = data()
    errors = {}

    def attempt(key, **kwargs):
        fit_y = kwargs.pop("fit_y", y)
        try:
            WeightedNeuralNetClassifier(max_epochs=1, **kwargs).fit(X, fit_y)
        except (ValueError, TypeError) as exc:
            errors[key] = f"{type(exc).__name__}: {exc}"
        else:
            errors[key] = None

    y_other = y.copy()
    y_other[-1] = 2
    attempt("y_differs", fit_y=y_other if rank == 1 else y)
    sampler = DistributedClassBalancedSampler(y, num_replicas=3, rank=0, seed=0)
    attempt("num_replicas", iterator_train__sampler=sampler)
    attempt("cuda", device="cuda" if rank == 1 else "cpu")
    attempt("unknown_criterion", criterion=torch.nn.MultiMarginLoss)
    return errors


def run(rank, out, port, backend):
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    if backend == "nccl":
        torch.cuda.set_device(rank)
        BASE["device"] = "cuda"
        for params in SCENARIOS.values():
            params["device"] = "cuda"
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    out = Path(out)
    arrays, info = {}, {}
    for name in SCENARIOS:
        clf, fit = make(name)
        clf.fit(fit["X"], fit["y"], sample_weight=fit["sample_weight"])
        arrays[f"{name}/params"] = parameters(clf).numpy()
        arrays[f"{name}/loss"] = np.array(clf.net_.history[:, "train_loss"])
        if name == "dataset":
            info["served"] = fit["X"].served
    # the naive per-shard weighted mean: each process divides by its own
    # sum of weights (and DDP averages): the trap the exact loss avoids
    from skweighted import _distributed

    exact = _distributed.loss_scales
    _distributed.loss_scales = naive_scales
    clf, fit = make("weighted_mean")
    clf.fit(fit["X"], fit["y"])
    arrays["naive/params"] = parameters(clf).numpy()
    _distributed.loss_scales = exact
    # predict on every rank, and a pickle of the fitted model
    clf, fit = make("weighted_mean", verbose=1)
    print(f"rank {rank} verbose fit begins", flush=True)
    clf.fit(fit["X"], fit["y"])
    sys.stdout.flush()
    arrays["predict_proba"] = clf.predict_proba(fit["X"])
    if rank == 0:
        (out / "model.pkl").write_bytes(pickle.dumps(clf))
    info["module_type"] = type(clf.net_.module_).__name__
    # a callback that only rank 0 runs changes the model at the end of
    # training: every rank ends with rank 0's model
    clf, fit = make("weighted_mean", callbacks=[ZeroOnTrainEnd()])
    clf.fit(fit["X"], fit["y"])
    arrays["rank0_callback/params"] = parameters(clf).numpy()
    # afterwards the model trains alone too (no DDP hook is left behind)
    if rank == 0:
        clf.set_params(data_parallel=False, warm_start=True, max_epochs=1)
        clf.fit(fit["X"], fit["y"])
        info["alone_after"] = len(clf.net_.history)
    dist.barrier()
    # mixed precision: bf16 autocast, the class weights stay float32
    clf, fit = make("weighted_mean")
    with torch.autocast(BASE.get("device", "cpu"), dtype=torch.bfloat16):
        clf.fit(fit["X"], fit["y"])
    info["autocast_weight_dtype"] = str(clf.net_.criterion_.weight.dtype)
    info["autocast_loss"] = clf.net_.history[-1, "train_loss"]
    if backend == "gloo":
        info["errors"] = _errors(rank, out)
    np.savez(out / f"rank{rank}.npz", **arrays)
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    dist.destroy_process_group()
    # everything is written: leave without the interpreter's teardown, in
    # which a gloo thread still joinable can abort the process ("terminate
    # called without an active exception", seen once in a whole-suite run)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def single_process(name, **extra):
    """The scenario fitted in this process on the same global batches."""
    params = SCENARIOS[name]
    batch_size = params["batch_size"] * WORLD
    batch_size *= params.get("accumulate_grad_batches", 1)
    clf, fit = make(name, batch_size=batch_size, accumulate_grad_batches=1, **extra)
    return clf.fit(fit["X"], fit["y"], sample_weight=fit["sample_weight"])


#: variants of the accumulation comparison (make()'s options)
ACCUMULATION = {
    "weighted_mean": {},
    "mean": {"criterion__normalization": "mean"},
    "sample_weight": {"sample_weight": True},
    "torch_cross_entropy": {"criterion": torch.nn.CrossEntropyLoss},
    "sampler": {"sampler": "balanced", "iterator_train__shuffle": True},
    "multilabel": {"multilabel": True},
}


def naive_scales(denominators, group):
    """Each micro-batch its own (per-shard) weighted mean, their mean per
    step: the usual recipe, in place of :func:`skweighted._distributed.loss_scales`."""
    return [1 / (len(denominators) * d.clamp_min(1e-30)) for d in denominators]


def accumulated(k, extra, naive=False):
    """The parameters after training ``k`` micro-batches of ``32 / k`` rows
    per step, in this process."""
    from skweighted import _distributed

    clf, fit = make(
        "weighted_mean", batch_size=32 // k, accumulate_grad_batches=k, **extra
    )
    exact = _distributed.loss_scales
    _distributed.loss_scales = naive_scales if naive else exact
    try:
        clf.fit(fit["X"], fit["y"], sample_weight=fit["sample_weight"])
    finally:
        _distributed.loss_scales = exact
    return parameters(clf).numpy()


def report(out):
    """Print the largest parameter difference of each scenario (and of the
    naive per-shard mean) from its single-process fit."""
    ranks = [np.load(Path(out) / f"rank{r}.npz") for r in range(WORLD)]
    print(f"{'scenario':30} max |data-parallel - one process| over ranks")
    for name in [*SCENARIOS, "naive"]:
        reference = single_process("weighted_mean" if name == "naive" else name)
        expected = parameters(reference).cpu().numpy()
        diff = max(np.max(np.abs(r[f"{name}/params"] - expected)) for r in ranks)
        print(f"{name:30} {diff:.2e}")
    print(f"{'accumulation':30} max |4 micro-batches of 8 - 1 batch of 32|")
    for name, extra in [*ACCUMULATION.items(), ("naive", {})]:
        diff = np.max(
            np.abs(accumulated(4, extra, name == "naive") - accumulated(1, extra))
        )
        print(f"{name:30} {diff:.2e}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    backend = sys.argv[2] if len(sys.argv) > 2 else "gloo"
    mp.spawn(run, args=(sys.argv[1], free_port(), backend), nprocs=WORLD)
    if "--report" in sys.argv:
        report(sys.argv[1])

"""Class-balanced samplers: the draw, reproducible epochs, shares among processes.

The statistical tests use a chi-square goodness-of-fit test at a fixed seed;
a correct sampler fails one with probability 0.001 (``ALPHA``) over the
seeds, and each test also shows that the same test rejects a wrong target.
"""

import datetime
import os
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from scipy.stats import chisquare
from skorch.callbacks import Callback

from skweighted import WeightedNeuralNetClassifier, sampling
from skweighted.class_weight import EffectiveNumber, PerBatch
from skweighted.sampling import (
    ClassBalancedSampler,
    DistributedClassBalancedSampler,
    draw_indices,
    epoch_seed,
)

ALPHA = 1e-3

# 3 classes, 100 / 30 / 6 rows, in a shuffled order
Y = np.random.default_rng(0).permutation(np.repeat(["a", "b", "c"], [100, 30, 6]))
COUNTS = np.array([100, 30, 6])


def _class_draws(indices, y=Y):
    return np.array([(y[indices] == c).sum() for c in ("a", "b", "c")])


def _target(weights):
    share = np.asarray(weights, float) * COUNTS
    return share / share.sum()


def _p_value(observed, target):
    observed = np.asarray(observed)
    return chisquare(observed, observed.sum() * np.asarray(target)).pvalue


# -- draw_indices ---------------------------------------------------------------


@pytest.mark.parametrize("max_rows", [sampling._MULTINOMIAL_MAX_ROWS, 4])
def test_draw_indices_with_replacement_follows_the_weights(monkeypatch, max_rows):
    # max_rows=4 takes the path torch.multinomial cannot (over 2**24 rows)
    monkeypatch.setattr(sampling, "_MULTINOMIAL_MAX_ROWS", max_rows)
    w = torch.tensor([0.0, 1.0, 2.0, 0.0, 3.0, 4.0])
    g = torch.Generator().manual_seed(1)
    idx = draw_indices(w, 20_000, generator=g)
    assert idx.dtype == torch.int64 and idx.shape == (20_000,)
    counts = torch.bincount(idx, minlength=6).numpy()
    assert counts[[0, 3]].sum() == 0  # zero weight, never drawn
    pos = counts[[1, 2, 4, 5]]
    assert _p_value(pos, [0.1, 0.2, 0.3, 0.4]) > ALPHA
    assert _p_value(pos, [0.25] * 4) < ALPHA  # the test can tell a wrong target


@pytest.mark.parametrize("max_rows", [sampling._MULTINOMIAL_MAX_ROWS, 4])
def test_draw_indices_without_replacement(monkeypatch, max_rows):
    monkeypatch.setattr(sampling, "_MULTINOMIAL_MAX_ROWS", max_rows)
    w = torch.tensor([1.0, 0.0, 2.0, 3.0, 4.0, 0.0])
    g = torch.Generator().manual_seed(2)
    idx = draw_indices(w, 4, replacement=False, generator=g)
    assert sorted(idx.tolist()) == [0, 2, 3, 4]  # distinct, no zero-weight row
    # the first row drawn follows the weights
    first = [
        int(draw_indices(w, 2, replacement=False, generator=g)[0]) for _ in range(3000)
    ]
    counts = np.bincount(first, minlength=6)[[0, 2, 3, 4]]
    assert _p_value(counts, [0.1, 0.2, 0.3, 0.4]) > ALPHA
    assert _p_value(counts, [0.25] * 4) < ALPHA


def test_draw_indices_accepts_arrays_and_is_seeded():
    w = np.array([1.0, 2.0, 3.0])
    a = draw_indices(w, 50, generator=torch.Generator().manual_seed(3))
    b = draw_indices(
        torch.from_numpy(w), 50, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b)
    assert draw_indices(w, 0).shape == (0,)


@pytest.mark.parametrize(
    "weights, n, kwargs, match",
    [
        ([[1.0, 2.0]], 3, {}, "1-D"),
        ([], 3, {}, "1-D"),
        ([1.0, -1.0], 3, {}, "non-negative"),
        ([1.0, float("nan")], 3, {}, "finite"),
        ([0.0, 0.0], 3, {}, "zero for every row"),
        ([1.0, 1.0], -1, {}, "num_samples"),
        ([1.0, 0.0, 1.0], 3, {"replacement": False}, "only 2 rows"),
    ],
)
def test_draw_indices_bad_input(weights, n, kwargs, match):
    with pytest.raises(ValueError, match=match):
        draw_indices(torch.tensor(weights), n, **kwargs)


def test_epoch_seed_separates_seeds_and_epochs():
    seeds = {epoch_seed(s, e) for s in range(5) for e in range(5)}
    assert len(seeds) == 25  # seed + epoch would give only 9
    assert all(0 <= s < 2**64 for s in seeds)


# -- ClassBalancedSampler -----------------------------------------------------


@pytest.mark.parametrize(
    "spec, weights",
    [
        ("balanced", 1.0 / COUNTS),
        ({"a": 1.0, "c": 10.0}, [1.0, 1.0, 10.0]),  # "b" not mentioned: 1
        ("inverse_sqrt", 1.0 / np.sqrt(COUNTS)),
        (None, [1.0, 1.0, 1.0]),
    ],
)
def test_class_frequencies_over_epochs_match_the_target(spec, weights):
    sampler = ClassBalancedSampler(Y, spec, seed=0)
    draws = np.concatenate([list(sampler) for _ in range(150)])  # 150 epochs
    assert len(draws) == 150 * len(Y)
    observed = _class_draws(draws)
    assert _p_value(observed, _target(weights)) > ALPHA
    wrong = _target([1.0, 1.0, 1.0]) if spec is not None else _target(1 / COUNTS)
    assert _p_value(observed, wrong) < ALPHA
    # within a class every row is equally likely
    rare = np.flatnonzero(Y == "c")
    per_row = np.array([(draws == i).sum() for i in rare])
    assert _p_value(per_row, np.full(len(rare), 1 / len(rare))) > ALPHA


def test_sampler_attributes_follow_the_resolver():
    sampler = ClassBalancedSampler(Y, EffectiveNumber(0.9), num_samples=40)
    assert sampler.classes_.tolist() == ["a", "b", "c"]
    expected = EffectiveNumber(0.9)(COUNTS)
    np.testing.assert_allclose(sampler.class_weight_, expected)
    np.testing.assert_allclose(
        sampler.weights.numpy(), expected[np.searchsorted(sampler.classes_, Y)]
    )
    assert len(sampler) == 40 and len(list(sampler)) == 40


def test_equal_seeds_equal_orders_and_epochs_reproduce():
    s1 = ClassBalancedSampler(Y, seed=7)
    s2 = ClassBalancedSampler(Y, seed=7)
    first = [list(s1) for _ in range(3)]
    assert first == [list(s2) for _ in range(3)]
    assert first[0] != first[1] != first[2]  # each iteration is the next epoch
    assert first[0] != list(ClassBalancedSampler(Y, seed=8))
    # set_epoch picks an epoch whatever was drawn before
    s2.set_epoch(1)
    assert list(s2) == first[1]
    assert s2.epoch == 2
    s2.set_epoch(5)
    fifth = list(s2)
    assert fifth not in first
    s1.set_epoch(5)
    assert list(s1) == fifth


def test_unseeded_sampler_follows_torch_manual_seed():
    torch.manual_seed(11)
    a = list(ClassBalancedSampler(Y))
    torch.manual_seed(11)
    b = list(ClassBalancedSampler(Y))
    assert a == b


def test_generator_advances_like_weighted_random_sampler():
    s1 = ClassBalancedSampler(Y, generator=torch.Generator().manual_seed(4))
    s2 = ClassBalancedSampler(Y, generator=torch.Generator().manual_seed(4))
    assert list(s1) == list(s2)
    s1.set_epoch(0)  # no effect: the generator's state has moved on
    assert list(s1) != list(ClassBalancedSampler(Y, generator=_gen(4)))
    with pytest.raises(ValueError, match="not both"):
        ClassBalancedSampler(Y, generator=_gen(4), seed=4)
    with pytest.raises(TypeError, match="generator"):
        ClassBalancedSampler(Y, generator=4)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_without_replacement_draws_distinct_rows():
    y = np.array([0] * 6 + [1] * 3 + [2] * 2)
    with pytest.raises(ValueError, match="num_samples=11 rows.*only 9 rows"):
        ClassBalancedSampler(y, {2: 0.0}, replacement=False)
    sampler = ClassBalancedSampler(
        y, {2: 0.0}, num_samples=9, replacement=False, seed=0
    )
    assert sorted(sampler) == list(range(9))


def test_sampler_does_not_touch_the_labels():
    y = Y.copy()
    ClassBalancedSampler(y, "balanced")
    np.testing.assert_array_equal(y, Y)
    t = torch.tensor([0, 1, 1, 1])
    sampler = ClassBalancedSampler(t, seed=0)
    assert sampler.classes_.tolist() == [0, 1] and torch.equal(
        t, torch.tensor([0, 1, 1, 1])
    )


# -- DistributedClassBalancedSampler ----------------------------------------------


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("num_replicas", [1, 2, 4])
def test_shares_are_disjoint_cover_the_draw_and_have_equal_lengths(
    num_replicas, drop_last, replacement
):
    n = len(Y)  # 136 rows; with a zero weight, 130 can be drawn without replacement
    spec = {"a": 1.0, "b": 3.0, "c": 0.0} if not replacement else "balanced"
    kw = dict(num_replicas=num_replicas, seed=3, drop_last=drop_last)
    shares = [
        DistributedClassBalancedSampler(Y, spec, rank=r, replacement=replacement, **kw)
        for r in range(num_replicas)
    ]
    available = n if replacement else 130
    rounded = available // num_replicas if drop_last else -(-available // num_replicas)
    assert {len(s) for s in shares} == {rounded}
    total = rounded * num_replicas
    for epoch in (0, 1):
        for s in shares:
            s.set_epoch(epoch)
        draw = shares[0].epoch_draw(epoch)
        assert all(torch.equal(draw, s.epoch_draw(epoch)) for s in shares[1:])
        assert len(draw) == total == shares[0].total_size
        lists = [list(s) for s in shares]
        assert all(len(x) == rounded for x in lists)
        # share r holds positions r, r + R, ... of the draw: disjoint positions
        # that together are the whole draw
        rebuilt = torch.empty(total, dtype=torch.int64)
        for r, x in enumerate(lists):
            rebuilt[r::num_replicas] = torch.tensor(x)
        assert torch.equal(rebuilt, draw)
        if not replacement:
            distinct = min(total, available)
            assert len(set(draw[:distinct].tolist())) == distinct
            assert not set(draw.tolist()) & set(np.flatnonzero(Y == "c"))
            # padding repeats the draw's first rows
            assert torch.equal(draw[distinct:], draw[: total - distinct])
    if num_replicas > 1:
        assert lists[0] != lists[1]


def test_distributed_draw_follows_the_target_and_the_seed():
    shares = [
        DistributedClassBalancedSampler(Y, "balanced", num_replicas=2, rank=r, seed=5)
        for r in (0, 1)
    ]
    draws = []
    for epoch in range(150):
        for s in shares:
            s.set_epoch(epoch)
        draws += [i for s in shares for i in s]
    assert _p_value(_class_draws(np.array(draws)), [1 / 3] * 3) > ALPHA
    other = DistributedClassBalancedSampler(Y, num_replicas=2, rank=0, seed=6)
    assert list(other) != list(
        DistributedClassBalancedSampler(Y, num_replicas=2, rank=0, seed=5)
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_replicas": 0, "rank": 0}, "num_replicas must be an int >= 1"),
        ({"num_replicas": 2.0, "rank": 0}, "num_replicas must be an int >= 1"),
        ({"num_replicas": 2, "rank": 2}, r"rank=2 is out of range.*\[0, 1\]"),
        ({"num_replicas": 2, "rank": -1}, r"rank=-1 is out of range"),
        ({"num_replicas": 2, "rank": "0"}, "rank must be an int"),
        ({"num_replicas": 2}, "process group, which is not initialised"),
        ({"rank": 0}, "process group, which is not initialised"),
        ({"num_replicas": 2, "rank": 0, "seed": -1}, "seed must be an int >= 0"),
        ({"num_replicas": 2, "rank": 0, "num_samples": 0}, "num_samples"),
        (
            {"num_replicas": 200, "rank": 0, "drop_last": True},
            "cannot give each of num_replicas=200",
        ),
        (
            {"num_replicas": 2, "rank": 0, "num_samples": 69, "replacement": False},
            "only 136 rows",
        ),
    ],
)
def test_distributed_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistributedClassBalancedSampler(Y, **kwargs)


@pytest.mark.parametrize(
    "labels, spec, error, match",
    [
        (
            Y,
            {"a": 1.0, "z": 2.0},
            ValueError,
            r"class_weight has keys that are not classes: \['z'\]",
        ),
        (Y, "nope", ValueError, "Unknown class_weight scheme 'nope'"),
        (Y, PerBatch(), ValueError, "PerBatch and Deferred"),
        (Y, 3, TypeError, "class_weight must be None"),
        (np.zeros((4, 2)), "balanced", ValueError, "labels must be 1-D"),
        (np.array([0.5, 1.5, 2.25]), "balanced", ValueError, "'continuous'"),
        (np.array([]), "balanced", ValueError, "labels is empty"),
    ],
)
@pytest.mark.parametrize("cls", ["single", "distributed"])
def test_bad_labels_and_specs(cls, labels, spec, error, match):
    with pytest.raises(error, match=match):
        if cls == "single":
            ClassBalancedSampler(labels, spec)
        else:
            DistributedClassBalancedSampler(labels, spec, num_replicas=2, rank=0)


def test_single_sampler_bad_sizes():
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        ClassBalancedSampler(Y, num_samples=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        ClassBalancedSampler(Y, seed=-2)
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        ClassBalancedSampler(Y).set_epoch(-1)


# -- two real processes -----------------------------------------------------------


def _ddp_worker(rank, init_file, out_dir):
    """Train a tiny model data-parallel with the sampler (one process per rank).

    Gradients are averaged with ``all_reduce`` (what ``DistributedDataParallel``
    does) and applied by hand: DDP and ``torch.optim`` import ``torch._dynamo``
    on first use, seconds of the test's time in each process.
    """
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        g = torch.Generator().manual_seed(0)  # the same data in both processes
        y = (torch.rand(120, generator=g) < 0.15).long()
        X = torch.randn(120, 4, generator=g) + y[:, None]
        data = torch.utils.data.TensorDataset(X, y, torch.arange(120))
        sampler = DistributedClassBalancedSampler(y, "balanced", seed=1)
        loader = torch.utils.data.DataLoader(data, batch_size=16, sampler=sampler)
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)  # the same initial weights in both
        draws, seen, losses = [], [], []
        for epoch in range(2):
            sampler.set_epoch(epoch)
            draws.append(sampler.epoch_draw(epoch))
            rows = []
            for Xb, yb, ib in loader:
                model.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(Xb), yb)
                loss.backward()
                with torch.no_grad():
                    for p in model.parameters():
                        dist.all_reduce(p.grad)
                        p -= 0.1 * p.grad / 2
                losses.append(loss.item())
                rows += ib.tolist()
            seen.append(rows)
        # the processes also compare their draws through the process group
        gathered = [torch.empty_like(draws[0]) for _ in range(2)]
        dist.all_gather(gathered, draws[0])
        torch.save(
            {
                "draws": draws,
                "seen": seen,
                "gathered": gathered,
                "losses": losses,
                "weight": model.weight.detach().clone(),
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_with_gloo_train_and_agree_on_the_draw(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    # fork where it exists: a spawned process imports torch and skweighted
    # anew (10-20 s on a loaded 2-core machine). The worker sets one thread
    # first, as PyTorch's DataLoader workers do after a fork.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    procs = mp.start_processes(
        _ddp_worker,
        args=(str(tmp_path / "init"), str(tmp_path)),
        nprocs=2,
        join=False,
        start_method=method,
    )
    deadline = time.monotonic() + 120  # never hang the suite
    while not procs.join(timeout=1):  # raises if a process failed
        if time.monotonic() > deadline:
            for p in procs.processes:
                p.terminate()
            pytest.fail("the two processes did not finish within 120 s")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for a, b in zip(r0["draws"], r1["draws"], strict=True):
        assert torch.equal(a, b)  # both processes computed the same draw
        assert len(a) == 120  # 60 rows each
    assert torch.equal(r0["gathered"][0], r0["gathered"][1])
    assert not torch.equal(r0["draws"][0], r0["draws"][1])  # set_epoch moved on
    # each process trained on its own half of each epoch's draw
    for epoch, draw in enumerate(r0["draws"]):
        assert r0["seen"][epoch] == draw[0::2].tolist()
        assert r1["seen"][epoch] == draw[1::2].tolist()
    assert len(r0["losses"]) == len(r1["losses"]) == 2 * 4  # 60 rows, batch 16
    assert np.isfinite(r0["losses"] + r1["losses"]).all()
    # the averaged gradients kept the two copies of the model equal
    torch.testing.assert_close(r0["weight"], r1["weight"])


# -- the estimator's sampler= ---------------------------------------------------


class _RowRecorder(Callback):
    """Records which rows (feature 0 holds the row number) each epoch trains on."""

    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_begin(self, net, batch, training, **kwargs):
        if training:
            Xb = batch[0]["X"] if isinstance(batch[0], dict) else batch[0]
            self.epochs[-1] += Xb[:, 0].long().tolist()


@pytest.mark.parametrize("spec", ["balanced", {"a": 1.0, "c": 20.0}])
def test_estimator_sampler_draws_what_the_public_sampler_draws(spec):
    X = np.column_stack([np.arange(len(Y)), np.zeros(len(Y))]).astype(np.float32)
    recorder = _RowRecorder()
    clf = WeightedNeuralNetClassifier(
        sampler=spec,
        max_epochs=3,
        batch_size=50,
        random_state=4,
        callbacks=[recorder],
        module__hidden_units=(),
    )
    # a warm fit goes on with epochs 3 and 4, and so does the sampler
    clf.fit(X, Y)
    clf.set_params(warm_start=True, max_epochs=2).fit(X, Y)
    (recorder,) = (c for _, c in clf.net_.callbacks_ if isinstance(c, _RowRecorder))
    sampler = ClassBalancedSampler(Y, spec, seed=clf.net_.plan_.seed)
    assert recorder.epochs == [list(sampler) for _ in range(5)]

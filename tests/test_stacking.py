"""The stacking engine: a stacked model equals its separate fit.

Every stackable kind of difference between models goes into one stack;
each stacked model's ``predict_proba`` and ``history`` losses must equal the
separate fit with the same seed and batch order. No timing here (see
``benchmarks/bench_stacking.py``).
"""

import pickle

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import NumAndTokens, dict_inputs
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import clone
from torch import nn

from skweighted import WeightedNeuralNetClassifier
from skweighted._stacking import StackJob, plan_chunks, stack_bytes, train_stack
from skweighted._stacking._schedule import PackedSchedule
from skweighted._stacking._session import Session
from skweighted.class_weight import Deferred, EffectiveNumber, InversePower, PerBatch
from skweighted.losses import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    LogitAdjustedLoss,
    RealWorldWeightCrossEntropyLoss,
    WeightedCrossEntropyLoss,
)
from skweighted.modules import CNN, MLP

TOL = 1e-4
COST = [[0.0, 1.0, 4.0], [2.0, 0.0, 1.0], [8.0, 3.0, 0.0]]
BASE = dict(
    max_epochs=3, batch_size=16, lr=0.01, random_state=0, module__hidden_units=(8,)
)


@pytest.fixture(scope="module")
def data(small_three):
    return small_three


def _net(**params):
    return WeightedNeuralNetClassifier(**{**BASE, **params})


def _cases(X, y):
    """(name, estimator, X_train, y_train, fit params): one stackable
    difference each."""
    sw = np.linspace(0.2, 3.0, len(y))
    fold = np.arange(len(y)) % 5 != 0
    return [
        ("none", _net(), X, y, {}),
        ("balanced", _net(class_weight="balanced"), X, y, {}),
        ("inverse", _net(class_weight="inverse"), X, y, {}),
        ("inverse_sqrt", _net(class_weight="inverse_sqrt"), X, y, {}),
        ("median_frequency", _net(class_weight="median_frequency"), X, y, {}),
        ("dict", _net(class_weight={0: 1.0, 1: 2.0, 2: 6.0}), X, y, {}),
        ("effective", _net(class_weight=EffectiveNumber(beta=0.99)), X, y, {}),
        ("power", _net(class_weight=InversePower(power=0.75)), X, y, {}),
        ("deferred", _net(class_weight=Deferred("balanced", start_epoch=1)), X, y, {}),
        ("callable", _net(class_weight=lambda y: {0: 1.0, 1: 1.5, 2: 2.0}), X, y, {}),
        ("sample_weight", _net(class_weight="balanced"), X, y, {"sample_weight": sw}),
        ("fold", _net(), X[fold], y[fold], {}),
        ("lr", _net(lr=0.03), X, y, {}),
        ("seed", _net(random_state=7), X, y, {}),
        ("sampler", _net(sampler="balanced"), X, y, {}),
        (
            "sampler+weights",
            _net(sampler="inverse_sqrt", class_weight="inverse_sqrt"),
            X,
            y,
            {},
        ),  # fmt: skip
        ("batch_size", _net(batch_size=50), X, y, {}),
        ("epochs", _net(max_epochs=2), X, y, {}),
        (
            "mean",
            _net(criterion__normalization="mean", class_weight="balanced"),
            X,
            y,
            {},
        ),  # fmt: skip
        (
            "adamw",
            _net(optimizer=torch.optim.AdamW, optimizer__weight_decay=0.1),
            X,
            y,
            {},
        ),  # fmt: skip
        (
            "sgd",
            _net(optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9),
            X,
            y,
            {},
        ),  # fmt: skip
        (
            "random_over",
            make_pipeline(RandomOverSampler(random_state=0), _net()),
            X,
            y,
            {},
        ),  # fmt: skip
        (
            "random_under",
            make_pipeline(RandomUnderSampler(random_state=0), _net()),
            X,
            y,
            {},
        ),  # fmt: skip
        ("smote", make_pipeline(SMOTE(random_state=0), _net()), X, y, {}),
        ("focal", _net(criterion=FocalLoss, class_weight="balanced"), X, y, {}),
        ("focal_gamma", _net(criterion=FocalLoss, criterion__gamma=0.5), X, y, {}),
        (
            "focal_mean",
            _net(criterion=FocalLoss, criterion__normalization="mean"),
            X,
            y,
            {"sample_weight": sw},
        ),  # fmt: skip
        # each fold's own class counts: one stack, the counts vmapped
        ("logit_adjusted", _net(criterion=LogitAdjustedLoss), X, y, {}),
        (
            "logit_adjusted_fold",
            _net(criterion=LogitAdjustedLoss),
            X[fold],
            y[fold],
            {},
        ),
        (
            "cost_matrix",
            _net(
                criterion=RealWorldWeightCrossEntropyLoss, criterion__cost_matrix=COST
            ),
            X,
            y,
            {},
        ),  # fmt: skip
        ("per_batch", _net(class_weight=PerBatch("balanced")), X, y, {}),
        (
            "per_batch_mean",
            _net(class_weight=PerBatch("inverse"), criterion__normalization="mean"),
            X,
            y,
            {"sample_weight": sw},
        ),  # fmt: skip
    ]


def _net_of(estimator):
    return estimator[-1] if hasattr(estimator, "steps") else estimator


@pytest.fixture(scope="module")
def stacked(data):
    cases = _cases(*data)
    session = Session()
    with session.recording():
        for _, est, X, y, params in cases:
            clone(est).fit(X, y, **params)
    session.train()
    with session.replaying():
        fitted = [clone(est).fit(X, y, **params) for _, est, X, y, params in cases]
    separate = [clone(est).fit(X, y, **params) for _, est, X, y, params in cases]
    return cases, fitted, separate, session.report()


def test_every_case_was_stacked(stacked):
    cases, _, _, report = stacked
    assert report["n_fits"] == report["n_stacked"] == len(cases)
    assert report["separate"] == []


NAMES = [c[0] for c in _cases(np.zeros((10, 5), np.float32), np.zeros(10, int))]


@pytest.mark.parametrize("name", NAMES)
def test_stacked_equals_separate_fit(stacked, data, name):
    cases, fitted, separate, _ = stacked
    i = NAMES.index(name)
    X = data[0]
    got, want = fitted[i], separate[i]
    np.testing.assert_allclose(
        got.predict_proba(X), want.predict_proba(X), atol=TOL, err_msg=name
    )
    h_got, h_want = _net_of(got).net_.history, _net_of(want).net_.history
    assert len(h_got) == len(h_want), name
    np.testing.assert_allclose(
        h_got[:, "train_loss"], h_want[:, "train_loss"], atol=TOL, err_msg=name
    )
    batches_got = [b["train_loss"] for epoch in h_got for b in epoch["batches"]]
    batches_want = [b["train_loss"] for epoch in h_want for b in epoch["batches"]]
    np.testing.assert_allclose(batches_got, batches_want, atol=TOL, err_msg=name)
    sizes = h_got[:, "batches", :, "train_batch_size"]
    assert sizes == h_want[:, "batches", :, "train_batch_size"], name
    assert set(h_got[-1]) == set(h_want[-1]), name


BINARY = {
    "bce": dict(criterion=BinaryCrossEntropyLoss),
    "bce_pos_weight": dict(
        criterion=BinaryCrossEntropyLoss, class_weight={"ok": 1, "fraud": 4}
    ),
    "bce_mean": dict(
        criterion=BinaryCrossEntropyLoss,
        class_weight="balanced",
        criterion__normalization="mean",
    ),
    "binary_focal": dict(criterion=BinaryFocalLoss, class_weight="balanced"),
    "binary_cost": dict(
        criterion=RealWorldWeightCrossEntropyLoss,
        criterion__fn_cost=5.0,
        criterion__fp_cost=1.0,
    ),
}


@pytest.fixture(scope="module")
def stacked_binary(binary):
    X, y = binary
    return _record_train_replay([(_net(**p), X, y) for p in BINARY.values()])


@pytest.mark.parametrize("name", BINARY)
def test_a_binary_criterion_stacked_equals_its_separate_fit(
    stacked_binary, binary, name
):
    fitted, separate, session = stacked_binary
    assert session.report()["n_stacked"] == len(BINARY), session.report()
    i = list(BINARY).index(name)
    np.testing.assert_allclose(
        fitted[i].predict_proba(binary[0]),
        separate[i].predict_proba(binary[0]),
        atol=TOL,
        err_msg=name,
    )
    np.testing.assert_allclose(
        fitted[i].net_.history[:, "train_loss"],
        separate[i].net_.history[:, "train_loss"],
        atol=TOL,
    )


MULTILABEL = {
    "none": {},
    "balanced": dict(class_weight="balanced"),
    "weighted_mean": dict(
        class_weight="balanced", criterion__normalization="weighted_mean"
    ),
    "sample_weight": dict(class_weight="balanced"),
}


@pytest.fixture(scope="module")
def stacked_multilabel():
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(80, 5, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    sw = np.linspace(0.5, 2.0, len(X))
    cases = [(_net(**p), X, Y) for p in MULTILABEL.values()]
    params = [{"sample_weight": sw} if n == "sample_weight" else {} for n in MULTILABEL]
    session = Session()
    with session.recording():
        for (est, X, Y), p in zip(cases, params):
            clone(est).fit(X, Y, **p)
    session.train()
    with session.replaying():
        fitted = [clone(e).fit(X, Y, **p) for (e, X, Y), p in zip(cases, params)]
    separate = [clone(e).fit(X, Y, **p) for (e, X, Y), p in zip(cases, params)]
    return X, fitted, separate, session.report()


@pytest.mark.parametrize("name", MULTILABEL)
def test_a_multilabel_fit_stacked_equals_its_separate_fit(stacked_multilabel, name):
    X, fitted, separate, report = stacked_multilabel
    assert report["n_stacked"] == len(MULTILABEL), report
    i = list(MULTILABEL).index(name)
    np.testing.assert_allclose(
        fitted[i].predict_proba(X), separate[i].predict_proba(X), atol=TOL
    )
    np.testing.assert_allclose(
        fitted[i].net_.history[:, "train_loss"],
        separate[i].net_.history[:, "train_loss"],
        atol=TOL,
    )


class _TokenBag(nn.Module):
    """Token ids into nn.Embedding, averaged over the sequence."""

    def __init__(self, n_classes, hidden_units=(4,), vocab=20):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden_units[0])
        self.out = nn.Linear(hidden_units[0], n_classes)

    def forward(self, X):
        return self.out(self.embedding(X).mean(1))


def _integer_inputs(X, kind):
    if kind == "token ids":
        return (np.abs(X[:, :4]) * 5).astype(np.int64) % 20
    return np.clip(X * 40 + 128, 0, 255).astype(np.uint8)  # the module scales


@pytest.mark.parametrize(
    "kind, params",
    [
        ("uint8 table", {}),  # the built-in MLP's own kernel
        ("uint8 images", dict(module=CNN, module__channels=(2,),
                              module__hidden_units=(4,))),
        ("token ids", dict(module=_TokenBag)),
    ],
)  # fmt: skip
def test_integer_inputs_stack(data, kind, params):
    X, y = data
    X = _integer_inputs(X, kind)
    if kind == "uint8 images":
        X = np.repeat(X, 4, axis=1)[:, :16].reshape(len(X), 1, 4, 4)
    _stacked_pair(params, X, y, kind)


def _stacked_pair(params, X, y, kind):
    """The fits of ``params`` with class_weight None and 'balanced' on ``X,
    y``, both stacked and each equal to its separate fit on
    ``predict_proba``: ``(stacked, separate)``."""
    cases = [(_net(**params, class_weight=cw), X, y) for cw in (None, "balanced")]
    fitted, separate, session = _record_train_replay(cases)
    assert session.report()["n_stacked"] == 2, session.report()
    for got, want in zip(fitted, separate):
        np.testing.assert_allclose(
            got.predict_proba(X), want.predict_proba(X), atol=TOL, err_msg=kind
        )
    return fitted, separate


class _NormedNumAndTokens(NumAndTokens):
    """Its float input through BatchNorm and dropout (each a layer the stack
    replaces; the dropout layer's input shape is found on a dict sample)."""

    def __init__(self, n_classes, hidden_units=(4,)):
        super().__init__(n_classes, hidden_units)
        dim = hidden_units[0]
        self.num = nn.Sequential(
            nn.Linear(5, dim, bias=False), nn.BatchNorm1d(dim), nn.Dropout(0.3)
        )


@pytest.mark.parametrize(
    "kind",
    [
        "two inputs",
        "two inputs, early stopping",
        "two inputs, dropout and batchnorm",
        "MLP by keyword",
    ],
)
def test_dict_inputs_stack(data, kind):
    X, y = data
    if kind == "MLP by keyword":  # the MLP's forward(X): vmap, not its kernel
        X, params = {"X": X}, dict(module=MLP, module__n_features_in=5)
    else:
        X = dict_inputs(X)
        module = _NormedNumAndTokens if "dropout" in kind else NumAndTokens
        params = dict(module=module, early_stopping="early" in kind)
    before = {k: v.copy() for k, v in X.items()}
    for got, want in zip(*_stacked_pair(params, X, y, kind)):
        h_got, h_want = got.net_.history, want.net_.history
        assert len(h_got) == len(h_want), kind
        for key in set(h_want[-1]) & {"train_loss", "valid_loss"}:
            np.testing.assert_allclose(
                h_got[:, key], h_want[:, key], atol=TOL, err_msg=kind
            )
    assert X.keys() == before.keys()  # the caller's dict and arrays as they were
    for key, value in before.items():
        np.testing.assert_array_equal(X[key], value)
        assert X[key].dtype == value.dtype


def test_a_dataset_input_trains_separately_with_its_reason(data):
    X, y = data
    dataset = torch.utils.data.TensorDataset(torch.tensor(X))  # X is read-only
    fitted, separate, session = _record_train_replay([(_net(), dataset, y)])
    report = session.report()
    assert report["n_stacked"] == 0, report
    assert report["separate"] == [
        "X is a TensorDataset, not an in-memory array or a dict of arrays: it "
        "trains as a separate fit"
    ]
    np.testing.assert_array_equal(
        fitted[0].predict_proba(X), separate[0].predict_proba(X)
    )


def test_a_stacked_model_is_an_ordinary_estimator(stacked, data):
    _, fitted, separate, _ = stacked
    clf = fitted[1]
    assert type(clf) is WeightedNeuralNetClassifier
    np.testing.assert_array_equal(clf.class_weight_, separate[1].class_weight_)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(
        again.predict_proba(data[0]), clf.predict_proba(data[0])
    )
    # the optimizer state is PyTorch's: a warm start continues as after a fit
    state = clf.net_.optimizer_.state_dict()["state"][0]
    want = separate[1].net_.optimizer_.state_dict()["state"][0]
    assert float(state["step"]) == float(want["step"])
    np.testing.assert_allclose(state["exp_avg_sq"], want["exp_avg_sq"], atol=1e-6)


def test_each_sgd_model_gets_the_optimizer_state_of_its_separate_fit(data):
    """SGD with and without momentum in one stack: each model's optimizer
    holds what its separate fit's holds (no momentum buffer without
    momentum), so a warm start goes on alike."""
    X, y = data
    nets = [
        _net(optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=m)
        for m in (0.0, 0.9)
    ]
    fitted, separate, session = _record_train_replay([(n, X, y) for n in nets])
    assert session.report()["n_stacked"] == 2
    for got, alone in zip(fitted, separate):
        state = got.net_.optimizer_.state_dict()["state"]
        want = alone.net_.optimizer_.state_dict()["state"]
        assert {k: set(v) for k, v in state.items()} == {
            k: set(v) for k, v in want.items()
        }
        for k, entries in want.items():
            for name, value in entries.items():
                np.testing.assert_allclose(state[k][name], value, atol=1e-5)


def test_different_seeds_give_different_models(stacked, data):
    cases, fitted, _, _ = stacked
    names = [c[0] for c in cases]
    a, b = fitted[names.index("none")], fitted[names.index("seed")]
    assert np.abs(a.predict_proba(data[0]) - b.predict_proba(data[0])).max() > 1e-3


# -- the engine on its own ------------------------------------------------------
def test_schedule_runs_each_model_through_its_own_steps():
    # model 0: epochs of 12 and 5 rows (3 + 2 steps of 4); model 1: 5 rows at
    # batch 2 (3 steps), its rows offset by 100; model 2: nothing to train
    orders = [[torch.arange(12), torch.arange(5)], [torch.arange(5)], []]
    sched = PackedSchedule(orders, [4, 2, 4], [0, 100, 0])
    assert sched.n_steps == 5 and sched.steps == [[3, 2], [3], []]
    assert [sched.n_active(s) for s in range(5)] == [2, 2, 2, 1, 1]
    assert sched.segments(2) == [(0, 2, 2), (2, 3, 2), (3, 5, 1)]
    rows, epoch = sched.window(2, 5, 2)  # across model 0's epochs
    assert epoch[0].tolist() == [0, 1, 1]
    assert rows[0, 0].tolist() == [8, 9, 10, 11]
    assert rows[0, 1].tolist() == [0, 1, 2, 3]  # epoch 2 starts afresh
    assert rows[0, 2].tolist() == [4, -1, -1, -1]  # its short last batch
    assert rows[1, 0].tolist() == [104, -1, -1, -1]  # batch 2, padded to 4
    assert (rows[1, 1:] == -1).all()  # after its last step
    whole, _ = sched.window(0, 5, 2)
    assert torch.equal(whole[:, 2:], rows)  # windows are slices of one layout
    with pytest.raises(ValueError, match="sorted"):
        PackedSchedule(orders[::-1], [4, 2, 4][::-1])


def _jobs(n_models, n_rows, epochs=2, batch_size=8, **mlp):
    g = torch.Generator().manual_seed(0)
    jobs = []
    for m in range(n_models):
        torch.manual_seed(m)
        module = MLP(4, 3, **{"hidden_units": (6,), **mlp})
        orders = [torch.randperm(n_rows - m, generator=g) for _ in range(epochs)]
        cw = torch.rand(3, generator=g) + 0.5
        jobs.append(StackJob(module, orders, batch_size, {"lr": 0.01}, cw))
    return jobs


def test_chunking_does_not_change_the_results():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    jobs = _jobs(5, 40)
    budget = 2 * stack_bytes(jobs[:1], X)
    assert stack_bytes(jobs, X) > budget
    assert plan_chunks(jobs, X, "cpu", budget) == [2, 2, 1]
    assert plan_chunks(jobs, X, "cpu", 1) == [1] * 5  # at least one model each
    roomy = 10 * stack_bytes(jobs, X)
    # every worker gets a share, even when the budget allows one chunk
    assert plan_chunks(jobs, X, "cpu", roomy, n_jobs=2) == [3, 2]
    assert plan_chunks(jobs, X, "cpu", roomy, n_jobs=8) == [1] * 5
    one = train_stack(jobs, X, y, memory_budget=roomy)
    with joblib.parallel_config(backend="threading"):  # chunks as joblib tasks
        in_parallel = train_stack(jobs, X, y, memory_budget=budget, n_jobs=2)
        per_worker = train_stack(jobs, X, y, memory_budget=roomy, n_jobs=2)
    in_turn = train_stack(jobs, X, y, memory_budget=budget)
    for chunked in (in_turn, in_parallel, per_worker):
        for a, b in zip(one, chunked, strict=True):
            for name in a.state_dict:
                torch.testing.assert_close(a.state_dict[name], b.state_dict[name])
            np.testing.assert_allclose(
                np.concatenate(a.batch_losses),
                np.concatenate(b.batch_losses),
                atol=1e-6,
            )


def test_a_record_holds_how_its_row_orders_are_drawn_not_their_rows(data):
    """Between its passes a search keeps each fit's seed, not every epoch's
    rows: the stack draws an epoch again when it reads it, the same rows.
    Without a seed (torch's global generator) they are drawn at once and
    kept, as int32."""
    X, y = data
    epochs, n = 40, len(X)
    session = Session()
    with session.recording():
        for seed in (0, None):
            WeightedNeuralNetClassifier(
                **{**BASE, "max_epochs": epochs, "random_state": seed}
            ).fit(X, y)
    seeded, unseeded = (r.job.orders for r in session.records.values())
    assert len(seeded) == len(unseeded) == epochs
    assert seeded.nbytes < 4 * n  # less than one epoch's rows
    assert unseeded.nbytes == 4 * n * epochs
    assert torch.equal(seeded[7], seeded[7])  # each read draws again
    assert not torch.equal(seeded[7], seeded[8])
    assert sorted(seeded[7].tolist()) == list(range(n))
    assert torch.equal(unseeded[3], unseeded[3])


def test_a_cnn_stack_on_a_cpu_is_chunked_by_its_largest_activation():
    """A chunk's largest activation stays under CPU_CONV_ACTIVATION (two
    models at least), whatever the memory budget allows."""
    from skweighted._stacking import _memory

    def jobs(side, n):
        module = CNN((1, side, side), 3)  # the first convolution: 16 channels
        return [StackJob(module, [torch.arange(10)], 64, {"lr": 0.01}, None)] * n

    roomy = 1 << 40
    per_model = 16 * 8 * 8 * 64 * 4  # one batch of the first layer's output
    assert _memory.CPU_CONV_ACTIVATION // per_model == 8
    assert plan_chunks(jobs(8, 12), torch.zeros(10, 1, 8, 8), "cpu", roomy) == [6, 6]
    big = torch.zeros(10, 1, 28, 28)
    assert plan_chunks(jobs(28, 5), big, "cpu", roomy) == [2, 2, 1]
    assert plan_chunks(_jobs(5, 10), torch.zeros(10, 4), "cpu", roomy) == [5]  # MLP


@pytest.mark.parametrize(
    "mlp",
    [
        {},
        {"hidden_units": ()},  # a linear model: the output layer alone
        {"hidden_units": (6, 5), "activation": nn.Tanh},
        {"hidden_units": (6, 5), "activation": nn.Sigmoid},
        {"hidden_units": (6,), "activation": lambda: nn.LeakyReLU(0.1)},
    ],
    ids=["relu", "linear", "tanh", "sigmoid", "leaky"],
)
def test_vmap_path_equals_the_batched_matmul_path(monkeypatch, mlp):
    from skweighted._stacking import _model

    g = torch.Generator().manual_seed(2)
    X, y = torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)
    jobs = _jobs(3, 30, **mlp)
    assert _model._is_plain_mlp(jobs[0].module)
    _same_as_through_vmap(monkeypatch, _model, "_is_plain_mlp", jobs, X, y)


def _same_as_through_vmap(monkeypatch, where, kernel, jobs, X, y):
    """The stack of ``jobs`` trains the same with its kernel (``kernel``:
    the function of module ``where`` that picks it) as through vmap."""
    fast = train_stack(jobs, X, y)
    monkeypatch.setattr(where, kernel, lambda module: None)
    generic = train_stack(jobs, X, y)
    for a, b in zip(fast, generic):
        for name in a.state_dict:
            torch.testing.assert_close(a.state_dict[name], b.state_dict[name])


def test_the_grouped_cnn_path_equals_the_vmap_path(monkeypatch):
    """The built-in CNN runs its models side by side on the channel axis
    (grouped convolutions); the same steps as vmap over the module."""
    from skweighted._stacking import _conv

    g = torch.Generator().manual_seed(3)
    X = torch.randn(30, 1, 6, 6, generator=g)
    y = torch.randint(0, 3, (30,), generator=g)
    jobs = []
    for m in range(3):
        torch.manual_seed(m)
        module = CNN((1, 6, 6), 3, channels=(3, 4), hidden_units=(5,))
        orders = [torch.randperm(30 - 2 * m, generator=g) for _ in range(2)]
        jobs.append(StackJob(module, orders, 8, {"lr": 0.01}, torch.rand(3) + 0.5))
    assert _conv.chain(jobs[0].module) is not None
    _same_as_through_vmap(monkeypatch, _conv, "chain", jobs, X, y)


def test_the_mlp_kernel_reuses_its_large_tensors_from_step_to_step():
    """The hidden layers' outputs and gradients and the gradient live in one
    workspace (a fresh megabyte-sized tensor each step cost page faults), and
    reusing it changes no number."""
    from skweighted._stacking._model import StackedModel

    g = torch.Generator().manual_seed(0)
    modules = [MLP(n_features_in=4, n_classes=3, hidden_units=(8, 6)) for _ in range(3)]
    X = torch.randn(3, 5, 4, generator=g)
    y = torch.randint(0, 3, (3, 5), generator=g)
    c = torch.rand(3, 5, generator=g)
    model = StackedModel(modules, torch.device("cpu"))
    loss, grad = model.loss_and_grad(X, y, c)
    first = (loss.clone(), grad.clone(), grad.data_ptr())
    loss, grad = model.loss_and_grad(X, y, c)
    assert grad.data_ptr() == first[2]
    assert torch.equal(loss, first[0]) and torch.equal(grad, first[1])
    # what autograd computes through the modules themselves
    for m, module in enumerate(modules):
        module.zero_grad()
        per_row = torch.nn.functional.cross_entropy(
            module(X[m]), y[m], reduction="none"
        )
        (c[m] * per_row).sum().backward()
        want = torch.cat([p.grad.reshape(-1) for p in module.parameters()])
        torch.testing.assert_close(grad[m], want)


class _Gated(nn.Module):
    """A user module (not the built-in MLP): the vmap path."""

    def __init__(self, n_features_in, n_classes):
        super().__init__()
        self.a = nn.Linear(n_features_in, 8)
        self.b = nn.Linear(n_features_in, 8)
        self.out = nn.Linear(8, n_classes)

    def forward(self, X):
        return self.out(torch.tanh(self.a(X)) * torch.sigmoid(self.b(X)))


def test_a_user_module_stacks_through_vmap(data):
    X, y = data
    ests = [
        WeightedNeuralNetClassifier(
            _Gated, max_epochs=3, batch_size=16, lr=0.01, random_state=s
        )
        for s in (0, 1)
    ]
    fitted, separate, session = _record_train_replay([(e, X, y) for e in ests])
    assert session.report()["n_stacked"] == 2
    for got, want in zip(fitted, separate):
        np.testing.assert_allclose(
            got.predict_proba(X), want.predict_proba(X), atol=TOL
        )


class _Normed(nn.Module):
    """Linear -> a normalisation layer -> ReLU -> dropout -> Linear."""

    def __init__(self, n_features_in, n_classes, norm="batch", p=0.3):
        super().__init__()
        norms = {
            "batch": lambda: nn.BatchNorm1d(8),
            "layer": lambda: nn.LayerNorm(8),
            "group": lambda: nn.GroupNorm(2, 8),
            "none": nn.Identity,
        }
        # no bias before a normalisation layer: it would get a gradient of 0
        # but for rounding, which Adam turns into steps (see _stacking._layers)
        self.body = nn.Sequential(
            nn.Linear(n_features_in, 8, bias=norm == "none"),
            norms[norm](),
            nn.ReLU(),
            nn.Dropout(p),
        )
        self.out = nn.Linear(8, n_classes)

    def forward(self, X):
        return self.out(self.body(X))


class _NormedCNN(nn.Module):
    """Conv -> BatchNorm2d -> ReLU -> Dropout2d -> Linear, on 1 x 4 x 4 images."""

    def __init__(self, n_classes):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
            nn.Dropout2d(0.25), nn.Flatten(), nn.Dropout(0.1),
        )  # fmt: skip
        self.out = nn.Linear(48, n_classes)

    def forward(self, X):
        return self.out(self.body(X))


class _TwoBlockCNN(nn.Module):
    """Two Conv(bias=False) -> BatchNorm2d -> ReLU -> MaxPool blocks, then
    Flatten -> Linear, on 1 x 4 x 4 images (the benchmark's deep CNN)."""

    def __init__(self, n_classes):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4, n_classes),
        )  # fmt: skip

    def forward(self, X):
        return self.net(X)


class _FunctionalCNN(nn.Module):
    """A forward written with functions between the layers: F.relu,
    ``x.view(x.size(0), -1)``; a grouped convolution, cumulative BatchNorm
    statistics, BatchNorm1d and dropout in the head."""

    def __init__(self, n_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding="same")
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)
        self.norm2 = nn.BatchNorm2d(4, momentum=None)
        self.fc = nn.Linear(16, 6, bias=False)
        self.norm = nn.BatchNorm1d(6)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(6, n_classes)

    def forward(self, X):
        x = self.pool(F.relu(self.conv1(X)))
        x = F.relu(self.norm2(self.conv2(x)))  # else norm2.bias feeds self.norm
        x = x.view(x.size(0), -1)
        return self.out(self.drop(torch.relu(self.norm(self.fc(x)))))


LAYERS = {
    "mlp dropout": dict(module__dropout=0.3),
    "batchnorm+dropout": dict(module=_Normed),
    "batchnorm": dict(module=_Normed, module__p=0.0),
    "layernorm+dropout": dict(module=_Normed, module__norm="layer"),
    "groupnorm": dict(module=_Normed, module__norm="group", module__p=0.0),
    "cnn batchnorm2d+dropout2d": dict(module=_NormedCNN),
    "cnn two blocks batchnorm2d": dict(module=_TwoBlockCNN),
    "cnn functional forward": dict(module=_FunctionalCNN),
    "cnn built-in dropout": dict(
        module=CNN,
        module__channels=(2, 3),
        module__hidden_units=(4,),
        module__dropout=0.3,
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", LAYERS)
def test_dropout_and_normalisation_layers_stack(data, name):
    """Each stacked fit draws its separate fit's dropout noise and keeps its
    own running statistics, over the real rows of its batches (a fold's
    short last batch, another batch size: padding in the stack)."""
    X, y = data
    params = LAYERS[name]
    base = BASE if "module" not in params else {
        k: v for k, v in BASE.items() if k != "module__hidden_units"
    }  # fmt: skip
    if name.startswith("cnn"):
        X = np.repeat(X, 4, axis=1)[:, :16].reshape(len(X), 1, 4, 4)
    fold = np.arange(len(y)) % 5 != 0
    variants = [
        dict(class_weight="balanced"),
        dict(batch_size=20, lr=0.02),
        dict(random_state=3),
    ]
    cases = [
        (WeightedNeuralNetClassifier(**{**base, **params, **v}), X, y) for v in variants
    ]
    cases.append((WeightedNeuralNetClassifier(**base, **params), X[fold], y[fold]))
    fitted, separate, session = _record_train_replay(cases)
    assert session.report()["n_stacked"] == len(cases), session.report()
    for got, want in zip(fitted, separate):
        np.testing.assert_allclose(
            got.predict_proba(X), want.predict_proba(X), atol=TOL, err_msg=name
        )
        np.testing.assert_allclose(
            got.net_.history[:, "train_loss"],
            want.net_.history[:, "train_loss"],
            atol=TOL,
        )
        for key, value in want.net_.module_.state_dict().items():
            torch.testing.assert_close(
                got.net_.module_.state_dict()[key], value, atol=TOL, rtol=0
            )


class _ResidualCNN(nn.Module):
    """A convolution with a skip connection: not a chain, so vmap runs it."""

    def __init__(self, n_classes, input_shape):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.out = nn.Linear(16 * input_shape[1] * input_shape[2], n_classes)

    def forward(self, X):
        return self.out((X + self.conv(X)).flatten(1))


class _ReflectCNN(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(),
            nn.Linear(32, n_classes),
        )  # fmt: skip

    def forward(self, X):
        return self.net(X)


@pytest.mark.parametrize(
    "module, grouped",
    [
        (lambda: CNN((1, 8, 8), 3, dropout=0.2), True),
        (lambda: _TwoBlockCNN(3), True),
        (lambda: _FunctionalCNN(3), True),
        (lambda: _NormedCNN(3), True),
        (lambda: _ResidualCNN(3, (1, 4, 4)), False),  # not a chain
        (lambda: _ReflectCNN(3), False),  # F.conv2d pads with zeros only
        (lambda: MLP(4, 3), False),  # no BatchNorm: the MLP kernel (or vmap)
        (lambda: _Normed(4, 3), True),  # Linear -> BatchNorm1d -> ReLU -> Dropout
        (lambda: _Normed(4, 3, norm="layer"), False),  # LayerNorm: vmap
    ],
    ids=["built-in", "two blocks", "functional", "dropout2d", "residual",
         "reflect padding", "mlp", "batchnorm mlp", "layernorm mlp"],
)  # fmt: skip
def test_which_networks_stack_as_grouped_convolutions(module, grouped):
    """The chains the grouped path runs: CNNs, and MLPs with BatchNorm1d
    (their head layers alone, on each model's rows, as bmm)."""
    from skweighted._stacking import _conv

    assert (_conv.chain(module()) is not None) is grouped


def test_a_cnn_only_vmap_runs_stacks_where_that_is_faster(data):
    """On a CPU, vmap over convolutions loses to separate fits once a batch's
    largest activation passes VMAP_CONV_BYTES: such fits train separately,
    with their reason; smaller ones stack, equal to their separate fits."""
    from skweighted._stacking._eligibility import VMAP_CONV_BYTES

    X, y = data
    base = {k: v for k, v in BASE.items() if k != "module__hidden_units"}
    small = np.repeat(X, 4, axis=1)[:, :16].reshape(len(X), 1, 4, 4)
    big = np.repeat(small, 4, axis=2).repeat(4, axis=3)  # 16 x 16
    assert 16 * 16 * 16 * 64 * 4 > VMAP_CONV_BYTES  # a batch of 64 at 16 x 16
    cases = [
        (WeightedNeuralNetClassifier(_ResidualCNN, **{**base, **v}), X_, y)
        for X_, v in [
            (small, {}),
            (small, {"class_weight": "balanced"}),
            (big, {"batch_size": 64}),
        ]
    ]
    fitted, separate, session = _record_train_replay(cases)
    report = session.report()
    assert report["n_stacked"] == 2, report
    assert len(report["separate"]) == 1
    assert "trains slower than separate fits on a CPU" in report["separate"][0]
    for (_, X_, _), got, want in zip(cases[:2], fitted, separate):
        np.testing.assert_allclose(
            got.predict_proba(X_), want.predict_proba(X_), atol=TOL
        )


def test_dropout_draws_from_the_fit_s_own_generator(data):
    """Torch's global generator neither decides a dropout fit's masks nor
    is moved by them."""
    X, y = data
    est = _net(module__dropout=0.5)
    torch.manual_seed(1)
    a = clone(est).fit(X, y).predict_proba(X)
    state = torch.get_rng_state()
    torch.manual_seed(2)
    b = clone(est).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    torch.manual_seed(1)
    clone(est).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_bias_feeding_batch_norm_trains_separately_under_adam(data):
    X, y = data
    base = {k: v for k, v in BASE.items() if k != "module__hidden_units"}
    biased = WeightedNeuralNetClassifier(_BiasedNorm, **base)
    sgd = clone(biased).set_params(optimizer=torch.optim.SGD)
    _, _, session = _record_train_replay([(biased, X, y), (sgd, X, y)])
    report = session.report()
    assert report["n_stacked"] == 1, report  # SGD's steps stay rounding-sized
    assert "'body.0' has a bias that feeds BatchNorm1d" in report["separate"][0]


class _BiasedNorm(_Normed):
    def __init__(self, n_features_in, n_classes):
        super().__init__(n_features_in, n_classes, p=0.0)
        self.body[0] = nn.Linear(n_features_in, 8)


def test_alpha_dropout_trains_separately_with_its_reason(small_three):
    from skweighted import model_selection as ms

    X, y = small_three
    est = WeightedNeuralNetClassifier(
        _AlphaDropped, max_epochs=2, batch_size=16, random_state=0
    )
    report = ms.cross_validate(est, X, y, cv=2, return_stacking=True)["stacking"]
    assert report["n_stacked"] == 0
    assert report["separate"] and all("AlphaDropout" in r for r in report["separate"])


class _AlphaDropped(nn.Module):
    def __init__(self, n_features_in, n_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features_in, 4), nn.AlphaDropout(0.2))
        self.out = nn.Linear(4, n_classes)

    def forward(self, X):
        return self.out(self.body(X))


def _scheduler(policy, **kwargs):
    from skorch.callbacks import LRScheduler

    return [LRScheduler(getattr(torch.optim.lr_scheduler, policy), **kwargs)]


SCHEDULES = {
    "step": dict(callbacks=_scheduler("StepLR", step_size=1, gamma=0.5)),
    "cosine": dict(callbacks=_scheduler("CosineAnnealingLR", T_max=3)),
    "cosine, other T_max": dict(callbacks=_scheduler("CosineAnnealingLR", T_max=5)),
    "one-cycle per batch": dict(
        callbacks=_scheduler(
            "OneCycleLR", max_lr=0.05, total_steps=30, step_every="batch"
        )
    ),
    "one-cycle sgd momentum": dict(
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        callbacks=_scheduler(
            "OneCycleLR", max_lr=0.1, total_steps=30, step_every="batch"
        ),
    ),
}


@pytest.fixture(scope="module")
def stacked_schedules(data):
    X, y = data
    cases = [(_net(class_weight="balanced", **p), X, y) for p in SCHEDULES.values()]
    return _record_train_replay(cases)


@pytest.mark.parametrize("name", SCHEDULES)
def test_each_model_trains_on_its_own_lr_schedule(stacked_schedules, data, name):
    fitted, separate, session = stacked_schedules
    assert session.report()["n_stacked"] == len(SCHEDULES), session.report()
    i = list(SCHEDULES).index(name)
    got, want = fitted[i], separate[i]
    np.testing.assert_allclose(
        got.predict_proba(data[0]), want.predict_proba(data[0]), atol=TOL
    )
    h_got, h_want = got.net_.history, want.net_.history
    if "batch" in name or "sgd" in name:
        lrs = h_want[:, "batches", :, "event_lr"]
        assert h_got[:, "batches", :, "event_lr"] == lrs
    else:
        assert h_got[:, "event_lr"] == h_want[:, "event_lr"]
    # the net's optimizer and callback end where the separate fit's do
    assert (
        got.net_.optimizer_.param_groups[0]["lr"]
        == want.net_.optimizer_.param_groups[0]["lr"]
    )


PLATEAUS = {
    "train_loss": dict(
        max_epochs=8,
        lr=0.1,
        callbacks=_scheduler("ReduceLROnPlateau", factor=0.5, patience=0),
    ),
    "valid_loss, early stopping": dict(
        max_epochs=30,
        lr=0.1,
        early_stopping=True,
        n_iter_no_change=3,
        callbacks=_scheduler(
            "ReduceLROnPlateau", monitor="valid_loss", factor=0.5, patience=0
        ),
    ),
    "train_loss, sgd, 2 models": dict(
        max_epochs=8,
        lr=0.2,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.5,
        callbacks=_scheduler(
            "ReduceLROnPlateau", factor=0.5, patience=0, threshold=0.3
        ),
    ),
}


@pytest.fixture(scope="module")
def stacked_plateaus(data):
    X, y = data
    cases = [(_net(class_weight="balanced", **p), X, y) for p in PLATEAUS.values()]
    # a second model on the last one's schedule, on other rows: the stack
    # steps each model's scheduler on its own score
    cases.append((cases[-1][0], X[20:], y[20:]))
    return _record_train_replay(cases)


@pytest.mark.parametrize("i", range(len(PLATEAUS) + 1))
def test_reduce_lr_on_plateau_steps_on_each_models_score(stacked_plateaus, data, i):
    fitted, separate, session = stacked_plateaus
    assert session.report()["n_stacked"] == len(PLATEAUS) + 1, session.report()
    got, want = fitted[i], separate[i]
    np.testing.assert_allclose(
        got.predict_proba(data[0]), want.predict_proba(data[0]), atol=TOL
    )
    lrs = want.net_.history[:, "event_lr"]
    assert got.net_.history[:, "event_lr"] == lrs
    assert len(set(lrs)) > 1  # the learning rate went down during the fit
    assert (
        got.net_.optimizer_.param_groups[0]["lr"]
        == want.net_.optimizer_.param_groups[0]["lr"]
    )
    scheduler = dict(got.net_.callbacks_)["LRScheduler"].lr_scheduler_
    wanted = dict(want.net_.callbacks_)["LRScheduler"].lr_scheduler_
    assert scheduler.num_bad_epochs == wanted.num_bad_epochs


@pytest.mark.parametrize(
    "params",
    [
        dict(callbacks=_scheduler("ReduceLROnPlateau", monitor="valid_loss")),
        dict(
            callbacks=_scheduler("ReduceLROnPlateau", step_every="batch"),
            early_stopping=True,
        ),
    ],
)
def test_a_plateau_a_stack_cannot_score_trains_separately(data, params):
    X, y = data
    session = Session()
    with session.recording():
        _net(**params).fit(X, y)
    (record,) = session.records.values()
    assert record.job is None and "ReduceLROnPlateau" in record.reason


def test_a_dask_backend_does_not_take_the_fits_out_of_the_session(data, dask_client):
    """Under ``parallel_config(backend="dask")`` even ``n_jobs=1`` goes to the
    workers, where no session is active: the passes keep their fits here."""
    from joblib import parallel_config

    from skweighted import model_selection as ms

    X, y = data
    local = ms.cross_validate(_net(), X, y, cv=3, return_stacking=True)
    with parallel_config(backend="dask"):
        remote = ms.cross_validate(_net(), X, y, cv=3, return_stacking=True)
    assert remote["stacking"]["n_stacked"] == local["stacking"]["n_stacked"] == 3
    np.testing.assert_array_equal(remote["test_score"], local["test_score"])


@pytest.mark.parametrize("callbacks_first", [True, False])
def test_a_fit_with_callbacks_is_told_apart_from_one_without(data, callbacks_first):
    """Callbacks make a fit train separately; a fit without them, otherwise
    the same, must not share its record (and so its reason), nor may the fit
    with callbacks load the stacked weights of the one without."""
    from skorch.callbacks import Callback

    X, y = data
    plain, hooked = _net(), _net(callbacks=[("noop", Callback())])
    fits = [hooked, plain] if callbacks_first else [plain, hooked]
    session = Session()
    with session.recording():
        for est in fits:
            clone(est).fit(X, y)
    session.train()
    with session.replaying():
        for est in fits:
            clone(est).fit(X, y)
    report = session.report()
    assert report["n_stacked"] == 1
    assert report["separate"] == ["callbacks ['Callback'] need a separate net"]


# -- fits that look alike but train differently (found in review) --------------
class _LeakyTenth(nn.LeakyReLU):
    """A LeakyReLU subclass: not the built-in kernel's, so the vmap path."""

    def __init__(self):
        super().__init__(0.1)


class _Frozen(_Gated):
    def __init__(self, n_features_in, n_classes):
        super().__init__(n_features_in, n_classes)
        self.b.weight.requires_grad_(False)


class _Unused(_Gated):
    def __init__(self, n_features_in, n_classes):
        super().__init__(n_features_in, n_classes)
        self.spare = nn.Linear(2, 2)


def _record_train_replay(cases):
    """Each ``(estimator, X, y)`` fitted in one session, and separately."""
    session = Session()
    with session.recording():
        for est, X, y in cases:
            clone(est).fit(X, y)
    session.train()
    with session.replaying():
        fitted = [clone(est).fit(X, y) for est, X, y in cases]
    separate = [clone(est).fit(X, y) for est, X, y in cases]
    return fitted, separate, session


PAIRS = {
    "activations": [dict(module__activation=nn.ReLU), dict(module__activation=nn.Tanh)],
    "criterion instances": [
        dict(criterion=WeightedCrossEntropyLoss(normalization="mean")),
        dict(criterion=WeightedCrossEntropyLoss()),
    ],
    "epochs with weights": [
        dict(class_weight="balanced", max_epochs=2),
        dict(class_weight="balanced", max_epochs=3),
    ],
    "leaky relu subclass": [dict(module__activation=_LeakyTenth), {}],
    "2-d samples": [{}, dict(class_weight=None)],
}


class _Shifted(_Gated):
    """A buffer its parameters and settings do not show: a class attribute."""

    shift = 0.0

    def __init__(self, n_features_in, n_classes):
        super().__init__(n_features_in, n_classes)
        self.register_buffer("offset", torch.full((n_features_in,), self.shift))

    def forward(self, X):
        return super().forward(X + self.offset)


class _HalfScale(_Gated):
    """A bfloat16 buffer: NumPy has no such dtype."""

    def __init__(self, n_features_in, n_classes):
        super().__init__(n_features_in, n_classes)
        self.register_buffer("scale", torch.ones(n_features_in, dtype=torch.bfloat16))

    def forward(self, X):
        return super().forward(X * self.scale.float())


def test_a_bfloat16_buffer_is_fingerprinted(data):
    X, y = data
    est = WeightedNeuralNetClassifier(
        _HalfScale, max_epochs=2, batch_size=16, lr=0.01, random_state=0
    )
    fitted, separate, session = _record_train_replay([(est, X, y)])
    assert session.report()["n_stacked"] == 1, session.report()
    np.testing.assert_allclose(
        fitted[0].predict_proba(X), separate[0].predict_proba(X), atol=TOL
    )


def test_fits_whose_buffers_differ_get_their_own_results(data, monkeypatch):
    X, y = data
    session = Session()
    est = WeightedNeuralNetClassifier(
        _Shifted, max_epochs=3, batch_size=16, lr=0.01, random_state=0
    )
    fitted, separate = [], []
    for mode in ("record", "replay"):
        for shift in (0.0, 3.0):
            monkeypatch.setattr(_Shifted, "shift", shift)
            with getattr(session, f"{mode}ing")():
                fit = clone(est).fit(X, y)
            if mode == "replay":
                fitted.append(fit)
                separate.append(clone(est).fit(X, y))
        if mode == "record":
            session.train()
    assert session.report()["n_stacked"] == 2, session.report()
    for got, want in zip(fitted, separate):
        np.testing.assert_allclose(
            got.predict_proba(X), want.predict_proba(X), atol=TOL
        )


@pytest.mark.parametrize("name", PAIRS)
def test_fits_that_differ_get_their_own_results(data, name):
    X, y = data
    if name == "2-d samples":  # the MLP flattens each sample
        X = X[:, :4].reshape(len(X), 2, 2)
    cases = [
        (_net(**{"class_weight": "balanced", **params}), X, y) for params in PAIRS[name]
    ]
    fitted, separate, session = _record_train_replay(cases)
    assert session.report()["n_stacked"] == len(cases), session.report()
    for got, want in zip(fitted, separate):
        np.testing.assert_allclose(
            got.predict_proba(X), want.predict_proba(X), atol=TOL, err_msg=name
        )


@pytest.mark.parametrize(
    "module, X_kind, reason",
    [
        (_Frozen, "float", "is frozen"),
        (_Unused, "float", "not used by forward"),
    ],
)
def test_what_a_stack_would_get_wrong_trains_separately(data, module, X_kind, reason):
    X, y = data
    est = (
        _net()
        if module is None
        else WeightedNeuralNetClassifier(
            module, max_epochs=3, batch_size=16, lr=0.01, random_state=0
        )
    )
    fitted, separate, session = _record_train_replay([(est, X, y)])
    report = session.report()
    assert report["n_stacked"] == 0 and reason in report["separate"][0], report
    np.testing.assert_array_equal(
        fitted[0].predict_proba(X), separate[0].predict_proba(X)
    )


def test_recording_a_threshold_search_scores_two_thresholds(binary):
    """A recording's networks are untrained: scoring 100 thresholds on their
    predictions was waste. The recorded fits are the same, so every fit of the
    real pass finds its trained record."""
    from sklearn.metrics import balanced_accuracy_score, make_scorer
    from sklearn.model_selection import TunedThresholdClassifierCV

    from skweighted._recording import record_fits

    X, y = binary
    thresholds = []

    def score(y_true, y_pred):
        thresholds.append(1)
        return balanced_accuracy_score(y_true, y_pred)

    tuned = TunedThresholdClassifierCV(
        _net(), scoring=make_scorer(score), cv=2, thresholds=20
    )
    splits = [(np.arange(len(y)) % 3 != k, np.arange(len(y)) % 3 == k) for k in (0, 1)]
    splits = [(np.flatnonzero(a), np.flatnonzero(b)) for a, b in splits]
    session = Session()
    record_fits(session, tuned, X, y, splits)
    assert len(thresholds) == 2 * 2 * 2  # 2 thresholds x 2 inner folds x 2 splits
    assert tuned.thresholds == 20  # the caller's estimator is not modified
    session.train()
    thresholds.clear()
    with session.replaying():
        for train, _ in splits:
            clone(tuned).fit(X[train], y[train])
    assert len(thresholds) == 20 * 2 * 2
    report = session.report()
    assert report["n_fits"] == report["n_stacked"] == 2 * 3, report  # 2 inner + refit


def test_a_frozen_threshold_search_does_not_stop_the_recording(binary):
    """FrozenEstimator shows its inner estimator's parameters but takes
    none: lowering its thresholds must not lose the recording."""
    frozen = pytest.importorskip("sklearn.frozen")
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import TunedThresholdClassifierCV

    from skweighted._recording import record_fits

    X, y = binary
    tuned = TunedThresholdClassifierCV(LogisticRegression(), cv=2).fit(X, y)
    stack = StackingClassifier(
        [("frozen", frozen.FrozenEstimator(tuned)), ("net", _net())], cv=2
    )
    session = Session()
    marks = record_fits(
        session, stack, X, y, [(np.arange(0, 200), np.arange(200, 240))]
    )
    assert marks is not None and len(session.records) == 3  # 2 folds + refit

"""Every loss against a hand-written per-sample reference, PyTorch built-ins,
gradcheck, device moves, scale invariance, and decision rules."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from skweighted import (
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    LogitAdjustedLoss,
    RealWorldWeightCrossEntropyLoss,
    WeightedCrossEntropyLoss,
)
from skweighted.losses._base import n_outputs, proba_function

# -- a fixed batch --------------------------------------------------------
Z3 = [
    [2.0, -1.0, 0.5],
    [0.1, 0.2, 0.3],
    [-3.0, 4.0, 1.0],
    [1.5, 1.5, -2.0],
    [0.0, -0.5, 2.5],
    [5.0, -5.0, 0.0],
]
Y3 = [0, 2, 1, 1, 2, 0]
W3 = [0.5, 2.0, 3.0]
Z1 = [[0.5], [-1.2], [2.0], [-3.0], [0.0], [4.0]]
Y1 = [1, 0, 1, 1, 0, 0]
W2 = [0.7, 3.0]
SW = [1.0, 0.5, 2.0, 0.0, 1.5, 1.0]
COST3 = [[0.0, 1.0, 4.0], [2.0, 0.0, 1.0], [10.0, 3.0, 0.0]]
COUNTS3 = [50.0, 30.0, 5.0]


# -- the per-sample formulas, written plainly -----------------------------
def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def _sigmoid(z):
    return 1 / (1 + math.exp(-z))


def ref_ce(z, y):
    return -math.log(_softmax(z)[y])


def ref_focal(gamma):
    def loss(z, y):
        p = _softmax(z)[y]
        return -((1 - p) ** gamma) * math.log(p)

    return loss


def ref_bce(z, y):
    p = _sigmoid(z[0])
    return -math.log(p) if y == 1 else -math.log(1 - p)


def ref_binary_focal(gamma):
    def loss(z, y):
        p1 = _sigmoid(z[0])
        p = p1 if y == 1 else 1 - p1
        return -((1 - p) ** gamma) * math.log(p)

    return loss


def ref_rwwce(cost):
    def loss(z, y):
        p = _softmax(z)
        return -sum(cost[y][k] * math.log(1 - p[k]) for k in range(len(z)) if k != y)

    return loss


def ref_logit_adjusted(counts, tau):
    def loss(z, y):
        prior = [c / sum(counts) for c in counts]
        adjusted = [zk + tau * math.log(pk) for zk, pk in zip(z, prior)]
        return -math.log(_softmax(adjusted)[y])

    return loss


def ref_reduce(losses, v, normalization):
    total = sum(vi * li for vi, li in zip(v, losses))
    return total / (sum(v) if normalization == "weighted_mean" else len(losses))


# name -> (factory(weight, normalization), Z, Y, class weights, reference)
LOSSES = {
    "ce": (
        lambda w, n: WeightedCrossEntropyLoss(weight=w, normalization=n),
        Z3,
        Y3,
        W3,
        ref_ce,
    ),
    "bce": (
        lambda w, n: BinaryCrossEntropyLoss(weight=w, normalization=n),
        Z1,
        Y1,
        W2,
        ref_bce,
    ),
    "focal": (
        lambda w, n: FocalLoss(weight=w, gamma=2.0, normalization=n),
        Z3,
        Y3,
        W3,
        ref_focal(2.0),
    ),
    "focal_half": (
        lambda w, n: FocalLoss(weight=w, gamma=0.5, normalization=n),
        Z3,
        Y3,
        W3,
        ref_focal(0.5),
    ),
    "binary_focal": (
        lambda w, n: BinaryFocalLoss(weight=w, gamma=1.5, normalization=n),
        Z1,
        Y1,
        W2,
        ref_binary_focal(1.5),
    ),
    "rwwce": (
        lambda w, n: RealWorldWeightCrossEntropyLoss(COST3, weight=w, normalization=n),
        Z3,
        Y3,
        W3,
        ref_rwwce(COST3),
    ),
    "rwwce_binary": (
        lambda w, n: RealWorldWeightCrossEntropyLoss(
            fn_cost=5.0, fp_cost=0.5, weight=w, normalization=n
        ),
        [[0.0, z[0]] for z in Z1],
        Y1,
        W2,
        ref_rwwce([[0.0, 0.5], [5.0, 0.0]]),
    ),
    "logit_adjusted": (
        lambda w, n: LogitAdjustedLoss(COUNTS3, tau=1.0, weight=w, normalization=n),
        Z3,
        Y3,
        W3,
        ref_logit_adjusted(COUNTS3, 1.0),
    ),
}


def _batch(name, dtype=torch.float64):
    _, z, y, _, _ = LOSSES[name]
    return torch.tensor(z, dtype=dtype), torch.tensor(y)


@pytest.mark.parametrize("normalization", ["weighted_mean", "mean"])
@pytest.mark.parametrize("with_sample_weight", [False, True])
@pytest.mark.parametrize("class_weighted", [False, True])
@pytest.mark.parametrize("name", LOSSES)
def test_value_matches_reference_loop(
    name, class_weighted, with_sample_weight, normalization
):
    factory, z, y, w, reference = LOSSES[name]
    exact = torch.tensor(w, dtype=torch.float64)  # 0.7 is not a float32
    crit = factory(exact if class_weighted else None, normalization).double()
    zt, yt = _batch(name)
    sw = torch.tensor(SW, dtype=torch.float64) if with_sample_weight else None
    value = crit(zt, yt, sample_weight=sw)

    losses = [reference(zi, yi) for zi, yi in zip(z, y)]
    v = [
        (w[yi] if class_weighted else 1.0) * (SW[i] if with_sample_weight else 1.0)
        for i, yi in enumerate(y)
    ]
    if not (class_weighted or with_sample_weight):
        expected = sum(losses) / len(losses)  # plain mean either way
    else:
        expected = ref_reduce(losses, v, normalization)
    assert value.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", LOSSES)
def test_gradcheck_float64(name):
    factory, _, _, w, _ = LOSSES[name]
    crit = factory(w, "weighted_mean").double()
    z, y = _batch(name)
    z.requires_grad_(True)
    sw = torch.tensor(SW, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: crit(x, y, sample_weight=sw), (z,))


def _devices():
    devices = ["meta"]  # a real move of every buffer, on any machine
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("name", LOSSES)
def test_to_device_moves_the_weights(name, device):
    factory, _, _, w, _ = LOSSES[name]
    crit = factory(w, "weighted_mean")
    buffers = dict(crit.named_buffers())
    assert "weight" in buffers
    moved = crit.to(device)
    assert moved.weight.device.type == device
    for buffer_name, buffer in moved.named_buffers():
        assert buffer.device.type == device, buffer_name
    if device != "meta":
        z, y = _batch(name, torch.float32)
        assert torch.isfinite(moved(z.to(device), y.to(device)))


# -- equality with PyTorch's own losses -----------------------------------
def test_weighted_ce_is_torch_cross_entropy():
    z, y = _batch("ce")
    w = torch.tensor(W3, dtype=torch.float64)
    ours = WeightedCrossEntropyLoss(weight=W3).double()
    torch.testing.assert_close(ours(z, y), F.cross_entropy(z, y, weight=w))
    tutorial = torch.mean(w[y] * F.cross_entropy(z, y, reduction="none"))
    ours_mean = WeightedCrossEntropyLoss(weight=W3, normalization="mean").double()
    torch.testing.assert_close(ours_mean(z, y), tutorial)
    torch.testing.assert_close(
        FocalLoss(weight=W3, gamma=0.0).double()(z, y), ours(z, y)
    )


def test_bce_is_bce_with_logits_pos_weight():
    z, y = _batch("bce")
    ours = BinaryCrossEntropyLoss(weight=[1.0, 3.0], normalization="mean").double()
    torch_loss = torch.nn.BCEWithLogitsLoss(pos_weight=ours.pos_weight)
    torch.testing.assert_close(ours(z, y), torch_loss(z, y.double().reshape(-1, 1)))
    # any class weights: pos_weight = w1 / w0 under the default weighted mean
    ours = BinaryCrossEntropyLoss(weight=W2).double()
    per_sample = torch.nn.BCEWithLogitsLoss(
        weight=ours.weight[y].reshape(-1, 1), reduction="sum"
    )(z, y.double().reshape(-1, 1))
    torch.testing.assert_close(ours(z, y), per_sample / ours.weight[y].sum())
    assert ours.pos_weight.item() == pytest.approx(W2[1] / W2[0])
    assert BinaryCrossEntropyLoss().pos_weight is None


def _torchvision_sigmoid_focal_loss(inputs, targets, alpha, gamma):
    # torchvision.ops.sigmoid_focal_loss (BSD-3), reduction="mean", verbatim
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss.mean()


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (0.9, 0.5), (0.5, 0.0)])
def test_binary_focal_is_torchvision_sigmoid_focal(alpha, gamma):
    z, y = _batch("binary_focal")
    ours = BinaryFocalLoss(weight=[1 - alpha, alpha], gamma=gamma, normalization="mean")
    expected = _torchvision_sigmoid_focal_loss(z.reshape(-1), y.double(), alpha, gamma)
    torch.testing.assert_close(ours.double()(z, y), expected)
    try:
        from torchvision.ops import sigmoid_focal_loss
    except ImportError:
        return
    torch.testing.assert_close(
        ours.double()(z, y),
        sigmoid_focal_loss(z.reshape(-1), y.double(), alpha, gamma, reduction="mean"),
    )


def test_binary_rwwce_is_cross_entropy_weighted_by_costs():
    # -[fn y log p1 + fp (1-y) log p0] is CE with class weights [fp, fn]
    z, y = _batch("rwwce_binary")
    ours = RealWorldWeightCrossEntropyLoss(fn_cost=5.0, fp_cost=0.5).double()
    weight = torch.tensor([0.5, 5.0], dtype=torch.float64)
    expected = F.cross_entropy(z, y, weight=weight, reduction="sum") / len(y)
    torch.testing.assert_close(ours(z, y), expected)


def test_logit_adjusted_without_adjustment_is_cross_entropy():
    z, y = _batch("ce")
    ours = LogitAdjustedLoss(COUNTS3, tau=0.0).double()
    torch.testing.assert_close(ours(z, y), F.cross_entropy(z, y))


# -- numerical stability ----------------------------------------------------
@pytest.mark.parametrize("name", LOSSES)
def test_extreme_logits_give_finite_values_and_gradients(name):
    factory, _, _, w, _ = LOSSES[name]
    crit = factory(w, "weighted_mean")
    k = 1 if name in {"bce", "binary_focal"} else (2 if name == "rwwce_binary" else 3)
    z = torch.full((4, k), -200.0)
    z[:, 0] = 200.0  # p of class 0 rounds to exactly 1 in float32
    z.requires_grad_(True)
    y = torch.tensor([0, 1, 0, 1])
    loss = crit(z, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(z.grad))


def test_focal_term_is_exact_where_p_rounds_to_one():
    # 1 - p = sum of the other probabilities, not 1 - exp(log p)
    z = torch.tensor([[40.0, 0.0, 0.0]])
    y = torch.tensor([0])
    value = FocalLoss(gamma=1.0).per_sample_loss(z, y)
    one_minus_p = 2 * math.exp(-40.0)
    expected = one_minus_p * math.log1p(2 * math.exp(-40.0))
    assert value.item() == pytest.approx(expected, rel=1e-4)
    assert value.item() > 0


# -- only the ratios of the class weights matter ----------------------------
@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(LOSSES)),
    weights=st.lists(st.floats(0.01, 100.0), min_size=3, max_size=3),
    scale=st.floats(1e-3, 1e3),
    with_sample_weight=st.booleans(),
)
def test_rescaling_class_weights_leaves_weighted_mean_unchanged(
    name, weights, scale, with_sample_weight
):
    factory, _, _, w, _ = LOSSES[name]
    weights = weights[: len(w)]
    z, y = _batch(name)
    sw = torch.tensor(SW, dtype=torch.float64) if with_sample_weight else None
    weights = torch.tensor(weights, dtype=torch.float64)
    base = factory(weights, "weighted_mean").double()(z, y, sw)
    scaled = factory(scale * weights, "weighted_mean").double()
    assert scaled(z, y, sw).item() == pytest.approx(base.item(), rel=1e-9)
    mean = factory(weights, "mean").double()(z, y, sw)
    scaled_mean = factory(scale * weights, "mean").double()
    assert scaled_mean(z, y, sw).item() == pytest.approx(scale * mean.item(), rel=1e-9)


# -- decision rules ----------------------------------------------------------
def test_cost_sensitive_decision_is_argmin_expected_cost():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=50)
    crit = RealWorldWeightCrossEntropyLoss(COST3)
    expected = [
        min(range(3), key=lambda k: sum(p[j] * COST3[j][k] for j in range(3)))
        for p in proba
    ]
    np.testing.assert_array_equal(crit.decision(proba), expected)
    assert not np.array_equal(crit.decision(proba), proba.argmax(axis=1))


def test_posthoc_logit_adjustment_decision():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=50)
    crit = LogitAdjustedLoss(COUNTS3, tau=0.0, posthoc_tau=0.7)
    prior = [c / sum(COUNTS3) for c in COUNTS3]
    expected = [
        max(range(3), key=lambda k: math.log(p[k]) - 0.7 * math.log(prior[k]))
        for p in proba
    ]
    np.testing.assert_array_equal(crit.decision(proba), expected)
    plain = LogitAdjustedLoss(COUNTS3, posthoc_tau=0.0)
    np.testing.assert_array_equal(plain.decision(proba), proba.argmax(axis=1))


def test_absent_class_keeps_the_prior_finite():
    crit = LogitAdjustedLoss([10.0, 0.0, 5.0], tau=1.0, posthoc_tau=1.0)
    assert torch.all(torch.isfinite(crit.log_prior()))
    z, y = _batch("ce", torch.float32)
    assert torch.isfinite(crit(z, y))


# -- probabilities and outputs ----------------------------------------------
def test_single_logit_losses_have_two_probability_columns():
    z = torch.tensor([[-30.0], [0.0], [30.0]])
    for crit in (BinaryCrossEntropyLoss(), BinaryFocalLoss()):
        assert n_outputs(crit, 2) == 1
        proba = proba_function(crit)(z)
        assert proba.shape == (3, 2)
        torch.testing.assert_close(proba.sum(dim=1), torch.ones(3))
        assert proba[0, 1] > 0 and proba[2, 0] > 0  # no 1 - p cancellation
    assert n_outputs(FocalLoss(), 3) == 3


# -- validation ---------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BinaryCrossEntropyLoss().n_outputs(3), "binary loss"),
        (lambda: BinaryFocalLoss().n_outputs(4), "binary loss"),
        (lambda: FocalLoss(gamma=-1.0), "gamma must be"),
        (lambda: WeightedCrossEntropyLoss(normalization="sum"), "normalization"),
        (lambda: RealWorldWeightCrossEntropyLoss(), "needs a cost_matrix"),
        (lambda: RealWorldWeightCrossEntropyLoss(fn_cost=1.0), "needs a cost_matrix"),
        (
            lambda: RealWorldWeightCrossEntropyLoss(COST3, fn_cost=1.0, fp_cost=1.0),
            "not both",
        ),
        (lambda: RealWorldWeightCrossEntropyLoss([[0, 1, 2]]), "must be square"),
        (lambda: RealWorldWeightCrossEntropyLoss([[1, 1], [1, 0]]), "diagonal"),
        (lambda: RealWorldWeightCrossEntropyLoss([[0, -1], [1, 0]]), "non-negative"),
        (lambda: RealWorldWeightCrossEntropyLoss([[0, 0], [0, 0]]), "zero everywhere"),
        (
            lambda: RealWorldWeightCrossEntropyLoss(COST3).n_outputs(2),
            r"shape \(3, 3\) but there are 2 classes",
        ),
        (lambda: LogitAdjustedLoss([1.0, 2.0]).n_outputs(3), "class_counts has 2"),
        (lambda: LogitAdjustedLoss(tau=float("nan")), "tau must be"),
        (lambda: LogitAdjustedLoss().log_prior(), "needs class_counts"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_reprs_are_readable():
    assert repr(FocalLoss(gamma=1.0)) == (
        "FocalLoss(gamma=1.0, normalization='weighted_mean')"
    )
    assert "cost_matrix=[[0.0, 1.0], [5.0, 0.0]]" in repr(
        RealWorldWeightCrossEntropyLoss(fn_cost=5, fp_cost=1)
    )
    assert "posthoc_tau=1.0" in repr(LogitAdjustedLoss(posthoc_tau=1.0))

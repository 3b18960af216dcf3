"""One configuration path per fit: warm fits, the classifier/net boundary,
and randomness that belongs to the fit.

A warm fit applies its plan exactly as a cold fit does, so after switching
``class_weight`` (or ``criterion__*``) the criterion holds what a cold fit with
the new settings holds; with unchanged settings a warm fit goes on exactly as
one longer fit would, epochs (and :class:`Deferred`'s ``start_epoch``) counted
across fits.
"""

import ast
import inspect
import itertools

import numpy as np
import pytest
import torch
from conftest import FAST

from skweighted import (
    Deferred,
    EffectiveNumber,
    FocalLoss,
    PerBatch,
    WeightedNeuralNetClassifier,
    _classifier,
)

SPECS = {
    "none": None,
    "balanced": "balanced",
    "dict": {"a": 1.0, "b": 2.0, "c": 5.0},
    "effective": EffectiveNumber(0.9),
    "per_batch": PerBatch("balanced"),
    "deferred": Deferred("inverse", start_epoch=1),
}
ONE_EPOCH = dict(FAST, max_epochs=1)


def _weight(clf):
    w = clf.net_.criterion_.weight
    return None if w is None else (w.device, w.cpu().numpy())


@pytest.mark.parametrize(
    "before, after", list(itertools.permutations(SPECS, 2)), ids="->".join
)
def test_warm_switch_holds_what_a_cold_fit_holds(three, before, after):
    X, y = three
    warm = WeightedNeuralNetClassifier(
        class_weight=SPECS[before], warm_start=True, **ONE_EPOCH
    ).fit(X, y)
    warm.set_params(class_weight=SPECS[after]).fit(X, y)
    # the same two epochs in one cold fit with the new settings
    cold = WeightedNeuralNetClassifier(
        class_weight=SPECS[after], **dict(ONE_EPOCH, max_epochs=2)
    ).fit(X, y)
    np.testing.assert_array_equal(warm.class_weight_, cold.class_weight_)
    w, c = _weight(warm), _weight(cold)
    assert (w is None) == (c is None)
    if w is not None:
        assert w[0] == c[0]
        np.testing.assert_array_equal(w[1], c[1])
    assert warm.net_.plan_.per_batch == cold.net_.plan_.per_batch


def test_per_batch_after_balanced_weighs_each_batch_once(three):
    """The criterion holds no weights under PerBatch: the batch loss is the
    plain weighted mean with the batch's own weights, not weighted twice."""
    X, y = three
    clf = WeightedNeuralNetClassifier(
        class_weight="balanced", warm_start=True, **ONE_EPOCH
    ).fit(X, y)
    clf.set_params(class_weight=PerBatch("balanced")).fit(X, y)
    assert clf.net_.criterion_.weight is None
    yb = torch.tensor([0, 0, 0, 1])
    logits = torch.randn(4, 3)
    loss = clf.net_.get_loss(logits, yb, training=True)
    per_sample = torch.nn.functional.cross_entropy(logits, yb, reduction="none")
    w = torch.tensor([4 / 6, 4 / 6, 4 / 6, 2.0])  # 'balanced' on this batch
    torch.testing.assert_close(loss, (w * per_sample).sum() / w.sum())


def test_warm_change_of_criterion_parameters(three):
    X, y = three
    clf = WeightedNeuralNetClassifier(
        criterion=FocalLoss,
        criterion__gamma=1.0,
        class_weight="balanced",
        warm_start=True,
        **ONE_EPOCH,
    ).fit(X, y)
    clf.set_params(criterion__gamma=3.0, class_weight=None).fit(X, y)
    cold = WeightedNeuralNetClassifier(
        criterion=FocalLoss, criterion__gamma=3.0, **ONE_EPOCH
    ).fit(X, y)
    assert clf.net_.criterion_.gamma == cold.net_.criterion_.gamma == 3.0
    assert clf.net_.criterion_.weight is None is cold.net_.criterion_.weight


@pytest.mark.parametrize(
    "params",
    [
        {"class_weight": "balanced"},
        {"class_weight": Deferred("balanced", start_epoch=3)},
        {"sampler": "balanced"},
        {"module__dropout": 0.3},
    ],
    ids=["balanced", "deferred", "sampler", "dropout"],
)
def test_warm_fit_goes_on_as_one_longer_fit(three, params):
    X, y = three
    settings = dict(FAST, max_epochs=2, **params)
    warm = WeightedNeuralNetClassifier(warm_start=True, **settings).fit(X, y)
    warm.fit(X, y)
    longer = WeightedNeuralNetClassifier(**dict(settings, max_epochs=4)).fit(X, y)
    np.testing.assert_array_equal(
        warm.net_.history[:, "train_loss"], longer.net_.history[:, "train_loss"]
    )
    np.testing.assert_array_equal(warm.predict_proba(X), longer.predict_proba(X))


def test_deferred_counts_epochs_across_warm_fits(three):
    X, y = three
    clf = WeightedNeuralNetClassifier(
        class_weight=Deferred("balanced", start_epoch=3), warm_start=True, **FAST
    ).fit(X, y)  # epochs 0, 1, 2: uniform
    np.testing.assert_array_equal(clf.net_.criterion_.weight.numpy(), np.ones(3))
    clf.set_params(max_epochs=1).fit(X, y)  # epoch 3: the scheme
    np.testing.assert_allclose(
        clf.net_.criterion_.weight.numpy(), clf.class_weight_, rtol=1e-6
    )


def _net_attributes(node):
    """Attribute names read on ``net`` / ``self.net_`` inside ``node``."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            owner = sub.value
            if (isinstance(owner, ast.Name) and owner.id == "net") or (
                isinstance(owner, ast.Attribute) and owner.attr == "net_"
            ):
                yield sub.attr


def test_classifier_calls_only_public_methods_of_the_net():
    tree = ast.parse(inspect.getsource(_classifier))
    used = set(_net_attributes(tree))
    assert used, "the check found no access to the net at all"
    private_or_fitted = sorted(a for a in used if a.startswith("_") or a.endswith("_"))
    assert not private_or_fitted, private_or_fitted
    net_class = _classifier._net.WeightedNet
    for name in used:
        assert callable(getattr(net_class, name)), f"net.{name} is not a method"


def test_estimator_parameters_and_plan_hold_no_tensor(three):
    X, y = three
    clf = WeightedNeuralNetClassifier(
        class_weight=Deferred("balanced", 1), sampler="balanced", **FAST
    ).fit(X, y)
    constructor = clf.net_.get_params(deep=False)
    state = [*constructor.values(), *vars(clf.net_.plan_).values()]
    assert not [v for v in state if isinstance(v, torch.Tensor)]
    assert not isinstance(constructor["criterion"], torch.nn.Module)

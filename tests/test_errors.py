"""Every bad input gets a clear error, raised before training where it can be.

One row per case: the estimator's parameters, what ``fit`` (or a method
after it) receives, the expected exception type and a fragment of its
message. A spy on ``WeightedNet.partial_fit`` checks that the errors marked
``before_training`` are raised before any epoch runs.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import fast, make_imbalanced
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from skweighted import WeightedNeuralNetClassifier, _net
from skweighted.class_weight import SCHEME_NAMES, Deferred, PerBatch

TWO_EPOCHS = fast(max_epochs=2)
N = 60
_X, Y_STR = make_imbalanced(None, ["cat", "dog"], N, n_features=4, n_informative=3)
X = _X.astype(np.float64)  # what a caller passes most often
Y_INT = (Y_STR == "dog").astype(np.int64)


class Raises(nn.Module):
    def __init__(self, n_features_in, n_classes):
        super().__init__()
        self.lin = nn.Linear(n_features_in, n_classes)

    def forward(self, X):
        raise ValueError("boom in forward")


@dataclass
class Case:
    """One row of the matrix: ``fit(X, y, **fit)`` with ``params``."""

    id: str
    exc: type
    match: str
    params: dict = field(default_factory=dict)
    X: object = None
    y: object = None
    fit: dict = field(default_factory=dict)
    #: Raise in ``predict`` / ``score`` on a model fitted on clean data
    #: instead of in ``fit``: ("predict" | "score", X, y).
    after_fit: tuple = None
    before_training: bool = True


def _with(X_, row=0, col=0, value=np.nan):
    X_ = np.array(X_, dtype=np.float64)
    X_[row, col] = value
    return X_


CASES = [
    # -- class_weight ------------------------------------------------------
    Case(
        "cw-unknown-string",
        InvalidParameterError,
        "'class_weight' parameter"
        + "".join(f"(?=.*'{name}')" for name in SCHEME_NAMES),
        params={"class_weight": "balance"},
    ),
    Case(
        "cw-key-not-a-class",
        ValueError,
        r"keys that are not classes: \['bird'\].*\['cat', 'dog'\]",
        params={"class_weight": {"bird": 2.0}},
    ),
    Case(
        "cw-int-key-string-labels",
        ValueError,
        r"keys that are not classes: \[1\]",
        params={"class_weight": {1: 2.0}},
    ),
    Case(
        "cw-string-key-int-labels",
        ValueError,
        r"keys that are not classes: \['1'\]. The classes are \[0, 1\]",
        params={"class_weight": {"1": 2.0}},
        y=Y_INT,
    ),
    Case(
        "cw-negative",
        ValueError,
        r"class_weight is negative for classes \['dog'\]",
        params={"class_weight": {"dog": -1.0}},
    ),
    Case(
        "cw-zero-everywhere",
        ValueError,
        "class_weight is zero for every class",
        params={"class_weight": {"cat": 0.0, "dog": 0}},
    ),
    Case(
        "cw-nan",
        ValueError,
        r"class_weight is not finite .* \['cat'\]",
        params={"class_weight": {"cat": math.nan}},
    ),
    Case(
        "cw-inf",
        ValueError,
        r"class_weight is not finite .* \['dog'\]",
        params={"class_weight": {"dog": np.inf}},
    ),
    Case(
        "cw-wrong-type",
        InvalidParameterError,
        "'class_weight' parameter .* must be None, an instance of 'dict'",
        params={"class_weight": 3.0},
    ),
    Case(
        "cw-value-wrong-type",
        TypeError,
        r"class_weight\['dog'\] must be a real number, got 'heavy'",
        params={"class_weight": {"dog": "heavy"}},
    ),
    Case(
        "cw-callable-returns-non-dict",
        TypeError,
        "callable class_weight must return a dict",
        params={"class_weight": lambda y: [1.0, 2.0]},
    ),
    Case(
        "sampler-key-not-a-class",
        ValueError,
        r"sampler has keys that are not classes: \['bird'\]",
        params={"sampler": {"bird": 2.0}},
    ),
    Case(
        "sampler-negative",
        ValueError,
        r"sampler is negative for classes \['cat'\]",
        params={"sampler": {"cat": -2.0}},
    ),
    # -- y -------------------------------------------------------------------
    Case(
        "y-single-class",
        ValueError,
        r"at least 2 classes.*only one class: \['cat'\]",
        y=np.full(N, "cat", dtype=object),
    ),
    Case(
        "y-continuous",
        ValueError,
        "Unknown label type: continuous",
        y=np.linspace(0, 1, N),
    ),
    Case("y-nan", ValueError, "Input y contains NaN", y=_with(Y_INT[:, None])[:, 0]),
    # a 2-D y is a multi-label indicator matrix (a one-hot y is one, as in
    # scikit-learn); other 2-D targets are refused
    Case(
        "y-2d-not-indicator",
        ValueError,
        r"read as a multi-label indicator matrix, but it is not one",
        y=np.column_stack([Y_INT, 2 * Y_INT]),
    ),
    Case(
        "y-mixed-types",
        ValueError,
        "Unknown label type: unknown",
        y=np.array([1, "a"] * (N // 2), dtype=object),
    ),
    Case(
        "y-wrong-length",
        ValueError,
        "inconsistent numbers of samples",
        y=Y_STR[:-1],
    ),
    Case(
        "y-not-in-classes-param",
        ValueError,
        r"y contains labels \['dog'\] that are not in classes=\['bird', 'cat'\]",
        params={"classes": ["cat", "bird"]},
    ),
    Case(
        "score-unseen-label",
        ValueError,
        r"labels \['bird'\] that were not seen during fit.*pass the full label "
        r"set as classes=",
        after_fit=("score", X, np.where(Y_STR == "dog", "bird", Y_STR)),
    ),
    # -- X -------------------------------------------------------------------
    Case("X-nan", ValueError, "Input X contains NaN", X=_with(X)),
    Case("X-inf", ValueError, "Input X contains infinity", X=_with(X, value=np.inf)),
    Case(
        "X-empty",
        ValueError,
        r"Found array with 0 sample\(s\)",
        X=np.empty((0, 4)),
        y=np.array([], dtype=object),
    ),
    Case("X-1d", ValueError, "Expected 2D array, got 1D array", X=X[:, 0]),
    Case("X-complex", ValueError, "Complex data not supported", X=X + 1j),
    Case(
        "X-object-strings",
        ValueError,
        "could not convert string to float: 'red'",
        X=pd.DataFrame({"colour": ["red", "blue"] * (N // 2), "x": X[:, 0]}),
    ),
    Case(
        "X-features-at-predict",
        ValueError,
        "X has 3 features, but WeightedNeuralNetClassifier is expecting 4",
        after_fit=("predict", X[:, :3], None),
    ),
    # -- sample_weight -----------------------------------------------------
    Case(
        "sw-wrong-length",
        ValueError,
        r"sample_weight.shape == \(59,\), expected \(60,\)",
        fit={"sample_weight": np.ones(N - 1)},
    ),
    Case(
        "sw-negative",
        ValueError,
        "Negative values in data passed to `sample_weight`",
        fit={"sample_weight": np.r_[-1.0, np.ones(N - 1)]},
    ),
    Case(
        "sw-all-zero",
        ValueError,
        "(?i)sample.weights? (must contain at least one non-zero|is zero for every)",
        fit={"sample_weight": np.zeros(N)},
    ),
    Case(
        "sw-nan",
        ValueError,
        "Input sample_weight contains NaN",
        fit={"sample_weight": np.r_[np.nan, np.ones(N - 1)]},
    ),
    # -- module and criterion ----------------------------------------------
    Case(
        "module-wrong-width",
        ValueError,
        r"returns 5 output\(s\) per sample .* there are 2 classes .* needs 2 output",
        params={"module": nn.Linear(4, 5)},
    ),
    Case(
        "module-raises-in-forward",
        RuntimeError,
        "forward pass failed on the input .*ValueError: boom in forward",
        params={"module": Raises},
    ),
    Case(
        "criterion-class-without-weight",
        TypeError,
        "class_weight is set but the criterion MSELoss does not accept class weights",
        params={"criterion": nn.MSELoss, "class_weight": "balanced"},
    ),
    Case(
        "criterion-instance-without-weight",
        TypeError,
        "criterion L1Loss holds no `weight` buffer",
        params={"criterion": nn.L1Loss(), "class_weight": {"dog": 2.0}},
    ),
    Case(
        "criterion-without-sample-weight",
        TypeError,
        "does not accept sample_weight in forward",
        params={"criterion": nn.CrossEntropyLoss},
        fit={"sample_weight": np.ones(N)},
    ),
    Case(
        "class-weight-and-criterion-weight",
        ValueError,
        "either as class_weight or as criterion__weight",
        params={"class_weight": "balanced", "criterion__weight": torch.ones(2)},
    ),
    # -- device --------------------------------------------------------------
    Case(
        "device-invalid-string",
        ValueError,
        "device='gpu' is not a valid torch device",
        params={"device": "gpu"},
    ),
    Case(
        "device-wrong-type",
        InvalidParameterError,
        "'device' parameter",
        params={"device": 0},
    ),
    Case(
        "device-cuda-index-too-large",
        ValueError,
        "device='cuda:99'",
        params={"device": "cuda:99"},
    ),
    # -- training that diverges ---------------------------------------------
    Case(
        "diverges-to-nan",
        FloatingPointError,
        r"Training diverged: the train loss became non-finite \((nan|inf)\) in "
        r"epoch \d+",
        params={"optimizer": torch.optim.SGD, "lr": 1e6, "max_epochs": 30},
        X=X * 100,
        before_training=False,
    ),
    # -- parameters (scikit-learn's parameter validation) --------------------
    Case(
        "max-epochs-zero",
        InvalidParameterError,
        r"'max_epochs' parameter of WeightedNeuralNetClassifier must be an int "
        r"in the range \[1, inf\)\. Got 0",
        params={"max_epochs": 0},
    ),
    Case(
        "batch-size-negative",
        InvalidParameterError,
        r"'batch_size' parameter .* range \[1, inf\)\. Got -1",
        params={"batch_size": -1},
    ),
    Case(
        "lr-negative",
        InvalidParameterError,
        r"'lr' parameter .* range \(0(\.0)?, inf\)\. Got -0.1",
        params={"lr": -0.1},
    ),
    Case(
        "module-param-not-in-its-signature",
        TypeError,
        r"module__hiden_units is not a parameter of MLP; it takes .*hidden_units"
        r".* Did you mean module__hidden_units\?",
        params={"module__hiden_units": (8,)},
    ),
]

if torch.cuda.is_available():
    CASES = [c for c in CASES if c.id != "device-cuda-index-too-large"] + [
        Case(
            "device-cuda-index-too-large",
            ValueError,
            "device='cuda:99': this machine has only",
            params={"device": "cuda:99"},
        )
    ]
else:
    CASES.append(
        Case(
            "device-cuda-without-cuda",
            ValueError,
            "device='cuda' was requested but CUDA is not available",
            params={"device": "cuda"},
        )
    )


@pytest.fixture
def training_started(monkeypatch):
    """A list that records every start of training (``partial_fit``)."""
    calls = []
    original = _net.WeightedNet.partial_fit

    def spy(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_net.WeightedNet, "partial_fit", spy)
    return calls


@pytest.fixture(scope="module")
def fitted():
    return WeightedNeuralNetClassifier(**TWO_EPOCHS).fit(X, Y_STR)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_raises_a_clear_error(case, training_started, fitted):
    if case.after_fit is not None:
        method, X_, y_ = case.after_fit
        args = (X_,) if y_ is None else (X_, y_)
        with pytest.raises(case.exc, match=case.match):
            getattr(fitted, method)(*args)
        return
    clf = WeightedNeuralNetClassifier(**{**TWO_EPOCHS, **case.params})
    X_ = X if case.X is None else case.X
    y_ = Y_STR if case.y is None else case.y
    with pytest.raises(case.exc, match=case.match):
        clf.fit(X_, y_, **case.fit)
    if case.before_training:
        assert training_started == [], "the error came after training had started"
    else:
        assert len(training_started) == 1


@pytest.mark.parametrize(
    "typo, meant", [("class_weights", "class_weight"), ("max_epoch", "max_epochs")]
)
def test_unknown_parameter_is_refused_at_once_with_the_closest(typo, meant):
    hint = rf"unknown parameter '{typo}'\. Did you mean '{meant}'"
    with pytest.raises(TypeError, match=hint):
        WeightedNeuralNetClassifier(**{typo: 1})
    clf = WeightedNeuralNetClassifier()
    with pytest.raises(ValueError, match=hint):
        clf.set_params(**{typo: 1})
    with pytest.raises(ValueError, match="unknown parameter 'modul__width'"):
        clf.set_params(modul__width=3)
    assert typo not in clf.get_params()
    # routed prefixes stay open; what they name is checked at fit
    clf.set_params(optimizer__weight_decay=0.1, module__anything=1)
    assert clf.get_params()["optimizer__weight_decay"] == 0.1


def test_every_parameter_error_names_the_parameter():
    """InvalidParameterError is a ValueError and names the bad parameter."""
    for name, value in [("max_epochs", 0), ("batch_size", -1), ("lr", -0.1)]:
        with pytest.raises(ValueError, match=re.escape(f"'{name}' parameter")):
            WeightedNeuralNetClassifier(**{name: value}).fit(X, Y_STR)


def test_failed_fit_leaves_no_model_that_predicts(fitted):
    """A diverged fit leaves an unfitted estimator, not one that predicts NaN."""
    from sklearn.exceptions import NotFittedError

    clf = WeightedNeuralNetClassifier(**TWO_EPOCHS).fit(X, Y_STR)
    clf.set_params(optimizer=torch.optim.SGD, lr=1e6, max_epochs=30)
    with pytest.raises(FloatingPointError, match="epoch"):
        clf.fit(X * 100, Y_STR)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    # warm start: the first epoch is still finite, the second diverges and the
    # diverged network is dropped too
    diverging = {**TWO_EPOCHS, "optimizer": torch.optim.SGD, "lr": 1e6, "max_epochs": 1}
    clf = WeightedNeuralNetClassifier(warm_start=True, **diverging).fit(X * 100, Y_STR)
    assert np.all(np.isfinite(clf.predict_proba(X * 100)))
    with pytest.raises(FloatingPointError, match="in epoch 2"):
        clf.fit(X * 100, Y_STR)
    with pytest.raises(NotFittedError):
        clf.predict_proba(X)


def test_keyboard_interrupt_leaves_a_usable_model():
    """Ctrl-C during an epoch stops training and keeps the model, as in skorch."""
    from skorch.callbacks import Callback

    class Interrupt(Callback):
        """Ctrl-C as the third batch of the second epoch starts."""

        def on_batch_begin(self, net, training=False, **kwargs):
            if len(net.history) == 2 and len(net.history[-1]["batches"]) == 3:
                raise KeyboardInterrupt

    clf = WeightedNeuralNetClassifier(
        callbacks=[Interrupt()], **fast(max_epochs=5, batch_size=16)
    ).fit(X, Y_STR)
    assert len(clf.net_.history) == 2  # stopped in the second epoch
    proba = clf.predict_proba(X)
    assert proba.shape == (N, 2) and np.all(np.isfinite(proba))
    assert set(clf.predict(X)) <= {"cat", "dog"}
    # the interrupted epoch's batch losses are plain floats, like a full epoch's
    batches = clf.net_.history[-1]["batches"]
    assert [type(b.get("train_loss")) for b in batches] == [float, float, type(None)]


@pytest.mark.parametrize("scheme", [PerBatch("balanced"), Deferred("balanced", 2)])
def test_sampler_rejects_weight_schedules(scheme):
    with pytest.raises(ValueError, match="sampler=.*fixed per-class"):
        WeightedNeuralNetClassifier(sampler=scheme, max_epochs=1).fit(X, Y_STR)

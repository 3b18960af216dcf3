"""compare(stacking=True), the default: the networks of every strategy and
fold train together, with the numbers of separate fits, the same resume,
failure and progress behaviour, and notes that name what trained separately.

What holds, measured on these data sets (5 epochs; 30 give the same picture):
stacked and separate fits round differently in the last float32 bits, which
moves the probabilities by about 1e-8 and the calibration slope (through the
logit) by up to 3e-7; no decision changes, so the label metrics and every
rank are equal. The tolerances below leave a margin of a hundred or more.
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import AlphaDropoutNet, NumAndTokens, dict_inputs
from imblearn import FunctionSampler
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skweighted import WeightedNeuralNetClassifier, compare
from skweighted._stacking import _memory
from skweighted._stacking._session import Session
from skweighted._threads import one_torch_thread
from skweighted.cli import main
from skweighted.comparison import _runner, default_estimator
from skweighted.comparison._store import FILENAME

EPOCHS = 5
#: Metrics computed from the predicted labels: equal with and without stacking.
LABEL_METRICS = ("balanced_accuracy", "accuracy", "f1_macro", "geometric_mean")
#: Probability metrics, and the calibration intercept and slope (a logit
#: away from the probabilities, so more sensitive to their last bits).
PROBA_TOL, CALIBRATION_TOL = 1e-6, 1e-4


def _kwargs(**more):
    return {
        "estimator": default_estimator(max_epochs=EPOCHS),
        "cv": 3,
        "random_state": 0,
        **more,
    }


def _value_columns(result):
    return result.results.drop(columns=["fit_time", "score_time"])


@pytest.fixture(scope="module", params=["binary", "three"])
def both(request):
    """The default strategies with stacking and without, on one data set."""
    X, y = request.getfixturevalue(request.param)
    return (
        request.param,
        compare(X, y, **_kwargs()),
        compare(X, y, **_kwargs(stacking=False)),
    )


def test_stacked_and_separate_fits_give_the_same_report(both):
    name, stacked, separate = both
    assert stacked.notes == separate.notes  # every network fit was stacked
    assert ("threshold" in stacked.strategies) == (name == "binary")
    _assert_same_numbers(stacked, separate)
    assert (stacked.results["fit_time"] > 0).all()


def _assert_same_numbers(stacked, separate):
    """Label metrics equal, probability metrics within float32 rounding, the
    same ranks and ties."""
    a, b = _value_columns(stacked), _value_columns(separate)
    pd.testing.assert_frame_equal(
        a.drop(columns="value"), b.drop(columns="value")
    )  # same rows, no failure
    diff = (a["value"] - b["value"]).abs()
    metric = a["metric"]
    labels = metric.isin(LABEL_METRICS) | metric.str.startswith("recall[")
    calibration = metric.str.startswith("calibration_")
    assert (diff[labels] == 0).all()
    assert (diff[~labels & ~calibration] <= PROBA_TOL).all()
    assert (diff[calibration] <= CALIBRATION_TOL).all()
    # the same ranking and the same ties, metric by metric
    columns = ["strategy", "metric", "rank", "tied"]
    pd.testing.assert_frame_equal(stacked.summary[columns], separate.summary[columns])


def test_a_dict_input_comparison_stacks_with_the_same_numbers(binary):
    X, y = binary
    X = dict_inputs(X[:, :5])  # float features and int64 token ids, by keyword
    est = WeightedNeuralNetClassifier(
        NumAndTokens, max_epochs=2, batch_size=32, random_state=0
    )
    kwargs = dict(estimator=est, strategies=["none", "balanced", "random_over"])
    stacked = compare(X, y, **_kwargs(**kwargs))
    separate = compare(X, y, **_kwargs(**kwargs, stacking=False))
    assert not [n for n in stacked.notes if n.startswith("stacking:")]  # all stacked
    assert stacked.notes == separate.notes
    _assert_same_numbers(stacked, separate)


def test_stacking_false_is_cross_validate_by_hand(binary, monkeypatch):
    """Without stacking no session exists and each number is the one
    scikit-learn's cross_validate gives for the strategy on that fold."""

    def no_session(*args, **kwargs):
        raise AssertionError("stacking=False made a Session")

    monkeypatch.setattr(_runner, "Session", no_session)
    X, y = binary
    result = compare(
        X,
        y,
        strategies=["balanced", "threshold"],
        scoring=["balanced_accuracy", "neg_log_loss"],
        **_kwargs(stacking=False),
    )
    for name in ("balanced", "threshold"):
        with one_torch_thread():
            want = cross_validate(
                result.strategies[name],
                X,
                y,
                cv=StratifiedKFold(3),
                scoring=["balanced_accuracy", "neg_log_loss"],
            )
        part = result.results.query("strategy == @name").set_index(["metric", "fold"])
        np.testing.assert_array_equal(
            part.loc["balanced_accuracy", "value"], want["test_balanced_accuracy"]
        )
        np.testing.assert_array_equal(
            part.loc["log_loss", "value"], -want["test_neg_log_loss"]
        )


FAILED_ONCE = []


def _fails_the_first_time(X, y):
    """A sampler step that fails on its first call only: in the recording
    pass of the first fold it meets."""
    if not FAILED_ONCE:
        FAILED_ONCE.append(1)
        raise ValueError("only the first time")
    return X, y


def test_the_notes_name_what_trained_separately_and_why(binary):
    X, y = binary
    FAILED_ONCE.clear()
    strategies = {
        "none": "none",
        "alpha": make_imb_pipeline(
            StandardScaler(),
            WeightedNeuralNetClassifier(
                AlphaDropoutNet, max_epochs=2, batch_size=32, random_state=0
            ),
        ),
        "callback": make_imb_pipeline(
            StandardScaler(),
            default_estimator(max_epochs=2).set_params(
                callbacks=[("noop", Callback())]
            ),
        ),
        # its recording fails on fold 0: that fold's fit trains separately,
        # and no other fit is affected
        "flaky": make_imb_pipeline(
            FunctionSampler(func=_fails_the_first_time, validate=False),
            StandardScaler(),
            default_estimator(max_epochs=2),
        ),
        "lr": LogisticRegression(),  # no network: never recorded
    }
    kwargs = {"cv": 3, "random_state": 0, "scoring": ["balanced_accuracy"]}
    result = compare(X, y, strategies=strategies, **kwargs)
    assert result.failed == [] and result.results["error_type"].isna().all()
    total = 12  # 4 network strategies x 3 folds
    assert result.notes == [
        f"stacking: 3 of {total} network fits trained separately ('alpha' x3): "
        "AlphaDropout: it draws from torch's global generator, which a stack "
        "cannot split, so it trains separately.",
        f"stacking: 3 of {total} network fits trained separately ('callback' x3): "
        "callbacks ['Callback'] need a separate net.",
        f"stacking: 1 of {total} network fits trained separately ('flaky' x1): "
        "it was not recorded: a fit failed while recording "
        "(ValueError: only the first time).",
    ]
    separate = compare(X, y, strategies=strategies, stacking=False, **kwargs)
    assert separate.notes == []
    pd.testing.assert_frame_equal(_value_columns(result), _value_columns(separate))


def test_fit_time_holds_the_share_of_the_stacked_training(binary, monkeypatch):
    monkeypatch.setattr(Session, "train_time_of", lambda self, a, b: 1000.0 * (b - a))
    X, y = binary
    result = compare(
        X,
        y,
        strategies={
            "none": "none",
            "threshold": "threshold",
            "lr": LogisticRegression(),
        },
        scoring="accuracy",
        **_kwargs(),
    )
    times = result.results.groupby("strategy")["fit_time"].min()
    assert 1000 < times["none"] < 1100  # one network fit per task
    assert 4000 < times["threshold"] < 4100  # three inner fits and the refit
    assert times["lr"] < 100


def test_a_ctrl_c_while_recording_resumes_to_the_same_numbers(
    binary, tmp_path, monkeypatch
):
    X, y = binary
    kwargs = _kwargs(strategies=["none", "balanced"], scoring="balanced_accuracy")
    reference = compare(X, y, **kwargs)
    calls, fit = [], WeightedNeuralNetClassifier.fit

    def interrupted(self, *args, **kw):
        calls.append(1)
        if len(calls) == 4:  # in the recording pass: no task has finished
            raise KeyboardInterrupt
        return fit(self, *args, **kw)

    monkeypatch.setattr(WeightedNeuralNetClassifier, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        compare(X, y, checkpoint=tmp_path, **kwargs)
    assert info.value.comparison is None
    assert len((tmp_path / FILENAME).read_text().splitlines()) == 1  # the header
    monkeypatch.setattr(WeightedNeuralNetClassifier, "fit", fit)
    resumed = compare(X, y, checkpoint=tmp_path, resume=True, **kwargs)
    pd.testing.assert_frame_equal(
        _value_columns(resumed), _value_columns(reference), check_exact=True
    )


def test_cli_no_stacking(tmp_path, capsys, monkeypatch):
    sessions = []
    monkeypatch.setattr(
        _runner, "Session", lambda *a, **k: sessions.append(1) or Session(*a, **k)
    )
    argv = ["compare", "--dataset", "wine", "--strategies", "none,balanced"]
    argv += ["--folds", "2", "--epochs", "2", "-q"]
    for flags, stacked in (([], True), (["--no-stacking"], False)):
        sessions.clear()
        out = tmp_path / str(stacked)
        assert main([*argv, "--out", str(out), *flags]) == 0
        assert bool(sessions) == stacked
        header = json.loads((out / FILENAME).read_text().splitlines()[0])
        assert header["body"]["fingerprint"]["stacking"] is stacked
    capsys.readouterr()


def test_memory_budget_chunks_the_stacks_with_the_same_numbers(binary, monkeypatch):
    X, y = binary
    chunks = []
    train = Session.train

    def spy(self, **kwargs):
        train(self, **kwargs)
        chunks.append(list(self.chunks))

    monkeypatch.setattr(Session, "train", spy)
    kwargs = _kwargs(strategies=["none", "balanced", "random_over"], cv=2)
    roomy, tight = compare(X, y, **kwargs), compare(X, y, memory_budget=1, **kwargs)
    assert chunks == [[6], [1] * 6]  # one model per chunk at the least
    _assert_same_numbers(roomy, tight)  # a stack of one rounds its own way


@pytest.mark.parametrize("value", [0, -1, 1.5, "1GB", True])
def test_memory_budget_must_be_a_positive_int(binary, value):
    X, y = binary
    with pytest.raises(ValueError, match="memory_budget must be None or a positive"):
        compare(X, y, memory_budget=value)


def test_cli_memory_budget_is_in_mib(tmp_path, capsys, monkeypatch):
    budgets = []
    monkeypatch.setattr(
        _runner,
        "Session",
        lambda budget=None, n_jobs=None: budgets.append(budget) or Session(budget),
    )
    argv = ["compare", "--dataset", "wine", "--strategies", "none", "--folds", "2"]
    argv += ["--epochs", "1", "-q", "--out", str(tmp_path)]
    assert main([*argv, "--memory-budget", "3"]) == 0
    assert budgets == [3 * 2**20]
    assert main([*argv, "--memory-budget", "0"]) == 2
    assert "--memory-budget must be at least 1 (MiB), got 0" in capsys.readouterr().err


def test_progress_says_what_the_stacking_does(binary, capsys):
    X, y = binary
    compare(
        X,
        y,
        strategies={"none": "none", "lr": LogisticRegression()},
        scoring="accuracy",
        progress=True,
        **_kwargs(cv=2),
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == [
        "stacking: recording the network fits of 2 tasks",
        "stacking: training 2 network fits",
    ]
    # then the stacked training's epochs, while it trains
    training = [line for line in lines if line.startswith("stacking: stack 1/1 ")]
    assert lines[2 : 2 + len(training)] == training
    done, total = training[-1].rsplit(" ", 1)[1].split("/")
    assert training[-1].startswith("stacking: stack 1/1 (2 fits), epoch ")
    assert done == total
    assert [line.split(":")[0] for line in lines[2 + len(training) :]] == [
        "[1/4] none fold 0",
        "[2/4] none fold 1",
        "[3/4] lr fold 0",
        "[4/4] lr fold 1",
    ]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_stacking_must_be_a_bool(binary, value):
    X, y = binary
    with pytest.raises(ValueError, match="stacking must be True or False; got"):
        compare(X, y, stacking=value)


@pytest.mark.slow
def test_stack_chunks_run_on_dask_workers(binary, dask_client, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X, y = binary
    kwargs = _kwargs(strategies=["none", "balanced", "random_over"], scoring="roc_auc")
    local = compare(X, y, n_jobs=1, **kwargs)
    monkeypatch.setattr(_memory, "DEFAULT_CPU_BUDGET", 1)  # one model per chunk
    with (
        distributed.get_task_stream(dask_client) as stream,
        parallel_config(backend="dask"),
    ):
        remote = compare(X, y, n_jobs=-1, **kwargs)
    names = {task["key"] if isinstance(task["key"], str) else str(task["key"])
             for task in stream.data}  # fmt: skip
    assert len(stream.data) >= 2, names  # the chunks ran as tasks on the cluster
    pd.testing.assert_frame_equal(
        _value_columns(remote), _value_columns(local), check_exact=True
    )

"""Long comparisons lose nothing: failing fits, Ctrl-C, a killed process,
damaged records and a lost Dask worker."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from skweighted import WeightedNeuralNetClassifier, compare
from skweighted.cli import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, main
from skweighted.comparison import default_estimator
from skweighted.comparison._progress import Progress
from skweighted.comparison._store import FILENAME, FitRecord, ResumeError

ROOT = Path(__file__).resolve().parents[1]
SCORING = ["balanced_accuracy", "neg_log_loss"]
CALLS = []  # one entry per fit of a counting estimator, in this process
LIBLINEAR = {"solver": "liblinear"}  # lbfgs is 10 times slower on these tiny problems


class CountingLR(LogisticRegression):
    """A logistic regression that counts its fits."""

    def fit(self, X, y, sample_weight=None):
        CALLS.append(1)
        return super().fit(X, y, sample_weight=sample_weight)


class DivergesOnRows(ClassifierMixin, BaseEstimator):
    """Raises FloatingPointError when any of ``rows`` is held out of its fit.

    Column 0 of X is a row id, so the failure falls on exactly the folds
    whose test rows include one of ``rows``.
    """

    def __init__(self, rows=()):
        self.rows = rows

    def fit(self, X, y):
        seen = set(np.asarray(X)[:, 0].astype(int).tolist())
        if any(r not in seen for r in self.rows):
            raise FloatingPointError("loss diverged to inf")
        self.model_ = LogisticRegression(**LIBLINEAR).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


class KillsItsWorkerOnce(DivergesOnRows):
    """Kills the process it runs in when it fits without ``rows``, once.

    ``marker`` is created just before the kill; once it exists, the estimator
    fits like a plain logistic regression.
    """

    def __init__(self, rows=(), marker=""):
        self.rows = rows
        self.marker = marker

    def fit(self, X, y):
        seen = set(np.asarray(X)[:, 0].astype(int).tolist())
        if not Path(self.marker).exists() and any(r not in seen for r in self.rows):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        self.model_ = LogisticRegression(**LIBLINEAR).fit(X, y)
        self.classes_ = self.model_.classes_
        return self


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=150, n_features=4, weights=[0.8], random_state=0
    )
    X[:, 0] = np.arange(len(X))  # a row id the estimators above read back
    return X, y


def _fold_of(row, X, y, n_folds=3):
    for k, (_, test) in enumerate(StratifiedKFold(n_folds).split(X, y)):
        if row in test:
            return k
    raise AssertionError


def _same_results(a, b, exact=False):
    """Equal results, fit times aside (those are measured, not computed)."""
    pd.testing.assert_frame_equal(
        a.drop(columns=["fit_time", "score_time"]),
        b.drop(columns=["fit_time", "score_time"]),
        check_exact=exact,
    )


def _lr(data, **kwargs):
    X, y = data
    kwargs = {
        "strategies": {
            "lr": CountingLR(**LIBLINEAR),
            "lr_c2": CountingLR(C=2.0, **LIBLINEAR),
        },
        "cv": 3,
        "scoring": SCORING,
        "random_state": 0,
        **kwargs,
    }
    return compare(X, y, **kwargs)


# 1. Failing fits are results ------------------------------------------------


def test_failing_folds_are_rows_with_the_error(data):
    X, y = data
    rows = (0, int(np.flatnonzero(y == 1)[-1]))  # rows of two different folds
    bad = sorted({_fold_of(r, X, y) for r in rows})
    assert len(bad) == 2
    res = compare(
        X,
        y,
        strategies={
            "ok": LogisticRegression(**LIBLINEAR),
            "diverges": DivergesOnRows(rows=rows),
            "always": DivergesOnRows(rows=tuple(range(len(X)))),
        },
        cv=3,
        scoring=SCORING,
        error_score=np.nan,
    )
    r = res.results
    failed = r[r["error_type"].notna()]
    assert set(failed["strategy"]) == {"diverges", "always"}
    assert sorted(failed.query("strategy == 'diverges'")["fold"].unique()) == bad
    assert failed["value"].isna().all()
    assert (failed["error_type"] == "FloatingPointError").all()
    assert (failed["error_message"] == "loss diverged to inf").all()
    good = r[r["error_type"].isna()]
    assert good["value"].notna().all()
    assert {"ok", "diverges"} <= set(good["strategy"])
    for k in bad:
        assert (
            f"diverges: fit failed on fold {k} (FloatingPointError: loss diverged "
            "to inf)." in res.notes
        )
    assert "always: every fit failed; it ranks last." in res.notes
    assert res.failed == ["always"]  # 'diverges' still has one good fold
    top = res.summary.query("metric == 'balanced_accuracy'").set_index("strategy")
    assert top.loc["always", "rank"] == 3
    assert np.isfinite(top.loc["diverges", "mean"])  # the mean of its good fold
    assert "always: every fit failed" in res.to_markdown()

    zero = compare(
        X,
        y,
        strategies={"diverges": DivergesOnRows(rows=rows)},
        cv=3,
        scoring=SCORING,
        error_score=0,
    )
    values = zero.results.query("error_type.notna()", engine="python")["value"]
    assert (values == 0).all()
    with pytest.raises(FloatingPointError, match="diverged") as info:
        compare(
            X,
            y,
            strategies=[DivergesOnRows(rows=rows)],
            cv=3,
            scoring=SCORING,
            error_score="raise",
        )
    assert hasattr(info.value, "comparison")  # the partial report, if any


@pytest.fixture
def rare_csv(tmp_path):
    """SMOTE (5 neighbours) needs 6 rare rows in a fold's training part."""

    def write(n_rare):
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
        frame["label"] = np.where(np.arange(60) < 60 - n_rare, "common", "rare")
        path = tmp_path / f"rare{n_rare}.csv"
        frame.to_csv(path, index=False)
        return str(path)

    return write


def test_cli_exit_status_follows_the_failure_rule(rare_csv, tmp_path, capsys):
    argv = ["--strategies", "none,smote", "--folds", "3", "--epochs", "1", "-q"]
    argv += ["--no-early-stopping"]  # SMOTE sees every training row of a fold
    # 8 rare rows: training parts of 5, 5 and 6 rare rows; SMOTE fails twice
    out = tmp_path / "some"
    assert (
        main(["compare", rare_csv(8), "--target", "label", "--out", str(out), *argv])
        == 0
    )
    printed = capsys.readouterr()
    assert printed.out.count("note: smote: fit failed on fold") == 2
    assert printed.err == ""  # --quiet
    results = pd.read_csv(out / "results.csv")
    assert results.loc[results["error_type"].notna(), "fold"].nunique() == 2
    assert "smote: fit failed on fold" in (out / "summary.md").read_text()
    # 6 rare rows: SMOTE fails on every fold -> exit status 1, report written
    out = tmp_path / "all"
    assert (
        main(["compare", rare_csv(6), "--target", "label", "--out", str(out), *argv])
        == EXIT_FAILED
    )
    printed = capsys.readouterr()
    assert "every fit of 'smote' failed" in printed.err
    assert (out / "summary.md").exists()
    # --error-score raise: stop at the first failure, partial report, hint
    out = tmp_path / "raise"
    status = main(
        [
            "compare",
            rare_csv(6),
            "--target",
            "label",
            "--out",
            str(out),
            *argv,
            "--error-score",
            "raise",
        ]
    )
    assert status == EXIT_FAILED
    err = capsys.readouterr().err
    assert "a fit failed: ValueError" in err and "--resume" in err
    assert (
        main(["compare", rare_csv(6), "--target", "label", "--error-score", "x"])
        == EXIT_INPUT
    )


# 2. Interrupted runs resume ---------------------------------------------------


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    X, y = make_classification(
        n_samples=400, n_features=5, weights=[0.85], random_state=0
    )
    frame = pd.DataFrame(X, columns=list("abcde")).assign(label=y)
    path = tmp_path_factory.mktemp("data") / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def reference(csv, tmp_path_factory):
    """results.csv of the uninterrupted run, with stacking and without."""
    runs = {}
    for flags in ((), ("--no-stacking",)):
        out = tmp_path_factory.mktemp("reference")
        assert main(_argv(csv, out, "-q", *flags)) == 0
        runs[flags] = pd.read_csv(out / "results.csv")
    return runs


def _argv(csv, out, *more):
    return [
        "compare",
        csv,
        "--target",
        "label",
        "--strategies",
        "none,balanced,random_over",
        "--folds",
        "3",
        "--epochs",
        "10",
        "--out",
        str(out),
        *more,
    ]


def _count_net_fits(monkeypatch, interrupt_at=None):
    """Count the network's fits; raise KeyboardInterrupt inside fit number n."""
    calls = []
    fit = WeightedNeuralNetClassifier.fit

    def counting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(WeightedNeuralNetClassifier, "fit", counting)
    return calls


# With stacking, every network fit runs twice: all 9 in the recording pass,
# then each again as its task runs (loading its stacked weights).
@pytest.mark.parametrize("flags", [(), ("--no-stacking",)], ids=["stacked", "separate"])
def test_keyboard_interrupt_in_a_fit_then_resume(
    csv, reference, tmp_path, capsys, monkeypatch, flags
):
    out = tmp_path / "run"
    passes = 1 if flags else 2
    recording = 0 if flags else 9
    calls = _count_net_fits(monkeypatch, interrupt_at=recording + 5)
    assert main(_argv(csv, out, *flags)) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "skweighted: interrupted" in err
    assert "4 of 9 fits finished" in err
    hint = f"resume with: skweighted {' '.join(_argv(csv, out, *flags))} --resume"
    assert hint in err
    partial = pd.read_csv(out / "results.csv")
    assert len(partial[["strategy", "fold"]].drop_duplicates()) == 4
    assert "Partial report: 4 of 9 fits finished" in (out / "summary.md").read_text()
    recorded = (out / FILENAME).read_text().splitlines()
    assert len(recorded) == 1 + 4  # the header, then one line per finished fit

    # without --resume the unfinished run is protected
    assert main(_argv(csv, out, "-q", *flags)) == EXIT_INPUT
    assert "unfinished run" in capsys.readouterr().err
    # nor does it resume with stacking switched
    other = () if flags else ("--no-stacking",)
    assert main(_argv(csv, out, "-q", "--resume", *other)) == EXIT_INPUT
    assert "stacking differs" in capsys.readouterr().err

    calls = _count_net_fits(monkeypatch)
    assert main(_argv(csv, out, "--resume", *flags)) == 0
    assert len(calls) == 5 * passes  # only the missing fits ran
    assert "resuming: 4 of 9 fits already done" in capsys.readouterr().err
    lines = (out / FILENAME).read_text().splitlines()
    assert lines[:5] == recorded and len(lines) == 10
    # a resumed stacked run stacks only the missing fits: within float32
    # rounding of the uninterrupted run; without stacking, bit for bit
    _same_results(pd.read_csv(out / "results.csv"), reference[flags], exact=bool(flags))


def test_killed_process_resumes_with_identical_results(
    csv, reference, tmp_path, monkeypatch
):
    out = tmp_path / "killed"
    records = out / FILENAME
    proc = subprocess.Popen(
        [sys.executable, "-m", "skweighted", *_argv(csv, out, "-q")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and len(records.read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    done = len(records.read_bytes().splitlines()) - 1
    assert 2 <= done < 9, "the process must be killed mid-run"
    assert not (out / "results.csv").exists()

    calls = _count_net_fits(monkeypatch)
    assert main(_argv(csv, out, "--resume")) == 0
    # a record the kill cut short is detected, dropped and run again; each
    # missing fit runs twice (recorded, then loading its stacked weights)
    assert len(calls) in (2 * (9 - done), 2 * (9 - done + 1))
    _same_results(pd.read_csv(out / "results.csv"), reference[()])  # float32 rounding


def test_python_keyboard_interrupt_carries_the_partial_comparison(data, tmp_path):
    X, y = data

    class Stop(CountingLR):
        def fit(self, X, y, sample_weight=None):
            if len(CALLS) == 2:
                raise KeyboardInterrupt
            return super().fit(X, y, sample_weight)

    CALLS.clear()
    with pytest.raises(KeyboardInterrupt) as info:
        _lr(data, strategies={"lr": Stop(**LIBLINEAR)}, checkpoint=tmp_path)
    partial = info.value.comparison
    assert sorted(partial.results["fold"].unique()) == [0, 1]
    assert partial.notes[-1].startswith("Partial report: 2 of 3 fits finished")
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        _lr(data, resume=True)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y": "flip"}, "the data differ: y"),
        ({"cv": 4}, "the folds differ (3 -> 4 folds)"),
        (
            {
                "strategies": {
                    "lr": CountingLR(C=3.0, **LIBLINEAR),
                    "lr_c2": CountingLR(C=2.0, **LIBLINEAR),
                }
            },
            "strategy 'lr': C 1.0 -> 3.0",
        ),
        (
            {"strategies": {"lr": CountingLR(**LIBLINEAR)}},
            "the strategies differ: ['lr', 'lr_c2'] -> ['lr']",
        ),
        ({"estimator": default_estimator(lr=0.5)}, "the estimator differs: lr"),
        ({"scoring": ["accuracy"]}, "the metrics differ"),
        ({"random_state": 1}, "random_state differs: 0 -> 1"),
    ],
)
def test_resume_refuses_other_data_or_settings(data, tmp_path, change, message):
    _lr(data, checkpoint=tmp_path)
    X, y = data
    if change.pop("y", None):
        y = y.copy()
        y[:2] = 1 - y[:2]
    with pytest.raises(ResumeError, match="cannot resume") as info:
        _lr((X, y), checkpoint=tmp_path, resume=True, **change)
    assert message in str(info.value)


# 4. Damaged records -----------------------------------------------------------


def _damage(path, how):
    lines = path.read_text().splitlines(keepends=True)
    if how == "truncated":
        lines[-1] = lines[-1][: len(lines[-1]) // 2]  # a write cut short
    elif how == "altered":
        body = json.loads(lines[2])
        score = body["body"]["scores"]["balanced_accuracy"]
        body["body"]["scores"]["balanced_accuracy"] = score / 2  # valid JSON
        lines[2] = json.dumps(body) + "\n"
    elif how == "garbage":
        lines.insert(3, "\x00\x00{not json\n")
    elif how == "bytes":  # not even UTF-8
        path.write_bytes(path.read_bytes() + b"\xff\xfe\x80\n")
        return
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    "how, rerun", [("truncated", 1), ("altered", 1), ("garbage", 0), ("bytes", 0)]
)
def test_damaged_records_are_dropped_and_their_fits_rerun(data, tmp_path, how, rerun):
    CALLS.clear()
    reference = _lr(data, checkpoint=tmp_path)
    assert len(CALLS) == 6
    _damage(tmp_path / FILENAME, how)
    CALLS.clear()
    with pytest.warns(RuntimeWarning, match="damaged record") as warned:
        resumed = _lr(data, checkpoint=tmp_path, resume=True)
    assert len(warned) == 1
    assert len(CALLS) == rerun
    _same_results(resumed.results, reference.results)
    # the damaged lines are gone: a second resume reads six clean records
    CALLS.clear()
    again = _lr(data, checkpoint=tmp_path, resume=True)
    _same_results(again.results, reference.results)
    assert len(CALLS) == 0
    # the reliability diagram comes back from the records too
    pd.testing.assert_frame_equal(again.reliability, reference.reliability)


def test_a_finished_run_is_replaced_and_resume_needs_no_records(data, tmp_path):
    CALLS.clear()
    first = _lr(data, checkpoint=tmp_path / "new", resume=True)  # nothing to resume
    assert len(CALLS) == 6
    again = _lr(data, checkpoint=tmp_path / "new", cv=2)  # finished: replaced
    assert len(CALLS) == 6 + 4
    assert again.results["fold"].nunique() == 2
    assert first.results["fold"].nunique() == 3
    lines = (tmp_path / "new" / FILENAME).read_text().splitlines()
    assert len(lines) == 1 + 4


def test_a_damaged_header_is_a_clear_error(data, tmp_path):
    _lr(data, checkpoint=tmp_path)
    path = tmp_path / FILENAME
    path.write_text(path.read_text().replace("lr_c2", "lr_c3", 1))
    with pytest.raises(ResumeError, match="header is damaged"):
        _lr(data, checkpoint=tmp_path, resume=True)


def test_record_round_trip_is_exact():
    record = FitRecord("s", 2, {"a": 0.1 + 0.2, "b": np.nan}, 1 / 3, np.nan)
    back = FitRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert back.scores["a"] == 0.1 + 0.2 and np.isnan(back.scores["b"])
    assert back.fit_time == 1 / 3 and back.key == ("s", 2)
    with pytest.raises(ValueError):
        FitRecord.from_dict({**record.to_dict(), "error_type": "X"})
    rows = [["rare", 0, 12, 0.1 + 0.2, 1 / 3], [1, 9, 3, 0.95, 1.0]]
    record = FitRecord("s", 0, {"a": 1.0}, 1.0, 1.0, reliability=rows)
    back = FitRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert back.reliability == rows


# Progress -------------------------------------------------------------------


def test_progress_is_plain_lines_off_a_terminal():
    stream = io.StringIO()
    bar = Progress(3, done=1, failed=0, stream=stream)
    bar.update(FitRecord("none", 1, {"m": 1.0}, 1.0, 0.1))
    bar.update(FitRecord("none", 2, None, 1.0, np.nan, "FloatingPointError", "x"))
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "resuming: 1 of 3 fits already done"
    assert lines[1].startswith("[2/3] none fold 1: ok | 0 failed | ETA 0:00:0")
    assert lines[2].startswith(
        "[3/3] none fold 2: failed (FloatingPointError) | 1 failed | ETA 0:00:00"
    )
    assert "\r" not in stream.getvalue()
    silent = io.StringIO()
    Progress(3, enabled=False, stream=silent).update(
        FitRecord("none", 0, {"m": 1.0}, 1.0, 0.1)
    )
    assert silent.getvalue() == ""


# 3. A lost Dask worker --------------------------------------------------------


@pytest.mark.slow
def test_a_killed_dask_worker_changes_no_number(data, tmp_path):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X, y = data
    marker = tmp_path / "killed"
    kwargs = {
        "strategies": {
            "none": "none",
            "killer": KillsItsWorkerOnce(rows=(0,), marker=str(marker)),
            "lr": LogisticRegression(**LIBLINEAR),
        },
        "estimator": default_estimator(max_epochs=2),
        "cv": 3,
        "scoring": SCORING,
        "random_state": 0,
    }
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        before = set(client.scheduler_info()["workers"])
        with parallel_config(backend="dask"):
            remote = compare(X, y, **kwargs)
        assert marker.exists()  # a worker process died in the middle of a fit
        lost = before - set(client.scheduler_info()["workers"])
        assert len(lost) == 1  # ... and the scheduler saw it go
    local = compare(X, y, n_jobs=1, **kwargs)
    assert remote.notes == local.notes == []
    _same_results(remote.results, local.results)


def test_other_scorers_under_the_same_names_are_named():
    from skweighted.comparison._fingerprint import describe_differences

    same = {
        "data": {"X": "x", "y": "y", "shape": [2, 1]},
        "folds": {"hash": "f", "n_folds": 2},
        "strategies": {},
        "estimator": {},
        "random_state": ["r", "0"],
        "versions": {},
    }
    old = {**same, "scoring": {"accuracy": ["a", 1], "log_loss": ["b", -1]}}
    new = {**same, "scoring": {"accuracy": ["a", 1], "log_loss": ["c", -1]}}
    (said,) = describe_differences(old, new)
    assert said.startswith("the scorers of ['log_loss'] differ (same names;")

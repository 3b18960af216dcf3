"""The ``skweighted`` command: a report on success, one line and exit 2 on bad input."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skweighted.cli import DEFAULT_OUT, main


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(90, 3)), columns=["a", "b", "c"])
    frame["label"] = np.where(np.arange(90) < 75, "common", "rare")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _write(tmp_path, frame):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _one_line_error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("skweighted: error: ")
    assert match in err
    assert "Traceback" not in err


def test_missing_file(capsys, tmp_path):
    _one_line_error(
        capsys,
        ["compare", str(tmp_path / "nope.csv"), "--target", "y"],
        "file not found",
    )


def test_unknown_column(capsys, csv):
    path, _ = csv
    _one_line_error(
        capsys, ["compare", str(path), "--target", "nope"], "column 'nope' not found"
    )


def test_target_required_with_csv(capsys, csv):
    path, _ = csv
    _one_line_error(capsys, ["compare", str(path)], "--target")


def test_single_class_target(capsys, csv, tmp_path):
    _, frame = csv
    frame = frame.assign(label="common")
    _one_line_error(
        capsys,
        ["compare", _write(tmp_path, frame), "--target", "label"],
        "single class",
    )


def test_non_numeric_features(capsys, csv, tmp_path):
    _, frame = csv
    frame = frame.assign(colour=["red", "blue", "green"] * 30)
    _one_line_error(
        capsys,
        ["compare", _write(tmp_path, frame), "--target", "label"],
        "non-numeric feature column(s) 'colour'",
    )


def test_unknown_strategy_and_option(capsys, csv):
    path, _ = csv
    argv = ["compare", str(path), "--target", "label"]
    _one_line_error(capsys, [*argv, "--strategies", "none,nope"], "'nope'")
    _one_line_error(capsys, [*argv, "--folds", "1"], "--folds")
    _one_line_error(capsys, [*argv, "--worker-timeout", "0"], "--worker-timeout")
    _one_line_error(capsys, [*argv, "--bogus"], "unrecognized arguments")
    _one_line_error(capsys, ["compare", "--dataset", "nope"], "invalid choice")


def test_python_m_entry_point_exit_status(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "skweighted", "compare", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"skweighted: error: file not found: {tmp_path / 'x.csv'}"
    ]


def test_csv_run_writes_the_report(capsys, csv, tmp_path):
    path, _ = csv
    out = tmp_path / "out"
    argv = ["compare", str(path), "--target", "label", "--out", str(out)]
    argv += ["--strategies", "none,balanced,threshold", "--folds", "3"]
    argv += ["--epochs", "2", "--seed", "1", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "balanced_accuracy" in printed and "recall[rare]" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.png",
        "fits.jsonl",
        "reliability.png",
        "report.html",
        "results.csv",
        "summary.md",
    ]
    for png in ("comparison.png", "reliability.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<a href="fits.jsonl">' in html  # the CLI always records the fits
    # the printed table fits in 100 columns (stdout is not a terminal here)
    assert max(len(line) for line in printed.splitlines() if "±" in line) <= 100
    results = pd.read_csv(out / "results.csv")
    assert set(results["strategy"]) == {"none", "balanced", "threshold"}
    assert set(results["fold"]) == {0, 1, 2}
    calibration = ["brier", "ece", "calibration_intercept", "calibration_slope"]
    assert set(calibration) <= set(results["metric"])
    assert results["value"].notna().all()  # no fit or scorer failed
    summary = (out / "summary.md").read_text()
    header = next(line for line in summary.splitlines() if line.startswith("| strat"))
    assert all(f" {m} |" in header for m in calibration)
    assert "Nadeau & Bengio" in summary and "best at 1" in summary
    # every metric column has its best strategy marked (after strategy, rank
    # and the mean epochs of its networks)
    assert header.strip("| ").split(" | ")[:3] == ["strategy", "rank", "epochs"]
    rows = [line for line in summary.splitlines() if line.startswith("| ")][2:]
    cells = [line.strip("| ").split(" | ")[3:] for line in rows]
    assert all(any(c.endswith("\\*") for c in column) for column in zip(*cells))


def test_default_out_matches_the_readme():
    assert DEFAULT_OUT == "skweighted-report"


def test_compare_on_the_image_data_set(tmp_path, capsys):
    """``--dataset digits_images``: 4-D images through every kind of strategy."""
    out = tmp_path / "images"
    argv = ["compare", "--dataset", "digits_images", "--epochs", "1"]
    argv += ["--folds", "2", "--strategies", "none,balanced,smote,random_under"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "X is an N-D array, not a table" in printed
    results = pd.read_csv(out / "results.csv")
    assert set(results["strategy"]) == {"none", "balanced", "smote", "random_under"}
    assert results["value"].notna().all()
    assert (out / "summary.md").exists() and (out / "comparison.png").exists()

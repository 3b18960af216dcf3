"""skweighted.comparison: schema, determinism, leakage, threshold moving, report."""

import struct
import types

import numpy as np
import pandas as pd
import pytest
from imblearn import FunctionSampler
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skweighted import WeightedNeuralNetClassifier, compare, load_imbalanced
from skweighted.comparison import (
    DEFAULT_STRATEGIES,
    GMEAN_CORRECTION,
    default_estimator,
    default_scoring,
    geometric_mean,
)
from skweighted.comparison._report import DPI, figure_size
from skweighted.comparison._runner import _one_torch_thread

STRATEGIES = ["none", "balanced", "random_over", "balanced_sampler", "threshold"]
N_FOLDS = 3

# Rows seen by the recording sampler, one array of row ids per fit.
SEEN = []


def _record(X, y):
    SEEN.append(np.asarray(X)[:, 0].astype(int))
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=240, n_features=6, weights=[0.85], random_state=0
    )
    X[:, 0] = np.arange(len(X))  # a row id the recording sampler reads back
    return X, y


@pytest.fixture(scope="module")
def result(data):
    X, y = data
    SEEN.clear()
    strategies = {name: name for name in STRATEGIES}
    recorder = FunctionSampler(func=_record, validate=False)
    strategies["recorded"] = make_imb_pipeline(
        recorder, StandardScaler(), default_estimator(max_epochs=2)
    )
    return compare(
        X,
        y,
        strategies=strategies,
        estimator=default_estimator(max_epochs=3),
        cv=N_FOLDS,
        random_state=0,
    )


def test_results_schema(result):
    results, summary = result.results, result.summary
    assert results.columns.tolist() == [
        "strategy",
        "fold",
        "metric",
        "value",
        "fit_time",
        "score_time",
    ]
    metrics = list(default_scoring([0, 1]))
    assert list(result.metrics) == metrics
    assert len(results) == (len(STRATEGIES) + 1) * N_FOLDS * len(metrics)
    assert list(dict.fromkeys(results["strategy"])) == [*STRATEGIES, "recorded"]
    assert sorted(results["fold"].unique()) == list(range(N_FOLDS))
    assert results["value"].notna().all()
    assert (results["fit_time"] > 0).all()
    bounded = results[results["metric"] != "log_loss"]["value"]
    assert bounded.between(0, 1).all()
    assert (results.loc[results["metric"] == "log_loss", "value"] > 0).all()
    assert result.metrics["log_loss"] is False
    assert result.metrics["balanced_accuracy"] is True
    assert result.class_counts == {0: 204, 1: 36}
    assert result.notes == []

    assert summary.columns.tolist() == ["strategy", "metric", "mean", "std", "rank"]
    assert len(summary) == (len(STRATEGIES) + 1) * len(metrics)
    means = results.groupby(["strategy", "metric"])["value"].mean()
    for row in summary.itertuples():
        assert row.mean == pytest.approx(means[row.strategy, row.metric])
    for metric, part in summary.groupby("metric"):
        best = part.loc[part["rank"] == 1, "mean"]
        pick = part["mean"].min() if metric == "log_loss" else part["mean"].max()
        assert (best == pick).all()

    table = result.table()
    assert (
        table.index[0]
        == summary.query("metric == 'balanced_accuracy' and rank == 1")[
            "strategy"
        ].iloc[0]
    )
    assert table["rank"].is_monotonic_increasing


def test_numbers_equal_cross_validate_by_hand(data, result):
    X, y = data
    with _one_torch_thread():  # as compare runs it; only faster on a busy CPU
        by_hand = cross_validate(
            result.strategies["random_over"],
            X,
            y,
            cv=StratifiedKFold(N_FOLDS),
            scoring=["balanced_accuracy", "neg_log_loss"],
        )
    part = result.results.query("strategy == 'random_over'")
    got = part.query("metric == 'balanced_accuracy'")["value"].to_numpy()
    np.testing.assert_array_equal(got, by_hand["test_balanced_accuracy"])
    got = part.query("metric == 'log_loss'")["value"].to_numpy()
    np.testing.assert_array_equal(got, -by_hand["test_neg_log_loss"])


def test_same_seed_same_numbers(data, result):
    X, y = data
    again = compare(
        X,
        y,
        strategies=["random_over", "balanced_sampler"],
        estimator=default_estimator(max_epochs=3),
        cv=N_FOLDS,
        random_state=0,
    )
    before = result.results[result.results["strategy"].isin(again.strategies)]
    np.testing.assert_array_equal(
        again.results["value"].to_numpy(), before["value"].to_numpy()
    )
    other = compare(
        X,
        y,
        strategies=["random_over"],
        estimator=default_estimator(max_epochs=3),
        cv=N_FOLDS,
        random_state=1,
    )
    first = before[before["strategy"] == "random_over"]["value"].to_numpy()
    assert not np.array_equal(other.results["value"].to_numpy(), first)


def test_resampling_never_sees_the_evaluation_folds(data, result):
    X, y = data
    splits = list(StratifiedKFold(N_FOLDS).split(X, y))
    # once per fit in each of stacking's two passes (record, then replay),
    # never at predict time
    assert len(SEEN) == 2 * N_FOLDS
    for seen, (train, test) in zip(SEEN, splits * 2):
        assert set(seen) == set(train)
        assert not set(seen) & set(test)


def test_threshold_moving_binary_only(result):
    tuned = result.strategies["threshold"]
    assert type(tuned).__name__ == "TunedThresholdClassifierCV"
    assert tuned.scoring == "balanced_accuracy"
    # Threshold moving keeps the probabilities of the uncorrected network.
    part = result.summary.set_index(["strategy", "metric"])["mean"]
    assert part["threshold", "roc_auc"] == part["none", "roc_auc"]

    X, y = load_imbalanced("wine", return_X_y=True)
    multi = compare(
        X,
        y,
        strategies=["none", "threshold"],
        estimator=default_estimator(max_epochs=2),
        cv=2,
        scoring=["balanced_accuracy"],
        random_state=0,
    )
    assert list(multi.strategies) == ["none"]
    assert len(multi.notes) == 1
    assert "threshold" in multi.notes[0] and "binary" in multi.notes[0]
    assert "threshold" in multi.to_markdown()


def test_default_strategies_cover_every_family():
    assert {"none", "balanced", "random_over", "random_under", "smote"} <= set(
        DEFAULT_STRATEGIES
    )
    assert {"balanced_sampler", "sampler+weights", "threshold"} <= set(
        DEFAULT_STRATEGIES
    )


def test_geometric_mean_correction():
    y_true = [0, 0, 1, 1]
    assert geometric_mean(y_true, [0, 0, 0, 0]) == pytest.approx(
        np.sqrt(1.0 * GMEAN_CORRECTION)
    )
    assert geometric_mean(y_true, [0, 1, 0, 1]) == pytest.approx(0.5)
    assert "recall[b]" in default_scoring(["a", "b", "c"])
    assert "roc_auc" not in default_scoring(["a", "b", "c"])


def test_failed_fit_becomes_a_note(data):
    X, y = data
    res = compare(
        X,
        y,
        strategies={"smote_too_wide": SMOTE(k_neighbors=500), "none": "none"},
        estimator=default_estimator(max_epochs=1),
        cv=2,
        scoring="balanced_accuracy",
        random_state=0,
    )
    failed = res.results.query("strategy == 'smote_too_wide'")["value"]
    assert failed.isna().all()
    assert res.results.query("strategy == 'none'")["value"].notna().all()
    assert len(res.notes) == 2 and "smote_too_wide" in res.notes[0]
    with pytest.raises(ValueError, match="n_neighbors"):
        compare(
            X,
            y,
            strategies=[SMOTE(k_neighbors=500)],
            estimator=default_estimator(max_epochs=1),
            cv=2,
            scoring="accuracy",
            error_score="raise",
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"strategies": ["nope"]}, "Unknown strategy 'nope'"),
        ({"strategies": [42]}, "must be a built-in name"),
        ({"strategies": []}, "strategies is empty"),
        ({"scoring": []}, "scoring must be"),
        ({"error_score": "ignore"}, "error_score"),
    ],
)
def test_bad_arguments_raise_before_training(data, kwargs, match):
    X, y = data
    with pytest.raises((ValueError, TypeError), match=match):
        compare(X, y, **kwargs)


def test_single_class_target_is_rejected(data):
    X, _ = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        compare(X, np.zeros(len(X)))


def test_report_files(result, tmp_path):
    paths = result.save(tmp_path / "report", title="test")
    assert sorted(p.name for p in paths.values()) == [
        "comparison.png",
        "results.csv",
        "summary.md",
    ]
    back = pd.read_csv(paths["results"])
    np.testing.assert_allclose(back["value"], result.results["value"])
    summary = paths["summary"].read_text()
    assert summary.startswith("# test")
    for name in result.strategies:
        assert f"| {name} |" in summary

    png = paths["plot"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    w_in, h_in = figure_size(len(result.metrics))
    assert (width, height) == (round(w_in * DPI), round(h_in * DPI))
    assert len(png) > 30_000  # drawn panels, not an empty canvas


@pytest.mark.slow
def test_dask_cluster_gives_the_n_jobs_1_numbers(data):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X, y = data
    X, y = X[:120], y[:120]
    kwargs = {
        "strategies": ["none", "random_over", "threshold"],
        "estimator": default_estimator(max_epochs=2),
        "cv": 2,
        "scoring": ["balanced_accuracy", "neg_log_loss"],
        "random_state": 0,
    }
    search_kwargs = {
        "param_grid": {"weightedneuralnetclassifier__class_weight": [None, "balanced"]},
        "cv": 2,
        "scoring": "balanced_accuracy",
    }
    pipe = make_pipeline(
        StandardScaler(), WeightedNeuralNetClassifier(max_epochs=2, random_state=0)
    )
    local = compare(X, y, n_jobs=1, **kwargs)
    local_search = GridSearchCV(pipe, n_jobs=1, **search_kwargs).fit(X, y)

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
        with distributed.get_task_stream(client) as stream:
            with parallel_config(backend="dask"):
                remote = compare(X, y, **kwargs)
                remote_search = GridSearchCV(pipe, **search_kwargs).fit(X, y)
        assert len(stream.data) >= 6 + 4  # the fits ran as tasks on the cluster
        workers = {task["worker"] for task in stream.data}
        assert workers <= set(client.scheduler_info()["workers"])

    pd.testing.assert_frame_equal(
        remote.results.drop(columns=["fit_time", "score_time"]),
        local.results.drop(columns=["fit_time", "score_time"]),
    )
    np.testing.assert_array_equal(
        remote_search.cv_results_["mean_test_score"],
        local_search.cv_results_["mean_test_score"],
    )


def test_module_and_function_names_coexist():
    import importlib

    import skweighted
    import skweighted.comparison as module

    assert isinstance(module, types.ModuleType)
    assert (
        module.default_estimator
        is importlib.import_module("skweighted.comparison").default_estimator
    )
    assert callable(skweighted.compare) and skweighted.compare is module.compare
    # the old spelling of the package still imports its names
    from skweighted.compare import default_estimator

    assert default_estimator is module.default_estimator


def test_stacking_off_gives_the_same_numbers_and_notes_say_what_trained_alone(
    data, result
):
    from skweighted.losses import FocalLoss

    X, y = data
    focal = default_estimator(max_epochs=3).set_params(criterion=FocalLoss)
    strategies = {"balanced": "balanced", "focal": make_pipeline(focal)}
    kwargs = dict(estimator=default_estimator(max_epochs=3), cv=N_FOLDS, random_state=0)
    stacked = compare(X, y, strategies=strategies, **kwargs)
    alone = compare(X, y, strategies=strategies, stacking=False, **kwargs)
    np.testing.assert_allclose(
        stacked.results["value"], alone.results["value"], atol=1e-6
    )
    assert alone.notes == []
    assert stacked.notes == [
        f"stacking: {N_FOLDS} of {2 * N_FOLDS} network fits trained separately "
        "(criterion FocalLoss: only WeightedCrossEntropyLoss is stacked)."
    ]
    # the balanced strategy matches the shared fixture, which was stacked too
    before = result.results.query("strategy == 'balanced'")["value"].to_numpy()
    got = stacked.results.query("strategy == 'balanced'")["value"].to_numpy()
    np.testing.assert_array_equal(got, before)

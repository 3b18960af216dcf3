"""skweighted.comparison: schema, determinism, leakage, threshold moving, report."""

import struct
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn import FunctionSampler
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from scipy import stats
from sklearn.base import clone
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_classification
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skweighted import WeightedNeuralNetClassifier, compare, load_imbalanced
from skweighted._threads import one_torch_thread
from skweighted.comparison import (
    DEFAULT_STRATEGIES,
    ECE_BINS,
    GMEAN_CORRECTION,
    calibration_intercept_slope,
    default_estimator,
    default_scoring,
    geometric_mean,
    input_kind,
    make_strategies,
)
from skweighted.comparison._metrics import balanced_accuracy
from skweighted.comparison._report import (
    DPI,
    figure_size,
    paired_p_value,
    summarize,
)

STRATEGIES = [
    "none",
    "balanced",
    "balanced+corrected",
    "random_over",
    "balanced_sampler",
    "threshold",
]
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
        "epochs",
        "error_type",
        "error_message",
    ]
    assert results[["error_type", "error_message"]].isna().all().all()
    # every strategy trains networks (with early stopping: at most max_epochs)
    assert results["epochs"].between(1, 3).all()
    assert result.failed == []
    metrics = list(default_scoring([0, 1]))
    assert list(result.metrics) == metrics
    assert len(results) == (len(STRATEGIES) + 1) * N_FOLDS * len(metrics)
    assert list(dict.fromkeys(results["strategy"])) == [*STRATEGIES, "recorded"]
    assert sorted(results["fold"].unique()) == list(range(N_FOLDS))
    assert results["value"].notna().all()
    assert (results["fit_time"] > 0).all()
    unbounded = ["log_loss", "calibration_intercept", "calibration_slope"]
    bounded = results[~results["metric"].isin(unbounded)]["value"]
    assert bounded.between(0, 1).all()
    assert (results.loc[results["metric"] == "log_loss", "value"] > 0).all()
    assert result.metrics["log_loss"] is False
    assert result.metrics["brier"] is False and result.metrics["ece"] is False
    assert result.metrics["balanced_accuracy"] is True
    assert result.metrics["calibration_intercept"] == 0.0
    assert result.metrics["calibration_slope"] == 1.0
    assert result.class_counts == {0: 204, 1: 36}
    assert result.notes == []

    assert summary.columns.tolist() == [
        "strategy",
        "metric",
        "mean",
        "std",
        "rank",
        "p_value",
        "tied",
    ]
    assert len(summary) == (len(STRATEGIES) + 1) * len(metrics)
    means = results.groupby(["strategy", "metric"])["value"].mean()
    for row in summary.itertuples():
        assert row.mean == pytest.approx(means[row.strategy, row.metric])
    for metric, part in summary.groupby("metric"):
        best = part.loc[part["rank"] == 1, "mean"]
        goal = result.metrics[metric]
        if metric in ("calibration_intercept", "calibration_slope"):
            pick = part["mean"].iloc[np.argmin(np.abs(part["mean"] - goal))]
        elif goal:
            pick = part["mean"].max()
        else:
            pick = part["mean"].min()
        assert (best == pick).all()
        assert part.loc[part["rank"] == 1, "tied"].all()
        # p-values are against one best strategy (the first of equal means)
        assert part["p_value"].isna().sum() == 1
        others = part[part["rank"] > 1]
        assert (others["tied"] == (others["p_value"] >= 0.05)).all()

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
    with one_torch_thread():  # as compare runs it; only faster on a busy CPU
        by_hand = cross_validate(
            result.strategies["random_over"],
            X,
            y,
            cv=StratifiedKFold(N_FOLDS),
            scoring=["balanced_accuracy", "neg_log_loss"],
        )
    part = result.results.query("strategy == 'random_over'")
    # the same decisions; the probabilities of a stacked fit round differently
    # in the last float32 bits (stacking=False: equal, test_compare_stacking.py)
    got = part.query("metric == 'balanced_accuracy'")["value"].to_numpy()
    np.testing.assert_array_equal(got, by_hand["test_balanced_accuracy"])
    got = part.query("metric == 'log_loss'")["value"].to_numpy()
    np.testing.assert_allclose(got, -by_hand["test_neg_log_loss"], rtol=0, atol=1e-6)


def test_calibration_metrics_equal_scikit_learn_by_hand(data, result):
    # by hand, the fits are separate: the stacked ones agree within float32
    # rounding, hence the absolute tolerances
    X, y = data
    strategy = result.strategies["balanced"]
    part = result.results.query("strategy == 'balanced'").set_index(["metric", "fold"])
    curves = result.reliability.query("strategy == 'balanced'")
    for k, (train, test) in enumerate(StratifiedKFold(N_FOLDS).split(X, y)):
        with one_torch_thread():
            p = clone(strategy).fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        assert part.loc[("brier", k), "value"] == pytest.approx(
            brier_score_loss(y[test], p), abs=1e-6
        )
        # The ECE's bins are calibration_curve's: its per-bin means, weighted by
        # the bins' sizes.
        observed, predicted = calibration_curve(y[test], p, n_bins=ECE_BINS)
        edges = np.linspace(0, 1, ECE_BINS + 1)
        sizes = np.bincount(np.searchsorted(edges[1:-1], p), minlength=ECE_BINS)
        ece = np.sum(sizes[sizes > 0] * np.abs(observed - predicted)) / len(test)
        assert part.loc[("ece", k), "value"] == pytest.approx(ece, abs=1e-6)
        intercept, slope = calibration_intercept_slope(y[test], p)
        assert part.loc[("calibration_intercept", k), "value"] == pytest.approx(
            intercept, abs=1e-4
        )
        assert part.loc[("calibration_slope", k), "value"] == pytest.approx(
            slope, abs=1e-4
        )
        fold = curves[(curves["fold"] == k) & (curves["class"] == 1)]
        np.testing.assert_allclose(fold["observed"], observed)
        np.testing.assert_allclose(fold["predicted"], predicted, rtol=0, atol=1e-6)
        assert fold["count"].sum() == len(test)


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
    # stacked with other strategies, a fit may round differently in the last
    # float32 bits
    np.testing.assert_allclose(
        again.results["value"].to_numpy(), before["value"].to_numpy(), atol=1e-6
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
    # Stacking runs each fit twice: the recording pass (every fold), then the
    # fit that is scored (every fold); never at predict time.
    assert len(SEEN) == 2 * N_FOLDS
    for seen, (train, test) in zip(SEEN, splits + splits):
        assert set(seen) == set(train)
        assert not set(seen) & set(test)


def test_corrected_strategies_keep_decisions_and_change_probabilities(data, result):
    part = result.results.pivot_table(
        index=["metric", "fold"], columns="strategy", values="value"
    )
    for metric in ("balanced_accuracy", "accuracy", "recall[1]"):
        np.testing.assert_array_equal(
            part.loc[metric, "balanced+corrected"], part.loc[metric, "balanced"]
        )
    brier = part.loc["brier"]
    assert not np.allclose(brier["balanced+corrected"], brier["balanced"])
    model = result.strategies["balanced+corrected"][-1]
    assert model.correct_proba and model.class_weight == "balanced"

    X, y = data
    built, _ = make_strategies(
        ["random_under+corrected", "balanced_sampler+corrected"],
        default_estimator(),
        classes=np.array([0, 1]),
        class_prior=[0.85, 0.15],
    )
    under = built["random_under+corrected"]
    # the network resamples its own training rows, after its validation split
    assert list(under.named_steps) == ["scale", "model"]
    assert type(under[-1].resampler).__name__ == "RandomUnderSampler"
    assert under[-1].class_prior == [0.85, 0.15] and under[-1].correct_proba
    sampler = built["balanced_sampler+corrected"][-1]
    assert sampler.sampler == "balanced" and sampler.class_prior is None
    with pytest.raises(ValueError, match="needs the class prior"):
        make_strategies(["smote+corrected"], default_estimator(), classes=[0, 1])
    with pytest.raises(ValueError, match="Unknown strategy 'none\\+corrected'"):
        make_strategies(["none+corrected"], default_estimator(), classes=[0, 1])


def test_threshold_moving_binary_only(result):
    tuned = result.strategies["threshold"]
    assert type(tuned).__name__ == "TunedThresholdClassifierCV"
    # scikit-learn's balanced accuracy, computed faster (test_compare_metrics.py)
    assert tuned.scoring._score_func is balanced_accuracy
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
    assert len(res.notes) == 3 and "smote_too_wide" in res.notes[0]
    assert res.notes[2] == "smote_too_wide: every fit failed; it ranks last."
    assert res.failed == ["smote_too_wide"]
    rows = res.results.query("strategy == 'smote_too_wide'")
    assert (rows["error_type"] == "ValueError").all()
    assert rows["error_message"].str.contains("n_neighbors").all()
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
        "reliability.png",
        "report.html",
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
    png = paths["reliability"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    # the means are tick labels of a right-hand axis, outside the data area
    # where the fold dots are, in the order of the rows
    fig = result.plot()
    means = result.summary.set_index(["metric", "strategy"])["mean"]
    order = result.table().index
    for ax, metric in zip(fig.axes, result.metrics):
        (right,) = ax.child_axes
        labels = [t.get_text() for t in right.get_yticklabels()]
        assert labels == [f"{means[metric, s]:.3f}" for s in order]
    # one reliability panel per strategy (with probabilities), each titled
    panels = [ax for ax in result.plot_reliability().axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in panels) == sorted(result.strategies)

    # A cell is marked exactly when the summary says tied, in the table and
    # in summary.md, and summary.md says how ties are decided.
    assert "Nadeau & Bengio" in summary
    table = result.table()
    tied = result.summary.set_index(["strategy", "metric"])["tied"]
    for name, row in table.iterrows():
        for metric in result.metrics:
            assert row[metric].endswith(" *") == tied[name, metric]
    rows = {line.split(" | ")[0][2:]: line for line in summary.splitlines()}
    for name in result.strategies:
        marks = rows[name].count("\\*")
        assert marks == int(tied.xs(name, level="strategy").sum())


def _results(values):
    """Tidy results for one metric 'm' from {strategy: fold values}."""
    rows = [
        (name, k, "m", v, 1.0, 1.0)
        for name, vals in values.items()
        for k, v in enumerate(vals)
    ]
    return pd.DataFrame(
        rows, columns=["strategy", "fold", "metric", "value", "fit_time", "score_time"]
    )


def test_paired_test_is_the_corrected_resampled_t_test():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.8, 0.02, 10), rng.normal(0.79, 0.02, 10)
    # Without the overlap correction it is the paired t-test.
    p = paired_p_value(b, a, test_train_ratio=0.0)
    assert p == pytest.approx(stats.ttest_rel(b, a).pvalue)
    # The correction widens the variance, so the p-value grows.
    assert paired_p_value(b, a, test_train_ratio=1 / 9) > p
    assert paired_p_value(a, a, 0.25) == 1.0
    assert paired_p_value(a + 0.01, a, 0.25) == 0.0
    assert np.isnan(paired_p_value([np.nan, *a[1:]], a, 0.25))


def test_summary_marks_ties_with_the_best():
    values = {
        "best": [0.80, 0.82, 0.78, 0.81, 0.79],
        "noisy": [0.81, 0.79, 0.79, 0.80, 0.78],  # 0.006 lower, within noise
        "worse": [0.70, 0.71, 0.69, 0.72, 0.70],  # consistently 0.1 lower
    }
    summary = summarize(_results(values), {"m": True}).set_index("strategy")
    assert summary["rank"].to_dict() == {"best": 1, "noisy": 2, "worse": 3}
    assert summary["tied"].to_dict() == {"best": True, "noisy": True, "worse": False}
    assert summary.loc["worse", "p_value"] < 0.05 <= summary.loc["noisy", "p_value"]

    # Lower is better: the same numbers, negated, rank the same way.
    negated = {k: [-v for v in vals] for k, vals in values.items()}
    lower = summarize(_results(negated), {"m": False}).set_index("strategy")
    pd.testing.assert_series_equal(lower["tied"], summary["tied"])

    # A metric best at 1 (the calibration slope) ranks by the distance to 1.
    slopes = {"steep": [1.6, 1.5, 1.7], "right": [1.02, 0.97, 1.0], "flat": [0.5] * 3}
    at_one = summarize(_results(slopes), {"m": 1.0}).set_index("strategy")
    assert at_one["rank"].to_dict() == {"steep": 3, "right": 1, "flat": 2}


@pytest.mark.slow
def test_dask_cluster_gives_the_n_jobs_1_numbers(data, dask_client):
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
        # each fit a task on the cluster (stack chunks on it: see
        # test_compare_stacking.py)
        "stacking": False,
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

    # the session's cluster: 2 worker processes with 2 threads each
    with distributed.get_task_stream(dask_client) as stream:
        with parallel_config(backend="dask"):
            remote = compare(X, y, **kwargs)
            remote_search = GridSearchCV(pipe, **search_kwargs).fit(X, y)
    assert len(stream.data) >= 6 + 4  # the fits ran as tasks on the cluster
    workers = {task["worker"] for task in stream.data}
    assert workers <= set(dask_client.scheduler_info()["workers"])

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


def test_default_scoring_takes_string_labels():
    # scikit-learn's 'average_precision' scorer assumes pos_label=1
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(40, 2))
    names = np.array(["common"] * 30 + ["rare"] * 10)
    codes = (names == "rare").astype(int)
    by_name = LogisticRegression().fit(X, names)
    by_code = LogisticRegression().fit(X, codes)
    for metric, scorer in default_scoring(["common", "rare"]).items():
        number = default_scoring([0, 1])[
            metric.replace("common", "0").replace("rare", "1")
        ]
        assert scorer(by_name, X, names) == pytest.approx(number(by_code, X, codes)), (
            metric
        )


@pytest.mark.parametrize(
    "kind, smote", [("array", True), ("integer array", False), ("dict", False)]
)
def test_strategies_beyond_tables(kind, smote):
    built, notes = make_strategies(
        ["none", "random_under", "smote", "balanced"],
        default_estimator(),
        classes=np.array([0, 1]),
        input_kind=kind,
    )
    assert "scale" not in built["none"].named_steps  # no StandardScaler
    # the network applies it (through RowSampler, on every input form)
    assert type(built["random_under"][-1].resampler).__name__ == "RandomUnderSampler"
    assert ("smote" in built) == smote
    if not smote:
        assert notes and notes[0].startswith("smote: skipped")


def test_input_kind_of_every_form():
    images = np.zeros((4, 1, 3, 3))
    assert input_kind(images) == "array"
    assert input_kind(images.astype(np.uint8)) == "array"
    assert input_kind(images.astype(np.int64)) == "integer array"
    assert input_kind({"a": images}) == "dict"
    assert input_kind(images[:, 0, 0]) == "table"
    with pytest.raises(ValueError, match="input_kind='images'"):
        make_strategies(
            ["none"], default_estimator(), classes=np.array([0, 1]), input_kind="images"
        )


def _summarize_with_pivot_tables(results, metrics, test_train_ratio):
    """summarize() as it was written before it gathered its columns in arrays:
    a pivot_table per metric and a .loc assignment per cell (the oracle)."""
    from skweighted.comparison._report import ALPHA, to_loss

    grouped = results.groupby(["strategy", "metric"], sort=False)["value"]
    summary = grouped.agg(mean="mean", std=lambda v: float(np.std(v, ddof=0)))
    summary = summary.reset_index()
    summary["rank"], summary["p_value"], summary["tied"] = 0, np.nan, False
    for metric, part in summary.groupby("metric", sort=False):
        goal = metrics[metric]
        loss = pd.Series(to_loss(part["mean"], goal), index=part.index)
        rank = loss.rank(method="min", na_option="bottom").astype(int)
        summary.loc[part.index, "rank"] = rank
        folds = results[results["metric"] == metric].pivot_table(
            index="fold", columns="strategy", values="value", dropna=False
        )
        best_row = rank[rank == 1].index[0]
        if not np.isfinite(part.loc[best_row, "mean"]):
            continue
        best_loss = to_loss(folds[part.loc[best_row, "strategy"]], goal)
        for row, strategy in part["strategy"].items():
            if row == best_row:
                summary.loc[row, "tied"] = True
                continue
            p = paired_p_value(
                to_loss(folds[strategy], goal), best_loss, test_train_ratio
            )
            summary.loc[row, ["p_value", "tied"]] = [p, bool(p >= ALPHA)]
    summary["tied"] = summary["tied"].astype(bool)
    order = list(dict.fromkeys(results["strategy"]))
    summary["strategy"] = pd.Categorical(summary["strategy"], order)
    summary["metric"] = pd.Categorical(summary["metric"], list(metrics))
    summary = summary.sort_values(["metric", "strategy"]).reset_index(drop=True)
    summary[["strategy", "metric"]] = summary[["strategy", "metric"]].astype(str)
    return summary


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_summary_is_the_pivot_table_summary(data):
    # failed fits (NaN), fits that did not run (a partial report), ties
    n_strategies = data.draw(st.integers(1, 4))
    n_folds = data.draw(st.integers(1, 5))
    goals = {"high": True, "low": False, "slope": 1.0}
    value = st.one_of(
        st.sampled_from([0.25, 0.5, 0.75, np.nan]),
        st.floats(-2, 2, allow_nan=False),
    )
    rows = [
        (f"s{s}", fold, metric, data.draw(value))
        for s in data.draw(st.permutations(range(n_strategies)))
        for fold in range(n_folds)
        if data.draw(st.booleans()) or fold == 0
        for metric in goals
    ]
    results = pd.DataFrame(rows, columns=["strategy", "fold", "metric", "value"])
    pd.testing.assert_frame_equal(
        summarize(results, goals, test_train_ratio=0.25),
        _summarize_with_pivot_tables(results, goals, 0.25),
    )


@pytest.mark.parametrize(
    "majority, minority",
    [("stay", "churn"), ("no", "yes")],  # the minority sorts first, then last
)
@pytest.mark.parametrize("chosen", [None, "majority"])
def test_binary_metrics_score_the_positive_class(data, majority, minority, chosen):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score

    X, codes = data
    y = np.where(codes == 1, minority, majority).astype(object)  # 1: the minority
    positive = minority if chosen is None else majority
    model = make_pipeline(StandardScaler(), LogisticRegression())
    result = compare(
        X,
        y,
        strategies={"logreg": model},
        cv=N_FOLDS,
        pos_label=None if chosen is None else majority,
    )
    assert result.pos_label == positive
    part = result.results.set_index(["metric", "fold"])["value"]
    for k, (train, test) in enumerate(StratifiedKFold(N_FOLDS).split(X, y)):
        fitted = clone(model).fit(X[train], y[train])
        p = fitted.predict_proba(X[test])[:, list(fitted.classes_).index(positive)]
        is_positive = y[test] == positive
        assert part["average_precision", k] == pytest.approx(
            average_precision_score(is_positive, p)
        )
        assert part["roc_auc", k] == pytest.approx(roc_auc_score(is_positive, p))
        assert part["brier", k] == pytest.approx(brier_score_loss(is_positive, p))
        intercept, slope = calibration_intercept_slope(is_positive, p)
        assert part["calibration_intercept", k] == pytest.approx(intercept, abs=1e-6)
        assert part["calibration_slope", k] == pytest.approx(slope, abs=1e-4)
    curves = result.reliability
    assert set(curves["class"]) == {majority, minority}
    markdown = result.to_markdown()
    assert f"Positive class: `{positive}`" in markdown
    fig = result.plot_reliability()
    assert repr(positive) in fig.texts[0].get_text() or any(
        repr(positive) in ax.get_title() for ax in fig.axes
    )


def test_pos_label_must_be_a_class_of_a_binary_target(data):
    X, y = data
    with pytest.raises(ValueError, match=r"pos_label=5 is not a class of y"):
        compare(X, y, strategies=["none"], pos_label=5)
    y3 = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match=r"pos_label=1 is for binary problems"):
        compare(X, y3, strategies=["none"], pos_label=1)


@pytest.mark.parametrize("width", [50, 80, 100, 240])
def test_terminal_table_fits_the_width(result, width):
    from skweighted.comparison._console import terminal_table

    text = terminal_table(result, width=width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width
    table = [line for line in lines if line.split()[0] in result.strategies]
    table = [line for line in table if "0." in line]  # not a header
    assert [line.split()[0] for line in table] == result.table().index.tolist()
    header = "\n".join(lines[:2])
    # the networks trained to their best epoch: how many epochs, per strategy
    assert result.results["epochs"].notna().any() and "epochs" in header
    if width >= 80:  # every default metric shows (from 100 columns the std too)
        for name in ("balanced", "recall", "average", "brier"):
            assert name in header
        assert width < 100 or "±" in text
    else:  # metrics are dropped from the end, the first always shows
        assert "brier" not in header and "balanced" in header


def test_terminal_table_metrics_and_width_of_a_pipe(result):
    import io

    from skweighted.comparison._console import (
        NOT_A_TTY_WIDTH,
        terminal_metrics,
        terminal_table,
        terminal_width,
    )

    assert terminal_metrics(result) == [
        "balanced_accuracy",
        "recall[1]",
        "average_precision",
        "brier",
    ]
    assert terminal_width(io.StringIO()) == NOT_A_TTY_WIDTH == 100
    text = terminal_table(result, metrics=["ece", "log_loss"], width=100)
    assert "ece" in text and "log_loss" in text and "brier" not in text
    with pytest.raises(ValueError, match=r"\['eec'\] are not metrics"):
        terminal_table(result, metrics=["eec"])


def test_progress_shows_while_the_stack_trains(data, capsys):
    X, y = data
    compare(
        X,
        y,
        strategies=["none"],
        cv=2,
        # every epoch trains (no early stop), so the last one shown is the 10th
        estimator=default_estimator(max_epochs=10, random_state=0).set_params(
            batch_size=16, early_stopping=False
        ),
        progress=True,
    )
    lines = capsys.readouterr().err.splitlines()
    first_fit = next(i for i, line in enumerate(lines) if line.startswith("[1/2]"))
    epochs = [
        int(line.rsplit(" ", 1)[1].split("/")[0])
        for line in lines[:first_fit]
        if line.startswith("stacking: stack 1/1 (2 fits), epoch ")
    ]
    assert len(epochs) >= 2 and epochs == sorted(epochs) and epochs[-1] == 10

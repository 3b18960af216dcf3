"""The comparison's faster metric paths give scikit-learn's numbers exactly:
the label metrics counted once (balanced accuracy, accuracy, macro F1, the
geometric mean, per-class recall), the memoised calibration intercept and
slope, and the reliability rows of every fold."""

import warnings
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imblearn.metrics import geometric_mean_score
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)
from sklearn.model_selection import TunedThresholdClassifierCV

from skweighted.comparison._label_metrics import (
    accuracy,
    class_recall,
    f1_macro,
    geometric_mean,
)
from skweighted.comparison._metrics import (
    BALANCED_ACCURACY_SCORER,
    balanced_accuracy,
)

LABELS = {
    "int": st.integers(min_value=-3, max_value=6),
    "str": st.text(alphabet="abcxyz", min_size=1, max_size=2),
    "bool": st.booleans(),
}


@st.composite
def label_pairs(draw):
    """``(y_true, y_pred)`` of one label kind and dtype; ``y_pred`` often holds
    classes that ``y_true`` lacks, and the other way round."""
    kind = draw(st.sampled_from(sorted(LABELS)))
    n = draw(st.integers(min_value=1, max_value=60))
    y_true = draw(st.lists(LABELS[kind], min_size=n, max_size=n))
    y_pred = draw(st.lists(LABELS[kind], min_size=n, max_size=n))
    if kind == "int":
        signed = min(y_true + y_pred) < 0
        dtype = draw(st.sampled_from([np.int64, np.int32] if signed else [np.uint8]))
    else:
        dtype = draw(st.sampled_from([object, str])) if kind == "str" else bool
    return np.array(y_true, dtype=dtype), np.array(y_pred, dtype=dtype)


def _outcome(metric, y_true, y_pred):
    """``(value or error type, warning messages)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = metric(y_true, y_pred)
        except (ValueError, TypeError) as exc:
            value = type(exc)
    return value, sorted(str(w.message) for w in caught)


def _recall_of(recall, pick):
    """``recall(y_true, y_pred, label)`` -> a metric of ``(y_true, y_pred)``
    scoring the label ``pick(y_true, y_pred)``."""

    def metric(y_true, y_pred):
        return recall(y_true, y_pred, pick(y_true, y_pred))

    return metric


def _ours_recall(y_true, y_pred, label):
    return class_recall(y_true, y_pred, label=label)


def _their_recall(y_true, y_pred, label):
    return recall_score(
        y_true, y_pred, labels=[label], average="macro", zero_division=0
    )


def _first_true(y_true, y_pred):
    return np.asarray(y_true).tolist()[0]


def _last_predicted(y_true, y_pred):  # often a label y_true lacks
    return np.asarray(y_pred).tolist()[-1]


#: Our fast metric -> the library function it stands for.
PAIRS = {
    "balanced_accuracy": (balanced_accuracy, balanced_accuracy_score),
    "accuracy": (accuracy, accuracy_score),
    "f1_macro": (f1_macro, partial(f1_score, average="macro")),
    "geometric_mean": (
        geometric_mean,
        partial(geometric_mean_score, average="multiclass", correction=1e-3),
    ),
    "recall[true label]": (
        _recall_of(_ours_recall, _first_true),
        _recall_of(_their_recall, _first_true),
    ),
    "recall[predicted label]": (
        _recall_of(_ours_recall, _last_predicted),
        _recall_of(_their_recall, _last_predicted),
    ),
}


@pytest.mark.parametrize("metric", sorted(PAIRS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=label_pairs())
def test_label_metric_is_the_librarys_float(metric, pair):
    ours, theirs = PAIRS[metric]
    y_true, y_pred = pair
    want, want_warnings = _outcome(theirs, y_true, y_pred)
    got, got_warnings = _outcome(ours, y_true, y_pred)
    assert type(got) is type(want)
    assert got == want  # the same float, bit for bit
    assert got_warnings == want_warnings
    # as lists too
    as_lists = _outcome(ours, y_true.tolist(), y_pred.tolist())
    assert as_lists == (want, want_warnings)


def _as(labels, dtype):
    if dtype == "object-str":
        return labels.astype(str).astype(object)
    return labels.astype(dtype)


@pytest.mark.parametrize("metric", sorted(PAIRS))
def test_label_metric_counts_plain_labels_itself(metric, monkeypatch):
    from skweighted.comparison import _label_metrics

    def library(*args, **kwargs):
        raise AssertionError("the library function was called")

    ours, theirs = PAIRS[metric]
    y_true, y_pred = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 1, 1])
    cases = [
        (_as(y_true, dtype), _as(y_pred, dtype))
        for dtype in (np.int64, np.uint8, bool, str, "object-str")
    ]
    want = [theirs(*case) for case in cases]
    for name in (
        "accuracy_score",
        "balanced_accuracy_score",
        "f1_score",
        "geometric_mean_score",
        "recall_score",
    ):
        monkeypatch.setattr(_label_metrics, name, library)
    assert [ours(*case) for case in cases] == want


@settings(max_examples=100, deadline=None)
@given(pair=label_pairs())
def test_class_recall_of_a_label_in_neither_vector(pair):
    y_true, y_pred = pair
    label = "qq" if y_true.dtype.kind in "OU" else 99  # never drawn
    want = recall_score(
        y_true, y_pred, labels=[label], average="macro", zero_division=0
    )
    assert class_recall(y_true, y_pred, label=label) == want == 0.0


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs",
    [
        ([0, 1, 1, 2], ["0", "1", "1", "2"], {}),  # mixed label types: an error
        ([0.5, 1.5, 0.5], [0.5, 1.5, 1.5], {}),  # continuous: an error
        ([0, 1, 1, 0], [0, 1, 0, 0], {"adjusted": True}),
        ([0, 1, 1, 0], [0, 1, 0, 0], {"sample_weight": [1.0, 2.0, 0.5, 1.0]}),
        ([1, 1, 1], [1, 1, 1], {}),  # a single label: scikit-learn's warning
        ([0.0, 1.0, 1.0], [0.0, 1.0, 0.0], {}),  # integral floats
        ([[0, 1], [1, 0]], [[0, 1], [1, 1]], {}),  # not 1-D: an error
    ],
)
def test_balanced_accuracy_leaves_the_rest_to_scikit_learn(y_true, y_pred, kwargs):
    def ours(a, b):
        return balanced_accuracy(a, b, **kwargs)

    def theirs(a, b):
        return balanced_accuracy_score(a, b, **kwargs)

    assert _outcome(ours, y_true, y_pred) == _outcome(theirs, y_true, y_pred)


def test_threshold_tuning_with_the_scorer_is_scikit_learns():
    X, y = make_classification(n_samples=300, weights=[0.85], random_state=0)
    labels = np.array(["common", "rare"], dtype=object)[y]

    def tuned(scoring):
        return TunedThresholdClassifierCV(
            LogisticRegression(),
            scoring=scoring,
            cv=3,
            random_state=0,
            store_cv_results=True,
        ).fit(X, labels)

    ours, theirs = tuned(BALANCED_ACCURACY_SCORER), tuned("balanced_accuracy")
    assert ours.best_threshold_ == theirs.best_threshold_
    assert ours.best_score_ == theirs.best_score_
    np.testing.assert_array_equal(
        ours.cv_results_["scores"], theirs.cv_results_["scores"]
    )


def test_calibration_is_fitted_once_per_probability_vector(monkeypatch):
    from sklearn.metrics._scorer import _MultimetricScorer

    from skweighted.comparison import _metrics
    from skweighted.comparison._metrics import (
        _intercept_slope,
        calibration_intercept_slope,
        default_scoring,
    )

    X, y = make_classification(n_samples=300, weights=[0.8], random_state=0)
    model = LogisticRegression().fit(X[:200], y[:200])
    p = model.predict_proba(X[200:])[:, 1]
    fresh = _intercept_slope((y[200:] == 1).astype(float), p)
    fits = []
    fit = LogisticRegression.fit

    def counting(self, *args, **kwargs):
        fits.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", counting)
    _metrics._MEMO.clear()
    scorers = default_scoring([0, 1])
    scores = _MultimetricScorer(scorers=scorers, raise_exc=True)(
        model, X[200:], y[200:]
    )
    assert len(fits) == 1  # the intercept and the slope share one fit
    assert (scores["calibration_intercept"], scores["calibration_slope"]) == fresh
    # the same content in another array (a copy, a list, both columns) hits
    again = [
        calibration_intercept_slope(y[200:].copy(), p.copy()),
        calibration_intercept_slope(y[200:].tolist(), p.tolist()),
        calibration_intercept_slope(y[200:], model.predict_proba(X[200:])),
    ]
    assert again == [fresh] * 3 and len(fits) == 1
    other = calibration_intercept_slope(y[200:], p**2)
    assert len(fits) == 2 and other != fresh
    for k in range(_metrics._MEMO_SIZE + 1):  # older results are forgotten
        calibration_intercept_slope(y[200:], p ** (1 + k / 10))
    assert len(_metrics._MEMO) == _metrics._MEMO_SIZE


@pytest.mark.parametrize("n_classes", [2, 3])
def test_reliability_recorder_rows_are_the_tables(n_classes):
    from skweighted.comparison import reliability_table
    from skweighted.comparison._metrics import ReliabilityRecorder

    X, y = make_classification(
        n_samples=200, n_classes=n_classes, n_informative=3, random_state=0
    )
    labels = np.array(["a", "b", "c"], dtype=object)[y]
    model = LogisticRegression().fit(X, labels)
    recorder = ReliabilityRecorder()
    assert recorder(model, X, labels) == 0.0
    table = reliability_table(labels, model.predict_proba(X), labels=model.classes_)
    assert recorder.rows() == [list(row) for row in table.itertuples(index=False)]
    assert {type(v) for row in recorder.rows() for v in row} == {str, int, float}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=20, max_value=600),
    power=st.floats(min_value=0.3, max_value=3.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_calibration_slope_is_the_logistic_regressions_float(n, power, seed):
    # the fit runs with BLAS on one thread (fast L-BFGS-B): the same float
    # as scikit-learn's LogisticRegression with the caller's threads
    from scipy.special import logit
    from sklearn.exceptions import ConvergenceWarning

    from skweighted.comparison._metrics import _EPS, _intercept_slope

    rng = np.random.default_rng(seed)
    p = rng.uniform(0.001, 0.999, n)
    y = (rng.uniform(size=n) < p**power).astype(np.float64)
    if y.min() == y.max():
        return
    lp = logit(np.clip(p, _EPS, 1 - _EPS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        want = LogisticRegression(C=np.inf, max_iter=1000).fit(lp[:, None], y)
    assert _intercept_slope(y, p)[1] == float(want.coef_[0, 0])


def test_calibration_fit_runs_on_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    threads = []
    fit = LogisticRegression.fit

    def spying(self, *args, **kwargs):
        threads.extend(
            lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"
        )
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", spying)
    from skweighted.comparison._metrics import _intercept_slope

    before = [lib["num_threads"] for lib in threadpool_info()]
    _intercept_slope(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.2, 0.7, 0.4, 0.5]))
    assert threads and set(threads) == {1}
    assert [lib["num_threads"] for lib in threadpool_info()] == before


def _ece_with_pandas(y_true, y_proba, **kwargs):
    """expected_calibration_error as it was computed before it grouped the
    bins' arrays itself: from the reliability table (the oracle)."""
    from skweighted.comparison import reliability_table

    table = reliability_table(y_true, y_proba, **kwargs)
    gap = (table["predicted"] - table["observed"]).abs() * table["count"]
    per_class = (
        gap.groupby(table["class"], sort=False).sum()
        / table.groupby("class", sort=False)["count"].sum()
    )
    return float(per_class.mean())


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=500),
    n_classes=st.integers(min_value=1, max_value=12),
    n_bins=st.sampled_from([None, 1, 3, 10, 15]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    float32=st.booleans(),
)
def test_ece_is_the_reliability_tables_float(n, n_classes, n_bins, seed, float32):
    from skweighted.comparison import expected_calibration_error

    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(max(n_classes, 2), 0.5), size=n)
    proba = proba.astype(np.float32) if float32 else proba
    y_true = rng.integers(0, max(n_classes, 2), size=n)
    if n_classes == 1:  # binary, 1-D: the positive class alone
        proba, kwargs = proba[:, 1], {"pos_label": 1}
    else:
        kwargs = {"labels": np.arange(n_classes)}
    want = _ece_with_pandas(y_true, proba, n_bins=n_bins, **kwargs)
    assert expected_calibration_error(y_true, proba, n_bins=n_bins, **kwargs) == want


@st.composite
def scored_labels(draw, n_classes=None, proba=False):
    """``(y_true, scores, labels)``: labels of one kind, often with a class
    missing; scores with ties, exact 0 and 1 and either float dtype; for
    ``proba``, rows of probabilities (2-D for more than two classes, or
    when drawn), now and then not summing to one."""
    kind = draw(st.sampled_from(["int", "str", "bool"]))
    universe = {"int": [0, 1, 2, 5], "str": ["a", "b", "c", "d"], "bool": [False, True]}
    if n_classes is None:
        n_classes = draw(st.integers(min_value=2, max_value=len(universe[kind])))
    n_classes = min(n_classes, len(universe[kind]))
    labels = np.array(
        universe[kind][:n_classes], dtype=object if kind == "str" else None
    )
    n = draw(st.integers(min_value=1, max_value=80))
    codes = np.array(
        draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    )
    y_true = labels[codes]
    if kind == "str" and draw(st.booleans()):
        y_true = y_true.astype(str)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    grid = draw(st.sampled_from([None, 2, 5]))  # few distinct values: ties
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if proba:
        raw = rng.dirichlet(np.full(n_classes, 0.7), size=n)
        if grid is not None:
            raw = np.round(raw * grid) / grid
            raw[raw.sum(axis=1) == 0, 0] = 1.0
            raw = raw / raw.sum(axis=1, keepdims=True)
        if draw(st.integers(0, 9)) == 0:
            raw[0] *= 0.9  # does not sum to one
        scores = raw.astype(dtype)
        if n_classes == 2 and draw(st.booleans()):
            scores = scores[:, 1]
    else:
        scores = rng.normal(size=n) if grid is None else rng.integers(0, grid, n) / grid
        scores = scores.astype(dtype)
        if draw(st.integers(0, 19)) == 0:
            scores[0] = np.nan
    return y_true, scores, labels


def _same_outcome(got, want):
    if isinstance(want, float) and np.isnan(want):
        return isinstance(got, float) and np.isnan(got)
    return type(got) is type(want) and got == want


def _check_against_library(ours, theirs, *args, **kwargs):
    want, want_warnings = _outcome(partial(theirs, **kwargs), *args)
    got, got_warnings = _outcome(partial(ours, **kwargs), *args)
    assert _same_outcome(got, want), (got, want)
    assert got_warnings == want_warnings


PROBA_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROBA_SETTINGS
@given(case=scored_labels(n_classes=2))
def test_roc_auc_is_the_librarys_float(case):
    from sklearn.metrics import roc_auc_score

    from skweighted.comparison._proba_metrics import roc_auc

    y_true, scores, _ = case
    _check_against_library(roc_auc, roc_auc_score, y_true, scores)


@PROBA_SETTINGS
@given(case=scored_labels(n_classes=2), last=st.booleans())
def test_average_precision_is_the_librarys_float(case, last):
    from sklearn.metrics import average_precision_score

    from skweighted.comparison._proba_metrics import average_precision

    y_true, scores, labels = case
    pos_label = labels[-1 if last else 0]
    _check_against_library(
        average_precision, average_precision_score, y_true, scores, pos_label=pos_label
    )


@PROBA_SETTINGS
@given(case=scored_labels(proba=True))
def test_log_loss_is_the_librarys_float(case):
    from sklearn.metrics import log_loss

    from skweighted.comparison._proba_metrics import neg_log_loss_of

    y_true, proba, _ = case
    _check_against_library(neg_log_loss_of, log_loss, y_true, proba)


@PROBA_SETTINGS
@given(case=scored_labels(proba=True), last=st.booleans())
def test_brier_score_is_the_librarys_float(case, last):
    from sklearn.metrics import brier_score_loss

    from skweighted.comparison._proba_metrics import brier_score

    y_true, proba, labels = case
    if proba.ndim == 1:
        kwargs = {"pos_label": labels[-1 if last else 0]}
    else:
        kwargs = {"labels": labels}
    _check_against_library(brier_score, brier_score_loss, y_true, proba, **kwargs)


def _library_scores(model, X, y, classes):
    """What cross_validate scored a fold with before: the default scorers
    and the reliability recorder."""
    from sklearn.metrics import check_scoring

    from skweighted.comparison._metrics import ReliabilityRecorder, default_scoring

    recorder = ReliabilityRecorder()
    scorers = {**default_scoring(classes), recorder.NAME: recorder}
    scores = check_scoring(model, scorers)(model, X, y)
    del scores[recorder.NAME]
    return scores, recorder.rows()


def _score_outcome(score, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = score(*args)
        except Exception as exc:
            value = (type(exc), str(exc))
    return value, sorted(str(w.message) for w in caught)


@pytest.mark.parametrize(
    "case",
    [
        "binary",
        "strings",
        "multiclass",
        "decision_function",
        "one class in the test rows",
        "no predict_proba",
        "other classes",
        "single-column probabilities",
    ],
)
def test_default_scorer_gives_the_default_scorers_numbers(case):
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import SVC

    from skweighted.comparison._fold_scorer import DefaultScorer

    class OneColumn(GaussianNB):
        def predict_proba(self, X):
            return np.ones((len(X), 1))

    n_classes = 3 if case == "multiclass" else 2
    X, y = make_classification(
        n_samples=240, n_classes=n_classes, n_informative=3, weights=None,
        random_state=0,
    )  # fmt: skip
    if case == "strings":
        y = np.array(["common", "rare", "x"], dtype=object)[y]
    classes = np.unique(y)
    model = GaussianNB()  # predict_proba, no decision function
    if case == "decision_function":
        model = LogisticRegression()
    elif case == "no predict_proba":
        model = SVC()
    elif case == "single-column probabilities":
        model = OneColumn()
    model.fit(X[:160], y[:160])
    X_test, y_test = X[160:], y[160:]
    if case == "one class in the test rows":
        X_test, y_test = X_test[y_test == 1], y_test[y_test == 1]
    elif case == "other classes":
        classes = np.array([0, 2])
    scorer = DefaultScorer(classes)
    got = _score_outcome(lambda *a: (scorer(*a), scorer.rows()), model, X_test, y_test)
    want = _score_outcome(_library_scores, model, X_test, y_test, classes)
    assert got == want


def test_default_scorer_asks_for_each_prediction_once(monkeypatch):
    from sklearn.naive_bayes import GaussianNB

    from skweighted.comparison._fold_scorer import DefaultScorer

    X, y = make_classification(n_samples=200, random_state=0)
    model = GaussianNB().fit(X, y)  # neither method calls the other
    calls = []
    for method in ("predict", "predict_proba"):
        bound = getattr(model, method)

        def counted(X, _bound=bound, _method=method):
            calls.append(_method)
            return _bound(X)

        monkeypatch.setattr(model, method, counted)
    DefaultScorer([0, 1])(model, X, y)
    assert calls == ["predict", "predict_proba"]  # for 13 metrics and the table


def test_compare_scores_default_metrics_in_one_pass(monkeypatch):
    from skweighted.comparison import _fold_scorer, compare

    X, y = make_classification(n_samples=120, weights=[0.8], random_state=0)
    seen = []
    call = _fold_scorer.DefaultScorer.__call__

    def spying(self, *args):
        seen.append(type(self).__name__)
        return call(self, *args)

    monkeypatch.setattr(_fold_scorer.DefaultScorer, "__call__", spying)
    strategies = {"lr": LogisticRegression()}
    default = compare(X, y, strategies=strategies, cv=3)
    assert seen == ["DefaultScorer"] * 3
    named = compare(X, y, strategies=strategies, cv=3, scoring=["accuracy"])
    assert len(seen) == 3  # a scoring of the caller's goes through its scorers
    accuracy = default.results.query("metric == 'accuracy'")["value"].tolist()
    assert named.results["value"].tolist() == accuracy
    assert default.reliability is not None and named.reliability is not None

"""Cross-validation: folds that miss a class, and parallel backends.

A ``GridSearchCV`` whose training folds miss a rare class either works
(``classes=``) or fails on the first such fold with a message saying to pass
``classes=``; and the same search gives identical ``cv_results_`` whether it
runs sequentially, on loky workers, in threads of one process or on a Dask
cluster whose workers run several threads: each fit owns its randomness.
"""

import threading

import joblib
import numpy as np
import pytest
import torch
from conftest import FAST, AlphaDropoutNet, NumAndTokens, dict_inputs
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from skorch.callbacks import Callback

from skweighted import WeightedNeuralNetClassifier


@pytest.fixture(scope="module")
def data(binary):
    X, y = binary
    return X, np.where(y == "ok", "cat", "dog").astype(object)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_fold_missing_a_class_fails_first_fold_or_works_with_classes(data):
    X, y = data
    y = y.copy()
    y[:3] = "rare"  # KFold(3), no shuffling: fold 0 trains without "rare"
    search = GridSearchCV(
        WeightedNeuralNetClassifier(**FAST),
        {"class_weight": ["balanced"]},
        cv=KFold(3),
        error_score="raise",
    )
    with pytest.raises(ValueError, match=r"\['rare'\] that were not seen.*classes=\["):
        search.fit(X, y)
    # with the default error_score the hint reaches the user as a warning
    search.set_params(error_score=np.nan)
    with pytest.warns(UserWarning, match=r"pass the full label set as classes="):
        search.fit(X, y)
    assert np.isnan(search.cv_results_["split0_test_score"]).all()
    # passing the full label set makes every fold work
    search.set_params(
        error_score="raise", estimator__classes=["cat", "dog", "rare"]
    ).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.predict_proba(X).shape == (len(X), 3)


def _search(X, y, n_jobs, **params):
    return GridSearchCV(
        WeightedNeuralNetClassifier(**FAST, **params),
        {"class_weight": [None, "balanced"], "lr": [0.01, 0.003]},
        cv=StratifiedKFold(2),
        scoring="balanced_accuracy",
        return_train_score=True,
        error_score="raise",
        n_jobs=n_jobs,
    ).fit(X, y)


def _comparable(cv_results):
    """Everything in ``cv_results_`` except the timings."""
    return {
        k: v.tolist() if hasattr(v, "tolist") else v
        for k, v in cv_results.items()
        if not k.endswith("_time")
    }


@pytest.fixture(
    scope="module", params=[{}, {"module__dropout": 0.3}], ids=["plain", "dropout"]
)
def sequential(request, data):
    """The sequential search's results, with and without dropout."""
    return request.param, _comparable(
        _search(*data, n_jobs=1, **request.param).cv_results_
    )


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_same_cv_results_in_threads_and_processes(data, sequential, backend):
    params, expected = sequential
    with joblib.parallel_config(backend=backend):
        parallel = _comparable(_search(*data, n_jobs=2, **params).cv_results_)
    assert parallel == expected


@pytest.mark.slow
def test_same_cv_results_on_dask_workers_with_two_threads(
    data, sequential, dask_client
):
    distributed = pytest.importorskip("distributed")
    params, expected = sequential
    with (
        distributed.get_task_stream(dask_client) as tasks,
        joblib.parallel_config(backend="dask"),
    ):
        dask = _comparable(_search(*data, n_jobs=-1, **params).cv_results_)
    assert tasks.data, "the Dask workers ran no task"
    assert dask == expected


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_concurrent_fits_with_one_seed_agree(data, dropout):
    """Two fits racing in threads give what a fit alone gives."""
    X, y = data
    params = dict(FAST, max_epochs=4, module__dropout=dropout)
    alone = WeightedNeuralNetClassifier(**params).fit(X, y).predict_proba(X)
    results, barrier = [None] * 4, threading.Barrier(4)

    def fit(i):
        barrier.wait()
        results[i] = WeightedNeuralNetClassifier(**params).fit(X, y).predict_proba(X)

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for proba in results:
        np.testing.assert_array_equal(proba, alone)


# -- skweighted.model_selection: the same searches, trained in stacks ----------
STACK = dict(max_epochs=3, batch_size=16, lr=0.01, random_state=0)
TOL = 1e-4


@pytest.fixture(scope="module")
def imbalanced(small_three):
    X, y = small_three
    return X, y, np.linspace(0.5, 2.0, len(y))


def _assert_same_results(got, want):
    """Same keys, params and ranks; scores within TOL (timings aside)."""
    assert set(got) == set(want)
    for key in want:
        if key.endswith("_time"):
            continue
        if key.startswith(("split", "mean_", "std_")):
            np.testing.assert_allclose(got[key], want[key], atol=TOL, err_msg=key)
        elif key.startswith("param"):
            assert list(map(repr, got[key])) == list(map(repr, want[key])), key
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_grid_search_equals_scikit_learns(imbalanced):
    """A grid mixing stackable and non-stackable candidates, two scorers,
    train scores and a routed sample_weight: scikit-learn's results."""
    from skweighted.model_selection import GridSearchCV as StackedGridSearchCV

    X, y, sw = imbalanced
    grid = [
        {"class_weight": [None, "balanced"], "lr": [0.01, 0.03]},
        # not stackable
        {"class_weight": ["balanced"], "optimizer": [torch.optim.RMSprop]},
    ]
    kwargs = dict(
        cv=StratifiedKFold(3),
        scoring=["balanced_accuracy", "neg_log_loss"],
        refit="balanced_accuracy",
        return_train_score=True,
    )
    net = WeightedNeuralNetClassifier(**STACK)
    want = GridSearchCV(net, grid, **kwargs).fit(X, y, sample_weight=sw)
    got = StackedGridSearchCV(net, grid, **kwargs).fit(X, y, sample_weight=sw)
    _assert_same_results(got.cv_results_, want.cv_results_)
    assert got.best_params_ == want.best_params_
    # the refit trains as a stack of one: float32 rounding, like every stack
    np.testing.assert_allclose(
        got.best_estimator_.predict_proba(X),
        want.best_estimator_.predict_proba(X),
        atol=TOL,
    )
    report = got.stacking_
    refit = "optimizer" not in got.best_params_  # the refit stacks too, or not
    assert (report["n_fits"], report["n_stacked"]) == (16, 12 + refit)
    assert report["chunks"] == [12, 1] if refit else [12]
    assert len(report["separate"]) == 3 + (not refit)
    assert all("RMSprop" in why for why in report["separate"])
    assert np.all(got.cv_results_["mean_fit_time"] > 0)


def test_randomized_search_and_cross_validate_equal_scikit_learns(imbalanced):
    from sklearn.model_selection import RandomizedSearchCV, cross_validate

    from skweighted import model_selection as ms

    X, y, _ = imbalanced
    net = WeightedNeuralNetClassifier(**STACK)
    dists = {"lr": [0.003, 0.01, 0.03], "class_weight": [None, "balanced"]}
    kwargs = dict(n_iter=3, cv=3, random_state=0, scoring="balanced_accuracy")
    want = RandomizedSearchCV(net, dists, **kwargs).fit(X, y)
    got = ms.RandomizedSearchCV(net, dists, **kwargs).fit(X, y)
    _assert_same_results(got.cv_results_, want.cv_results_)
    assert got.stacking_["n_stacked"] == 9 + 1  # the refit

    want = cross_validate(net, X, y, cv=4, return_train_score=True)
    got = ms.cross_validate(
        net, X, y, cv=4, return_train_score=True, return_stacking=True
    )
    assert got.pop("stacking")["n_stacked"] == 4
    assert set(got) == set(want)
    for key in ("test_score", "train_score"):
        np.testing.assert_allclose(got[key], want[key], atol=TOL)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_search_over_a_dict_input_model_stacks_every_fit(imbalanced, early_stopping):
    from skorch.helper import SliceDict

    from skweighted import model_selection as ms

    X, y, _ = imbalanced
    X = SliceDict(**dict_inputs(X))  # scikit-learn's CV slices a SliceDict
    arrays = dict(X)
    net = WeightedNeuralNetClassifier(
        NumAndTokens, **STACK, early_stopping=early_stopping
    )
    grid = {"class_weight": [None, "balanced"], "lr": [0.01, 0.03]}
    kwargs = dict(cv=StratifiedKFold(3), scoring="neg_log_loss")
    got = ms.GridSearchCV(net, grid, **kwargs).fit(X, y)
    want = ms.GridSearchCV(net, grid, **kwargs, stacking=False).fit(X, y)
    report = got.stacking_
    assert report["n_stacked"] == report["n_fits"] == 12 + 1, report  # the refit
    assert want.stacking_["n_stacked"] == 0
    _assert_same_results(got.cv_results_, want.cv_results_)
    np.testing.assert_allclose(
        got.best_estimator_.predict_proba(X),
        want.best_estimator_.predict_proba(X),
        atol=TOL,
    )
    # the caller's dict holds its own arrays (read-only: never written)
    assert dict(X).keys() == arrays.keys()
    assert all(X[k] is a for k, a in arrays.items())


def _to_array(rows):
    """A list of ``TensorDataset`` items (what scikit-learn's indexing gives)."""
    return np.stack([row[0].numpy() for row in rows])


@pytest.mark.parametrize("kind", ["alpha dropout", "callback", "dataset"])
def test_what_cannot_be_stacked_trains_separately_with_its_reason(imbalanced, kind):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from skorch.callbacks import EarlyStopping

    from skweighted import model_selection as ms

    X, y, _ = imbalanced
    est, data, expected = WeightedNeuralNetClassifier(**STACK), X, None
    if kind == "alpha dropout":
        est.set_params(module=AlphaDropoutNet)
        expected = "AlphaDropout"
    elif kind == "callback":
        est.set_params(callbacks=[EarlyStopping(monitor="train_loss")])
        expected = "callbacks ['EarlyStopping'] need a separate net"
    else:
        est = make_pipeline(FunctionTransformer(_to_array), est)
        data = torch.utils.data.TensorDataset(torch.tensor(X))  # X is read-only
        expected = "a Dataset input"
    got = ms.cross_validate(est, data, y, cv=3, return_stacking=True)
    report = got.pop("stacking")
    assert report["n_stacked"] == 0
    assert report["separate"] and all(expected in why for why in report["separate"])
    from sklearn.model_selection import cross_validate

    want = cross_validate(est, data, y, cv=3)
    np.testing.assert_allclose(got["test_score"], want["test_score"], atol=TOL)


def test_search_results_do_not_depend_on_the_chunking(imbalanced):
    from skweighted.model_selection import GridSearchCV as StackedGridSearchCV

    X, y, _ = imbalanced
    net = WeightedNeuralNetClassifier(**STACK)
    grid = {"class_weight": [None, "balanced"], "lr": [0.01, 0.03]}
    whole = StackedGridSearchCV(net, grid, cv=2).fit(X, y)
    chunked = StackedGridSearchCV(net, grid, cv=2, memory_budget=150_000).fit(X, y)
    assert whole.stacking_["chunks"] == [8, 1]  # the folds' stack, the refit
    assert len(chunked.stacking_["chunks"]) > 1
    assert (
        chunked.stacking_["estimated_bytes"]
        <= 150_000
        < (whole.stacking_["estimated_bytes"])
    )
    _assert_same_results(chunked.cv_results_, whole.cv_results_)


def test_the_memory_budget_counts_what_the_search_holds(imbalanced):
    """The records, their rows and the results kept until the replay count
    against the budget too: one that a stack of every fit fits in, but not
    with what the search holds beside it, splits the stack so that both fit;
    the results stay the same."""
    from skweighted.model_selection import GridSearchCV as StackedGridSearchCV

    X, y, _ = imbalanced
    net = WeightedNeuralNetClassifier(**STACK)
    grid = {"class_weight": [None, "balanced"], "lr": [0.01, 0.03]}
    whole = StackedGridSearchCV(net, grid, cv=2, refit=False).fit(X, y)
    held, stack = whole.stacking_["held_bytes"], whole.stacking_["estimated_bytes"]
    assert whole.stacking_["chunks"] == [8] and 0 < held
    budget = stack + held // 2
    chunked = StackedGridSearchCV(
        net, grid, cv=2, refit=False, memory_budget=budget
    ).fit(X, y)
    report = chunked.stacking_
    assert len(report["chunks"]) > 1
    assert report["held_bytes"] + report["estimated_bytes"] <= budget
    _assert_same_results(chunked.cv_results_, whole.cv_results_)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_a_diverging_candidate_fails_as_in_scikit_learns_search(imbalanced):
    """A stacked fit whose loss becomes non-finite fails as its separate fit
    does: ``error_score`` for its folds, the same message, the other
    candidates' scores unchanged."""
    from sklearn.exceptions import FitFailedWarning

    from skweighted.model_selection import GridSearchCV as StackedGridSearchCV

    X, y, _ = imbalanced
    net = WeightedNeuralNetClassifier(
        **{**STACK, "optimizer": torch.optim.SGD, "max_epochs": 4}
    )
    grid = {"lr": [0.01, 1e8]}
    X = X * 100
    with pytest.warns(FitFailedWarning, match="Training diverged") as stacked:
        got = StackedGridSearchCV(net, grid, cv=2).fit(X, y)
    with pytest.warns(FitFailedWarning, match="Training diverged") as separate:
        want = GridSearchCV(net, grid, cv=2).fit(X, y)
    assert got.stacking_["n_stacked"] == 4 + 1
    _assert_same_results(got.cv_results_, want.cv_results_)
    assert np.isnan(got.cv_results_["mean_test_score"][1])
    errors = [
        [line for line in str(w.message).splitlines() if "diverged" in line]
        for w in (*stacked, *separate)
        if w.category is FitFailedWarning
    ]
    assert errors[0] == errors[1] and len(errors[0]) == 1  # the same epoch
    with pytest.raises(FloatingPointError, match="Training diverged"):
        StackedGridSearchCV(net, grid, cv=2, error_score="raise").fit(X, y)


#: the search whose parameters _ReadsNJobs reads, and what it read (module
#: level: clone copies a callback's parameters)
_SEARCH, _SEEN = [], []


class _ReadsNJobs(Callback):
    """Records the search's ``n_jobs`` each time a network starts training."""

    def on_train_begin(self, net, **kwargs):
        _SEEN.append(_SEARCH[0].get_params()["n_jobs"])


def test_a_search_never_changes_its_parameters_in_fit(imbalanced):
    """scikit-learn's rule: ``fit`` leaves the parameters as they are. The
    replay pass ran its fits sequentially by setting ``self.n_jobs = 1``."""
    from skweighted.model_selection import GridSearchCV as StackedGridSearchCV

    X, y, _ = imbalanced
    net = WeightedNeuralNetClassifier(**STACK, callbacks=[("reads", _ReadsNJobs())])
    search = StackedGridSearchCV(net, {"lr": [0.01, 0.03]}, cv=2, n_jobs=2)
    _SEARCH[:], _SEEN[:] = [search], []
    search.fit(X, y)  # a callback: every fit trains apart, in the replay pass
    assert len(_SEEN) == 2 * 2 + 1 and set(_SEEN) == {2}, _SEEN
    assert search.n_jobs == 2


def test_a_fit_that_fails_while_recording_says_so(imbalanced):
    """The recording pass swallowed every error: a fit that failed there
    trained separately with the reason "its data or settings differ"."""
    from sklearn.exceptions import FitFailedWarning

    from skweighted.model_selection import GridSearchCV as StackedGridSearchCV

    X, y, _ = imbalanced
    grid = {"module__hidden_units": [(8,), (-1,)]}  # -1 units: no such layer
    search = StackedGridSearchCV(WeightedNeuralNetClassifier(**STACK), grid, cv=2)
    with pytest.warns(FitFailedWarning):
        search.fit(X, y)
    report = search.stacking_
    assert len(report["recording_errors"]) == 1, report
    error = report["recording_errors"][0]
    assert error.startswith(("RuntimeError", "ValueError")), error
    assert "negative dimension" in error, error
    # the good candidate's folds and the refit; the failing fits fail again in
    # the real pass, as in scikit-learn's search
    assert report["n_stacked"] == report["n_fits"] == 2 + 1, report
    assert np.isnan(search.cv_results_["mean_test_score"][1])

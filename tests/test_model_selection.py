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
from conftest import FAST
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

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

"""Cross-validation: folds that miss a class, and parallel backends.

A ``GridSearchCV`` whose training folds miss a rare class either works
(``classes=``) or fails on the first such fold with a message saying to pass
``classes=``; and the same search gives identical ``cv_results_`` whether it
runs sequentially, on loky workers or on a Dask cluster.
"""

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from skweighted import WeightedNeuralNetClassifier

FAST = dict(max_epochs=3, batch_size=32, lr=0.01, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=90, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    return X, np.array(["cat", "dog"], dtype=object)[y]


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


def _search(X, y, n_jobs):
    return GridSearchCV(
        WeightedNeuralNetClassifier(**FAST),
        {"class_weight": [None, "balanced"]},
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


@pytest.mark.slow
def test_same_cv_results_sequential_loky_and_dask(data):
    distributed = pytest.importorskip("distributed")
    X, y = data
    expected = _comparable(_search(X, y, n_jobs=1).cv_results_)

    with joblib.parallel_config(backend="loky"):
        loky = _comparable(_search(X, y, n_jobs=2).cv_results_)
    assert loky == expected

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
        distributed.get_task_stream(client) as tasks,
        joblib.parallel_config(backend="dask"),
    ):
        dask = _comparable(_search(X, y, n_jobs=-1).cv_results_)
    assert tasks.data, "the Dask workers ran no task"
    assert dask == expected

"""Shared fixtures: the global seed, small imbalanced data sets, fast settings
and one Dask cluster.

The data sets are session-scoped and read-only, so a test that modifies its
input fails loudly instead of changing what later tests see.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

#: Training settings small enough for a unit test (``from conftest import FAST``).
FAST = dict(max_epochs=3, batch_size=32, lr=0.01, random_state=0)


def fast(**overrides):
    """``FAST`` with some settings changed: ``fast(max_epochs=5)``."""
    return {**FAST, **overrides}


#: One epoch: for tests of what ``fit`` checks or touches, not what it learns.
ONE_EPOCH = fast(max_epochs=1)


class AlphaDropoutNet(torch.nn.Module):
    """A small network with AlphaDropout, which draws from torch's global
    generator: what a stack cannot train."""

    def __init__(self, n_features_in, n_classes):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features_in, 8),
            torch.nn.SELU(),
            torch.nn.AlphaDropout(0.2),
            torch.nn.Linear(8, n_classes),
        )

    def forward(self, X):
        return self.layers(X)


class TwoInputs(torch.nn.Module):
    """A float image (1 x 6 x 6) and int64 token ids (< 30), by name."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.image = torch.nn.Linear(36, 8)
        self.embed = torch.nn.EmbeddingBag(30, 8)
        self.out = torch.nn.Linear(16, n_classes)

    def forward(self, image, tokens):
        h = torch.cat([self.image(image.flatten(1)), self.embed(tokens)], dim=1)
        return self.out(torch.relu(h))


class NumAndTokens(torch.nn.Module):
    """A dict X by keyword: float features ``num`` (N, 5) and int64 token ids
    ``tok`` (< 20) into ``nn.Embedding`` (see :func:`dict_inputs`)."""

    def __init__(self, n_classes, hidden_units=(4,), vocab=20):
        super().__init__()
        dim = hidden_units[0]
        self.num = torch.nn.Linear(5, dim)
        self.embedding = torch.nn.Embedding(vocab, dim)
        self.out = torch.nn.Linear(2 * dim, n_classes)

    def forward(self, num, tok):
        h = torch.cat([self.num(num), self.embedding(tok).mean(1)], dim=1)
        return self.out(torch.relu(h))


def dict_inputs(X):
    """Five features ``X`` as ``{"num": X, "tok": int64 (N, 4)}`` for
    :class:`NumAndTokens`, read-only."""
    tok = (np.abs(np.asarray(X)[:, :4]) * 5).astype(np.int64) % 20
    return {"num": read_only(X), "tok": read_only(tok)}


def read_only(a):
    """A read-only copy of ``a`` (as joblib's memory-mapped CV folds are)."""
    a = np.array(a)
    a.flags.writeable = False
    return a


def make_imbalanced(weights, labels, n_samples, n_features=6, random_state=0, **params):
    """A small ``make_classification`` problem, float32, with ``labels`` (an
    object array) as its classes; read-only. ``params`` go to
    ``make_classification`` (by default ``n_informative=min(4, n_features)``,
    ``n_redundant=0``)."""
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_classes=len(labels),
        weights=weights,
        random_state=random_state,
        **{"n_informative": min(4, n_features), "n_redundant": 0, **params},
    )
    return read_only(X.astype(np.float32)), read_only(np.array(labels, dtype=object)[y])


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global RNG state."""
    np.random.seed(0)  # noqa: NPY002 - code under test may use the legacy RNG
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def binary():
    """240 rows, 6 features, 85 % 'ok' / 15 % 'fraud'."""
    return make_imbalanced([0.85], ["ok", "fraud"], n_samples=240)


@pytest.fixture(scope="session")
def three():
    """300 rows, 6 features, classes 'a' / 'b' / 'c' at 70 / 20 / 10 %."""
    return make_imbalanced([0.7, 0.2, 0.1], ["a", "b", "c"], n_samples=300)


@pytest.fixture(scope="session")
def small_three():
    """120 rows, 5 features, integer classes 0 / 1 / 2 at 60 / 30 / 10 %."""
    X, y = make_classification(
        n_samples=120,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        weights=[0.6, 0.3, 0.1],
        random_state=0,
    )
    return read_only(X.astype(np.float32)), read_only(y)


@pytest.fixture(scope="session")
def dask_client():
    """A local Dask cluster of 2 worker processes with 2 threads each (Dask's
    default is several threads per worker), shared by the whole session."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        from skweighted.cli import warm_worker_clients

        warm_worker_clients(client)  # no first-connection race between tests
        yield client

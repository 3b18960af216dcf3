"""The rows a stack trains on: one array, or a dict of arrays.

A module whose ``forward`` takes keyword arguments trains on a dict ``X``
(``{"num": float (N, 5), "tok": int64 (N, 12)}``), each array one argument,
all sharing their rows. Everything of a stack that touches ``X`` goes through
these few functions, which apply the same row operation to an array or to
each array of a dict, keeping each array's dtype. Their callers decide once,
outside the step loop, what work a step does: :func:`gather` returns the
step's function for the whole window, and an array's is the one
``index_select`` the array path always ran.
"""

import numpy as np
import torch

from .._batching import _rows as each
from .._batching import _tensors as arrays
from .._inputs import n_samples as n_rows

__all__ = [
    "arrays",
    "as_input",
    "call",
    "concat",
    "each",
    "gather",
    "layout",
    "n_rows",
    "take",
]


def as_input(t):
    """A tensor of ``X`` as a stack trains on it: floats as float32, integers
    and booleans as they are (token ids, ``uint8`` images: the module
    converts them)."""
    return t.float() if t.is_floating_point() else t


def call(module, X):
    """``module`` on ``X``: a dict's arrays as keyword arguments, as skorch
    passes them."""
    return module(**X) if isinstance(X, dict) else module(X)


def take(X, rows):
    """Rows ``rows`` (an index tensor of any shape) of ``X``, each array's
    indexed ``(*rows.shape, ...)``."""
    return each(X, lambda t: t[rows])


def gather(X, n_models, width):
    """The step's gather for a window of ``n_models`` models of batches of
    ``width`` rows: ``gather(index)`` takes the ``n_models * width`` rows
    ``index`` of ``X`` as ``(n_models, width, ...)``, each array into its own
    tensor, reused at every step of the window (see
    ``_MLPKernel.workspace``)."""
    if isinstance(X, dict):
        parts = {k: gather(v, n_models, width) for k, v in X.items()}
        return lambda index: {k: g(index) for k, g in parts.items()}
    shape = (n_models, width, *X.shape[1:])
    out = X.new_empty((n_models * width, *X.shape[1:]))
    return lambda index: torch.index_select(X, 0, index, out=out).view(shape)


def concat(parts):
    """The rows of ``parts`` (NumPy arrays, or dicts with the same keys) one
    after the other."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def layout(X):
    """What rows must share to share a stack: each array's sample shape and
    dtype (uint8 and float rows cannot), by key for a dict."""
    if isinstance(X, dict):
        return tuple((k, v.shape[1:], str(v.dtype)) for k, v in sorted(X.items()))
    return X.shape[1:], str(X.dtype)

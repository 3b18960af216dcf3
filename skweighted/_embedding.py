"""Token ids beyond an embedding's size: a clear error before training.

PyTorch's ``nn.Embedding`` fails on an id outside ``[0, num_embeddings)``
with a bare ``IndexError: index out of range in self`` (or a device-side
assert on CUDA). :func:`watching_embeddings` hooks every embedding of a
module while it runs on a probe batch, learns which input (``X``, or a key
of a dict ``X``) feeds which embedding (the same tensor, or a view of it),
and :func:`check_ids` then checks every row of that input, not only the
probe's, before the first batch trains.
"""

from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["IdOutOfRange", "check_ids", "watching_embeddings"]

_KINDS = (torch.nn.Embedding, torch.nn.EmbeddingBag)


class IdOutOfRange(ValueError):
    """An input holds an id that an embedding has no row for."""


def _integer_inputs(batch):
    """``{name: tensor}`` of the integer tensors of a batch: ``X`` or ``X[key]``."""
    items = batch.items() if isinstance(batch, dict) else [(None, batch)]
    return {
        "X" if key is None else f"X[{key!r}]": t
        for key, t in items
        if isinstance(t, torch.Tensor) and not t.is_floating_point()
    }


def _storage(t):
    return t.untyped_storage().data_ptr()


def _raise(source, largest, smallest, name, embedding):
    n = embedding.num_embeddings
    bad = f"the largest id is {largest}" if largest >= n else f"it holds id {smallest}"
    raise IdOutOfRange(
        f"{source} holds ids outside the range of the embedding {name!r}: {bad}, "
        f"but num_embeddings={n} (ids must lie in 0..{n - 1}). Give the "
        f"embedding num_embeddings={max(largest + 1, n)} or more (the "
        "vocabulary size plus any padding or unknown-token id), or map the "
        "unknown ids to one it has."
    )


@contextmanager
def watching_embeddings(module, batch):
    """Hook the embeddings of ``module`` while it runs on ``batch``.

    Yields a dict filled as the module runs: embedding name -> ``(input
    name or None, embedding)``; the input is ``None`` when the ids the
    embedding received are not (a view of) one of the batch's integer
    tensors. Ids outside the embedding's range raise :class:`IdOutOfRange`
    before the embedding runs.
    """
    inputs = _integer_inputs(batch)
    found = {}

    def hook(name, embedding):
        def pre(_, args):
            ids = args[0] if args else None
            if not isinstance(ids, torch.Tensor) or ids.is_floating_point():
                return
            source = next(
                (k for k, t in inputs.items() if _storage(t) == _storage(ids)), None
            )
            found[name] = (source, embedding)
            if ids.numel():
                largest, smallest = int(ids.max()), int(ids.min())
                if largest >= embedding.num_embeddings or smallest < 0:
                    _raise(
                        source or f"the input of {name!r}",
                        largest,
                        smallest,
                        name,
                        embedding,
                    )

        return pre

    handles = [
        m.register_forward_pre_hook(hook(name, m))
        for name, m in module.named_modules()
        if isinstance(m, _KINDS)
    ]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def check_ids(X, found):
    """Check every row of the inputs that :func:`watching_embeddings` found
    feeding an embedding; ``X`` is an array or a dict of arrays (a Dataset
    is not scanned)."""
    for name, (source, embedding) in found.items():
        if source is None:
            continue
        values = X if source == "X" else _by_key(X, source)
        if values is None or not np.issubdtype(np.asarray(values).dtype, np.integer):
            continue
        values = np.asarray(values)
        if values.size == 0:
            continue
        largest, smallest = int(values.max()), int(values.min())
        if largest >= embedding.num_embeddings or smallest < 0:
            _raise(source, largest, smallest, name, embedding)


def _by_key(X, source):
    if not isinstance(X, dict):
        return None
    return next((v for k, v in X.items() if f"X[{k!r}]" == source), None)

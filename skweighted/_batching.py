"""In-memory batching: the epoch order, the dataset of tensors, the batch iterator.

The fast path of :class:`skweighted._net.WeightedNet`: in-memory arrays become
tensors once (:func:`skweighted._inputs.to_torch`); each epoch draws its row
order (:class:`EpochOrder`: a permutation, or a class-balanced draw), gathers
the rows once and slices views (:class:`BatchIterator`), instead of one
``__getitem__`` per row and a collate per batch. Samples of images are
gathered one batch at a time, so a fit never holds a second copy of the data.
A batch with sample weights is ``({"X": X, "sample_weight": w}, y)``
(skorch's documented pattern).
"""

from collections.abc import Sequence

import torch

from . import _inputs
from .sampling import draw_indices, epoch_seed

SAMPLE_WEIGHT = "sample_weight"


class ArrayDataset(torch.utils.data.Dataset):
    """Tensors ``X`` (a tensor or a dict of tensors), ``y`` and ``sample_weight``
    (both optional)."""

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self):
        return _inputs.n_samples(self.X)

    def __getitem__(self, i):
        Xi = _rows(self.X, lambda t: t[i])
        if self.sample_weight is not None:
            Xi = {"X": Xi, SAMPLE_WEIGHT: self.sample_weight[i]}
        yi = self.y[i] if self.y is not None else torch.zeros(())
        return Xi, yi


def _rows(X, fn):
    """``fn`` applied to ``X``, a tensor, or to each tensor of a dict (None stays)."""
    if X is None:
        return None
    if isinstance(X, dict):
        return {k: fn(v) for k, v in X.items()}
    return fn(X)


def _tensors(X):
    return list(X.values()) if isinstance(X, dict) else [X]


def _take(a, idx):
    """Rows ``idx`` of ``a`` (None stays None; a dict row-wise); ``index_select``
    is several times faster than advanced indexing ``a[idx]`` for gathering
    rows."""
    return _rows(a, lambda t: torch.index_select(t, 0, idx.to(t.device)))


def _fits_on_device(device, *tensors):
    if device.type != "cuda":
        return device.type == "cpu"
    free, _ = torch.cuda.mem_get_info(device)
    return sum(t.nbytes for t in tensors if t is not None) < 0.5 * free


#: Samples at least this large (bytes) are gathered one batch at a time
#: rather than for the whole epoch at once, so a fit on images never holds a
#: second copy of the data set.
_LARGE_SAMPLE_BYTES = 1024


def _sample_bytes(X):
    return sum(t[:1].nbytes for t in _tensors(X))


class EpochOrder(torch.utils.data.Sampler):
    """The row order of each training epoch.

    A fresh permutation, or with ``row_weight`` a class-balanced draw of
    ``n`` rows with replacement, row ``i`` with probability proportional to
    ``row_weight[i]``, by :func:`skweighted.sampling.draw_indices`, the draw
    of the public samplers. With a seed, epoch ``e`` uses a generator seeded
    by :func:`skweighted.sampling.epoch_seed` (as
    :class:`~skweighted.sampling.ClassBalancedSampler` does, so both draw
    the same rows); without one, torch's global generator. Both the fast
    batch iterator and skorch's ``DataLoader`` path take their order from
    here.

    Parameters
    ----------
    n : int
        Number of rows.
    row_weight : Tensor of shape (n,), float64, or None
        Sampling weight of each row (its class's sampler weight).
    seed : int or None
    epoch : callable
        Returns the 0-based index of the epoch being drawn.
    """

    def __init__(self, n, row_weight, seed, epoch):
        self.n = n
        self.row_weight = row_weight
        self.seed = seed
        self.epoch = epoch

    def __len__(self):
        return self.n

    def indices(self, epoch=None):
        """This epoch's order (or that of ``epoch``), a LongTensor of length
        ``n``."""
        generator = None
        if self.seed is not None:
            epoch = self.epoch() if epoch is None else epoch
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        if self.row_weight is None:
            return torch.randperm(self.n, generator=generator)
        return draw_indices(self.row_weight, self.n, generator=generator)

    def __iter__(self):
        return iter(self.indices().tolist())


class EpochOrders(Sequence):
    """The orders of epochs ``start .. start + n_epochs - 1`` of ``order``,
    drawn when read.

    A seeded order draws each epoch from its own generator, so the same
    epoch read again gives the same rows: only the draw's settings are held
    (a stacked search keeps one per fit from its recording pass to its
    training, instead of every epoch's rows). An order drawn from torch's
    global generator (no seed) cannot be drawn again: its epochs are drawn
    at once, in order, and kept as int32.

    Parameters
    ----------
    order : EpochOrder or None
        None keeps the rows in order, every epoch.
    n : int
        The number of rows an epoch orders.
    start : int
        The 0-based index of the first epoch.
    n_epochs : int
    rows : LongTensor of shape (n,), default=None
        What each position of an order stands for (a ``Subset``'s indices);
        None: the rows themselves.
    """

    def __init__(self, order, n, start, n_epochs, rows=None):
        self.order, self.n, self.start, self.rows = order, n, start, rows
        self.n_epochs = n_epochs
        self._drawn = None
        if order is not None and order.seed is None:
            self._drawn = [
                self._map(order.indices(start + e)).to(torch.int32)
                for e in range(n_epochs)
            ]

    def __len__(self):
        return self.n_epochs

    def __getitem__(self, e):
        """Epoch ``e``'s order (counted from ``start``), a LongTensor."""
        if isinstance(e, slice):
            return [self[i] for i in range(len(self))[e]]
        e = range(self.n_epochs)[e]  # an IndexError past the end
        if self._drawn is not None:
            return self._drawn[e].long()
        if self.order is None:
            return self._map(torch.arange(self.n))
        return self._map(self.order.indices(self.start + e))

    def _map(self, positions):
        return positions if self.rows is None else self.rows[positions]

    def lengths(self):
        """The number of rows of each epoch, without drawing them."""
        return [self.n] * self.n_epochs

    @property
    def nbytes(self):
        """Bytes held: the draw's row weights and ``rows``, or the orders
        drawn at once."""
        held = [self.rows, None if self.order is None else self.order.row_weight]
        held += self._drawn or []
        return sum(t.nbytes for t in held if t is not None)


class BatchIterator:
    """Mini-batches sliced from tensors prepared once per epoch.

    Small samples (table rows) are gathered once per epoch in the epoch's
    order and sliced into views; large ones (images, at least
    ``_LARGE_SAMPLE_BYTES`` each) are gathered one batch at a time, so the
    fit holds one batch beyond the data, in the data's own dtype. ``X`` may
    be a tensor or a dict of tensors.

    Parameters
    ----------
    dataset : ArrayDataset
    indices : LongTensor or None
        The rows of ``dataset`` to iterate over (a ``Subset``'s indices).
    batch_size : int
    order : EpochOrder or None
        Draws each epoch's order (positions into ``indices``); ``None`` keeps
        the rows in order.
    device : torch.device
    share : slice or None, default=None
        This process's positions of each epoch's order in a data-parallel
        fit (``rank::world_size``, see :mod:`skweighted._distributed`); only
        those rows are gathered.
    """

    def __init__(self, dataset, indices, batch_size, order, device, share=None):
        self.dataset = dataset
        self.indices = indices
        self.batch_size = batch_size
        self.order = order
        self.device = device
        self.share = share

    def _n_rows(self):
        n = len(self.dataset) if self.indices is None else len(self.indices)
        return n if self.share is None else len(range(n)[self.share])

    def __len__(self):
        return (self._n_rows() + self.batch_size - 1) // self.batch_size

    def _epoch_indices(self):
        idx = self.indices
        order = None if self.order is None else self.order.indices()
        if self.share is not None:
            n = len(self.dataset) if idx is None else len(idx)
            order = (torch.arange(n) if order is None else order)[self.share]
        if order is None:
            return idx
        return order if idx is None else idx[order]

    def __iter__(self):
        ds = self.dataset
        idx = self._epoch_indices()
        arrays = [ds.X, ds.y, ds.sample_weight]
        per_batch = idx is not None and _sample_bytes(ds.X) >= _LARGE_SAMPLE_BYTES
        if idx is not None and not per_batch:
            arrays = [_take(a, idx) for a in arrays]
        n = len(ds) if idx is None else len(idx)
        on_device = _tensors(ds.X)[0].device == self.device

        def move(t):
            return t if on_device else t.to(self.device, non_blocking=True)

        for start in range(0, n, self.batch_size):
            sl = slice(start, start + self.batch_size)
            if per_batch:
                batch = [_take(a, idx[sl]) for a in arrays]
            else:
                batch = [_rows(a, lambda t, sl=sl: t[sl]) for a in arrays]
            Xb, yb, wb = (_rows(a, move) for a in batch)
            yield ({"X": Xb, SAMPLE_WEIGHT: wb} if wb is not None else Xb), yb


def _batch_len(Xb):
    """Samples in a batch's ``X``: a tensor, a dict, or ``{"X": ..., weights}``."""
    if isinstance(Xb, dict):
        return _batch_len(Xb["X"] if SAMPLE_WEIGHT in Xb else next(iter(Xb.values())))
    return len(Xb)


def _labels(dataset):
    """The label tensor of the dataset of a fit (or a Subset of one), else None."""
    if isinstance(dataset, torch.utils.data.Subset):
        y = _labels(dataset.dataset)
        return None if y is None else y[torch.as_tensor(dataset.indices)]
    if isinstance(dataset, ArrayDataset | _inputs.LabelledDataset):
        return dataset.y
    return None

"""Every model's batches, all its epochs one after another, on one step grid.

Model ``m`` of a stack trains on its own row order per epoch, cut into
consecutive batches of its own size, exactly as its separate fit would (the
last batch of an epoch short when the order does not divide evenly). The
models are independent, so a stack need not keep their epochs aligned: at
global step ``s`` every model takes *its own* step ``s``, whatever epoch that
falls in. A model takes as many steps as its separate fit, and the models
with the most steps are put first, so the models still training at any step
are a prefix of the stack: the others cost nothing. A model that stops
early is retired (:meth:`PackedSchedule.retire`): it moves behind the models
still training, and costs nothing from then on either.

The batches are laid out a window of steps at a time (:meth:`window`), from
the models' orders themselves: a stack holds no copy of every step's rows,
and of orders drawn when read (:class:`~skweighted._batching.EpochOrders`)
one epoch per model, the one its window reads.
Padding: a batch narrower than the widest batch size of the stack, and the
steps after a model's last, hold row ``-1`` (weight 0).
"""

import bisect
from collections import defaultdict
from itertools import accumulate

import torch


class PackedSchedule:
    """The batches of ``M`` models, sorted by their number of steps.

    Parameters
    ----------
    orders : list of list of 1-D integer tensors
        Per model, per epoch, the rows in batch order. The models must be
        sorted by their total number of steps, most first.
    batch_sizes : list of int
        Per model, its training batch size.
    offsets : list of int, default=None
        Per model, a number added to each of its rows (where its data sits
        in the stack's shared rows); 0 by default.

    Attributes
    ----------
    steps : list of list of int
        Per model, the number of steps of each of its epochs.
    width : int
        The widest batch size.
    n_steps : int
        The largest number of steps of a model.
    """

    def __init__(self, orders, batch_sizes, offsets=None):
        self.orders, self.batch_sizes = orders, batch_sizes
        self.offsets = offsets or [0] * len(orders)
        self.steps = [
            [-(-n // size) for n in epoch_lengths(model_orders)]
            for model_orders, size in zip(orders, batch_sizes)
        ]
        # per model's orders (by identity: retire() reorders the models),
        # the epoch read last and its order
        self._read = {}
        self.totals = [sum(s) for s in self.steps]
        if self.totals != sorted(self.totals, reverse=True):
            raise ValueError("the models must be sorted by their number of steps")
        self._starts = [[0, *accumulate(s)] for s in self.steps]
        self.width = max(batch_sizes)
        self.n_steps = max(self.totals, default=0)

    def n_active(self, s):
        """How many models (a prefix) take step ``s``."""
        return sum(total > s for total in self.totals)

    def window_end(self, start, width):
        """The end of the window of at most ``width`` steps from ``start``
        over which the same models train."""
        ends = [t for t in self.totals if t > start]
        return min([start + width, *ends])

    def segments(self, width):
        """``(start, stop, n_active)``: runs of at most ``width`` steps over
        which the same models train."""
        out, start = [], 0
        while start < self.n_steps:
            stop = self.window_end(start, width)
            out.append((start, stop, self.n_active(start)))
            start = stop
        return out

    def retire(self, models, step):
        """The models at positions ``models`` take no step from ``step`` on.

        Returns
        -------
        order : list of int
            The new order of the models (position ``i`` now holds the model
            that was at ``order[i]``): those still training first, in their
            order, so that they stay a prefix. Apply it to everything else
            held per model.
        """
        totals = [min(t, step) if m in models else t for m, t in enumerate(self.totals)]
        order = sorted(range(len(totals)), key=lambda m: -totals[m])  # stable
        permute(self, ("orders", "batch_sizes", "offsets", "steps", "_starts"), order)
        self.totals = [totals[m] for m in order]
        return order

    def window(self, start, stop, n):
        """The batches of steps ``start:stop`` of the first ``n`` models.

        Returns
        -------
        rows : LongTensor of shape (n, stop - start, width)
            The rows of each batch, ``-1`` where padded.
        epoch : LongTensor of shape (n, stop - start)
            The epoch each step belongs to (0 after a model's last step).
        """
        rows = torch.full((n, stop - start, self.width), -1, dtype=torch.long)
        epoch = torch.zeros((n, stop - start), dtype=torch.long)
        for m in range(n):
            size, starts = self.batch_sizes[m], self._starts[m]
            e = bisect.bisect_right(starts, start) - 1
            s = start
            while s < stop and e < len(self.steps[m]):
                j0, j1 = s - starts[e], min(self.steps[m][e], stop - starts[e])
                if j1 > j0:
                    part = self._order(m, e)[j0 * size : j1 * size]
                    flat = torch.full(((j1 - j0) * size,), -1, dtype=torch.long)
                    flat[: len(part)] = part.long() + self.offsets[m]
                    rows[m, s - start : s - start + j1 - j0, :size] = flat.view(
                        j1 - j0, size
                    )
                    epoch[m, s - start : s - start + j1 - j0] = e
                    s += j1 - j0
                e += 1
        return rows, epoch

    def _order(self, m, e):
        """Model ``m``'s order of epoch ``e``, read once while its windows
        pass through it."""
        key = id(self.orders[m])
        if self._read.get(key, (None,))[0] != e:
            self._read[key] = (e, self.orders[m][e])
        return self._read[key][1]


def epoch_lengths(orders):
    """The number of rows of each of one model's epochs ``orders`` (a list
    of tensors, or orders drawn when read), without drawing them."""
    return orders.lengths() if hasattr(orders, "lengths") else [len(o) for o in orders]


class EpochEnds:
    """Where the epochs of some models of a stack end, by their positions in
    the stack, following the stack's reorders.

    Parameters
    ----------
    steps : list of list of int
        Per model, the steps of each of its epochs.
    models : iterable of int
        The positions of the models whose epoch ends are wanted.

    Attributes
    ----------
    last_step : dict
        Model -> the last global step of each of its epochs.
    """

    def __init__(self, steps, models):
        self._at, self.last_step = defaultdict(list), {}
        for m in models:
            self.last_step[m] = list(accumulate(steps[m], initial=-1))[1:]
            for e, s in enumerate(self.last_step[m]):
                self._at[s].append((m, e))

    def at(self, step):
        """``[(model, epoch)]`` of the epochs that end at global ``step``."""
        return self._at.get(step, ())

    def reorder(self, new):
        """Follow the stack's new order (``new``: old position -> new)."""
        self.last_step = {new[m]: v for m, v in self.last_step.items()}
        self._at = {s: [(new[m], e) for m, e in p] for s, p in self._at.items()}


def new_positions(order):
    """Old position -> new, for a stack reordered so that position ``i``
    holds the model that was at ``order[i]``."""
    return {old: i for i, old in enumerate(order)}


def permute(obj, names, order):
    """Reorder the per-model lists ``names`` of ``obj`` by ``order``."""
    for name in names:
        setattr(obj, name, [getattr(obj, name)[m] for m in order])


def step_counts(orders, batch_size):
    """The total number of steps of one model's epochs ``orders``."""
    return sum(-(-n // batch_size) for n in epoch_lengths(orders))

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
the models' orders themselves: a stack holds no copy of every step's rows.
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
            [-(-len(o) // size) for o in model_orders]
            for model_orders, size in zip(orders, batch_sizes)
        ]
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
        for name in ("orders", "batch_sizes", "offsets", "steps", "_starts"):
            setattr(self, name, [getattr(self, name)[m] for m in order])
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
                    part = self.orders[m][e][j0 * size : j1 * size]
                    flat = torch.full(((j1 - j0) * size,), -1, dtype=torch.long)
                    flat[: len(part)] = part.long() + self.offsets[m]
                    rows[m, s - start : s - start + j1 - j0, :size] = flat.view(
                        j1 - j0, size
                    )
                    epoch[m, s - start : s - start + j1 - j0] = e
                    s += j1 - j0
                e += 1
        return rows, epoch


def epoch_ends(steps, models):
    """Where the epochs of ``models`` (positions in the stack) end.

    Returns
    -------
    ends : dict
        Global step -> ``[(model, epoch)]`` of the epochs that end at it.
    last_step : dict
        Model -> the last global step of each of its epochs.
    """
    ends, last_step = defaultdict(list), {}
    for m in models:
        last_step[m] = list(accumulate(steps[m], initial=-1))[1:]
        for e, s in enumerate(last_step[m]):
            ends[s].append((m, e))
    return ends, last_step


def step_counts(orders, batch_size):
    """The total number of steps of one model's epochs ``orders``."""
    return sum(-(-len(o) // batch_size) for o in orders)

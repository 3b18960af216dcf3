"""Every model's batches, all its epochs one after another, on one step grid.

Model ``m`` of a stack trains on its own row order per epoch, cut into
consecutive batches of its own size, exactly as its separate fit would (the
last batch of an epoch short when the order does not divide evenly). The
models are independent, so a stack need not keep their epochs aligned: at
global step ``s`` every model takes *its own* step ``s``, whatever epoch that
falls in. A model takes as many steps as its separate fit, and the models
with the most steps are put first, so the models still training at any step
are a prefix of the stack: the others cost nothing.

Padding: a batch shorter than the widest batch size of the stack is padded
with row ``-1`` (weight 0).
"""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PackedSchedule:
    """The batches of ``M`` models, models sorted by their number of steps.

    Attributes
    ----------
    rows : IntTensor of shape (M, S, B)
        Per model and step, the rows of its batch (``-1`` where padded or
        after its last step). ``S`` is the largest number of steps, ``B`` the
        widest batch size.
    epoch : LongTensor of shape (M, S)
        The epoch each step belongs to (0 after the model's last step).
    steps : list of list of int
        Per model, the number of steps of each of its epochs.
    """

    rows: torch.Tensor
    epoch: torch.Tensor
    steps: list

    @property
    def n_steps(self):
        return self.rows.shape[1]

    def n_active(self, s):
        """How many models (a prefix) take step ``s``."""
        return sum(sum(st) > s for st in self.steps)

    def segments(self, width):
        """``(start, stop, n_active)``: runs of at most ``width`` steps over
        which the same models train."""
        totals = sorted({sum(st) for st in self.steps if sum(st)})
        out, start = [], 0
        for stop in totals:
            active = sum(sum(st) >= stop for st in self.steps)
            for a in range(start, stop, width):
                out.append((a, min(a + width, stop), active))
            start = stop
        return out


def pack(orders, batch_sizes):
    """Lay out each model's epochs of batches on one step grid.

    Parameters
    ----------
    orders : list of list of LongTensor
        Per model, per epoch, the rows in batch order. The models must be
        sorted by their total number of steps, most first.
    batch_sizes : list of int
        Per model, its training batch size.

    Returns
    -------
    schedule : PackedSchedule
    """
    steps = [
        [-(-len(o) // size) for o in model_orders]
        for model_orders, size in zip(orders, batch_sizes)
    ]
    totals = [sum(s) for s in steps]
    if totals != sorted(totals, reverse=True):
        raise ValueError("the models must be sorted by their number of steps")
    width = max(batch_sizes)
    n_steps = max(totals, default=0)
    rows = np.full((len(orders), n_steps, width), -1, dtype=np.int32)
    epoch = np.zeros((len(orders), n_steps), dtype=np.int64)
    for m, (model_orders, size, model_steps) in enumerate(
        zip(orders, batch_sizes, steps)
    ):
        s = 0
        for e, (order, t) in enumerate(zip(model_orders, model_steps)):
            if not t:
                continue
            padded = np.full(t * size, -1, dtype=np.int32)
            padded[: len(order)] = np.asarray(order)
            rows[m, s : s + t, :size] = padded.reshape(t, size)
            epoch[m, s : s + t] = e
            s += t
    return PackedSchedule(torch.from_numpy(rows), torch.from_numpy(epoch), steps)


def step_counts(orders, batch_size):
    """The total number of steps of one model's epochs ``orders``."""
    return sum(-(-len(o) // batch_size) for o in orders)

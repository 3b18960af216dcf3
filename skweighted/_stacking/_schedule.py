"""The per-model batch schedule of one epoch, as padded index tensors.

Model ``m`` of a stack trains on its own row order, cut into consecutive
batches of its own size, exactly as its separate fit would (the last batch
short when the order does not divide evenly). The stack takes global steps
``t = 0, 1, ...``: at step ``t`` every model processes its batch ``t``;
shorter batches are padded with rows of weight 0, and a model whose epoch has
fewer than ``t + 1`` batches (or which has finished its epochs) is inactive at
that step: it is masked out of the optimizer step, so it takes exactly the
steps of its separate fit.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EpochSchedule:
    """One epoch of a stack of ``M`` models.

    Attributes
    ----------
    index : LongTensor of shape (M, T, B)
        Row of the shared data each model reads at each step (0 where padded).
    valid : BoolTensor of shape (M, T, B)
        Whether that position holds a real row of the model's batch.
    active : BoolTensor of shape (M, T)
        Whether the model takes an optimizer step at that step.
    sizes : LongTensor of shape (M, T)
        The number of real rows of each model's batch (0 when inactive).
    """

    index: torch.Tensor
    valid: torch.Tensor
    active: torch.Tensor
    sizes: torch.Tensor

    @property
    def n_steps(self):
        return self.index.shape[1]


def epoch_schedule(orders, batch_sizes):
    """Pad the models' row orders of one epoch into a common step grid.

    Parameters
    ----------
    orders : list of LongTensor or None
        Per model, the rows of its epoch in batch order; ``None`` for a model
        that does not train in this epoch.
    batch_sizes : list of int
        Per model, its training batch size.

    Returns
    -------
    schedule : EpochSchedule
    """
    width = max(batch_sizes)
    steps = [
        0 if order is None else -(-len(order) // size)
        for order, size in zip(orders, batch_sizes)
    ]
    n_models, n_steps = len(orders), max(steps, default=0)
    index = torch.zeros(n_models, n_steps, width, dtype=torch.long)
    valid = torch.zeros(n_models, n_steps, width, dtype=torch.bool)
    for m, (order, size, t) in enumerate(zip(orders, batch_sizes, steps)):
        if not t:
            continue
        n = len(order)
        padded = torch.zeros(t * size, dtype=torch.long)
        padded[:n] = torch.as_tensor(order, dtype=torch.long)
        mask = torch.zeros(t * size, dtype=torch.bool)
        mask[:n] = True
        index[m, :t, :size] = padded.view(t, size)
        valid[m, :t, :size] = mask.view(t, size)
    sizes = valid.sum(-1)
    return EpochSchedule(index=index, valid=valid, active=sizes > 0, sizes=sizes)

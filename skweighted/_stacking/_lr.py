"""skorch's ``LRScheduler`` in a stack: each model on its own schedule.

A schedule depends on nothing a fit learns (except ``ReduceLROnPlateau``,
which reads a score, see :class:`Plateaus`): the settings it gives the
optimizer at each step follow from the policy, its arguments, the
optimizer's settings and the number of steps per epoch. So the recording
pass runs the policy on an optimizer of the fit's class over one dummy
parameter, exactly as skorch's callback runs it (built at
``on_train_begin`` with ``last_epoch=-1``, stepped at each epoch's or
batch's end), and keeps, per step, the settings the policy touches (``lr``;
``betas`` or ``momentum`` for a one-cycle policy). The stacked optimizer
takes each model's settings of the step (see
:class:`~skweighted._stacking._optim.StackedOptimizer`); write-back replays
the callback's events, so the net's optimizer, the callback and ``history``
(``event_lr``) end as after the separate fit.

``ReduceLROnPlateau`` steps at the end of each of a model's epochs on the
score it monitors, as skorch's callback does: ``train_loss`` (the epoch's
batch losses averaged by batch size) or ``valid_loss`` (the validation loss
of early stopping in the stack, :mod:`._early`). :class:`Plateaus` runs
torch's own scheduler per model over a dummy optimizer and gives the stacked
optimizer the learning rate it sets; write-back replays the callback on the
same scores, so the net's scheduler and optimizer end as after the separate
fit.
"""

import numpy as np
import torch
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ._schedule import EpochEnds, new_positions

#: The optimizer settings a schedule may change from step to step.
SCHEDULED = ("lr", "betas", "momentum")


def _callbacks(net):
    if net.callbacks in (None, "disable"):
        return []
    return [cb[1] if isinstance(cb, tuple) else cb for cb in net.callbacks]


#: The scores a stacked ``ReduceLROnPlateau`` can monitor.
MONITORS = ("train_loss", "valid_loss")


def _policy(cb):
    return cb._get_policy_cls() if isinstance(cb.policy, str) else cb.policy


def _plateau(cb):
    return _policy(cb) is ReduceLROnPlateau


def reason(net, validated=False):
    """Why the callbacks of ``net`` keep it out of a stack (None: they do
    not); ``validated``: whether the stack scores its validation loss (early
    stopping)."""
    callbacks = _callbacks(net)
    others = [type(cb).__name__ for cb in callbacks if type(cb) is not LRScheduler]
    if others:
        return f"callbacks {others} need a separate net"
    if len(callbacks) > 1:
        return "several LRScheduler callbacks need a separate net"
    for cb in callbacks:
        if cb.step_every not in ("epoch", "batch"):
            return f"LRScheduler(step_every={cb.step_every!r}) needs a separate net"
        if not _plateau(cb):
            continue
        monitors = MONITORS if validated else MONITORS[:1]
        if cb.step_every != "epoch" or cb.monitor not in monitors:
            return (
                f"LRScheduler(ReduceLROnPlateau, monitor={cb.monitor!r}, "
                f"step_every={cb.step_every!r}): a stack steps it at each epoch's "
                f"end on {' or '.join(map(repr, monitors))} only"
            )
    return None


def plateau(net):
    """``(monitor, kwargs)`` of ``net``'s ``ReduceLROnPlateau`` schedule
    (None without one)."""
    callbacks = [cb for cb in _callbacks(net) if _plateau(cb)]
    return (callbacks[0].monitor, dict(callbacks[0].kwargs)) if callbacks else None


def schedule(net, optimizer_kwargs, steps):
    """Per step, the settings of :data:`SCHEDULED` that ``net``'s
    ``LRScheduler`` gives the optimizer (None without one); ``steps``: the
    number of steps of each epoch."""
    callbacks = _callbacks(net)
    if not callbacks or _plateau(callbacks[0]):
        return None
    cb = callbacks[0]
    dummy = torch.zeros(1, requires_grad=True)
    opt = net.optimizer([dummy], **optimizer_kwargs)
    policy = _policy(cb)
    kwargs = cb.kwargs
    kwargs.setdefault("last_epoch", -1)  # as on_train_begin of a cold fit
    policy = policy(opt, **kwargs)
    out = []
    for n in steps:
        for _ in range(n):
            group = opt.param_groups[0]
            out.append({k: group[k] for k in SCHEDULED if k in group})
            if cb.step_every == "batch":
                opt.step()  # no gradient: nothing moves; keeps torch quiet
                policy.step()
        if cb.step_every == "epoch":
            opt.step()
            policy.step()
    return out


def batch_listeners(net):
    """The ``LRScheduler`` callbacks that step at each batch (write-back
    notifies them batch by batch)."""
    return [
        cb
        for _, cb in getattr(net, "callbacks_", [])
        if isinstance(cb, LRScheduler) and cb.step_every == "batch"
    ]


class Plateaus:
    """Each model's ``ReduceLROnPlateau`` (the jobs with a ``plateau``),
    stepped at the end of each of its epochs.

    Parameters
    ----------
    jobs : list of StackJob
        In stack order.
    steps : list of list of int
        Per model, the steps of each of its epochs.
    optimizer : type
        The stack's optimizer class.
    """

    def __init__(self, jobs, steps, optimizer):
        self.policies = {}  # model -> (its scheduler, the score it monitors)
        for m, job in enumerate(jobs):
            if job.plateau is not None:
                monitor, kwargs = job.plateau
                dummy = torch.zeros(1, requires_grad=True)
                opt = optimizer([dummy], **job.optimizer_kwargs)
                self.policies[m] = (ReduceLROnPlateau(opt, **kwargs), monitor)
        self.ends = EpochEnds(steps, self.policies)

    def after_step(self, step, losses, sizes, early, opt):
        """Step the schedulers of the models whose epoch ended at global
        ``step`` and give ``opt`` the learning rates they set."""
        for m, e in self.ends.at(step):
            if early is not None and m in early.stopped:
                continue  # trains no more
            scheduler, monitor = self.policies[m]
            if monitor == "valid_loss":
                score = early.losses[m][e]
            else:  # skorch's train_loss: batch losses averaged by batch size
                first = self.ends.last_step[m][e - 1] + 1 if e else 0
                score = np.average(
                    losses[m, first : step + 1].tolist(),
                    weights=sizes[m, first : step + 1].tolist(),
                )
            scheduler.step(score)
            opt.set_lr(m, scheduler.optimizer.param_groups[0]["lr"])

    def reorder(self, order):
        """Follow the stack's new order (see :meth:`._early.EarlyStops.reorder`)."""
        new = new_positions(order)
        self.policies = {new[m]: v for m, v in self.policies.items()}
        self.ends.reorder(new)

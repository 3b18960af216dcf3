"""skorch's ``LRScheduler`` in a stack: each model on its own schedule.

A schedule depends on nothing a fit learns (except ``ReduceLROnPlateau``,
which reads a score): the settings it gives the optimizer at each step
follow from the policy, its arguments, the optimizer's settings and the
number of steps per epoch. So the recording pass runs the policy on an
optimizer of the fit's class over one dummy parameter, exactly as skorch's
callback runs it (built at ``on_train_begin`` with ``last_epoch=-1``,
stepped at each epoch's or batch's end), and keeps, per step, the settings
the policy touches (``lr``; ``betas`` or ``momentum`` for a one-cycle
policy). The stacked optimizer takes each model's settings of the step (see
:class:`~skweighted._stacking._optim.StackedOptimizer`); write-back replays
the callback's events, so the net's optimizer, the callback and ``history``
(``event_lr``) end as after the separate fit.
"""

import torch
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau

#: The optimizer settings a schedule may change from step to step.
SCHEDULED = ("lr", "betas", "momentum")


def _callbacks(net):
    if net.callbacks in (None, "disable"):
        return []
    return [cb[1] if isinstance(cb, tuple) else cb for cb in net.callbacks]


def reason(net):
    """Why the callbacks of ``net`` keep it out of a stack (None: they do not)."""
    callbacks = _callbacks(net)
    others = [type(cb).__name__ for cb in callbacks if type(cb) is not LRScheduler]
    if others:
        return f"callbacks {others} need a separate net"
    if len(callbacks) > 1:
        return "several LRScheduler callbacks need a separate net"
    for cb in callbacks:
        policy = cb._get_policy_cls() if isinstance(cb.policy, str) else cb.policy
        if policy is ReduceLROnPlateau or isinstance(policy, ReduceLROnPlateau):
            return "LRScheduler(ReduceLROnPlateau) reads a score: a separate net"
        if cb.step_every not in ("epoch", "batch"):
            return f"LRScheduler(step_every={cb.step_every!r}) needs a separate net"
    return None


def schedule(net, optimizer_kwargs, steps):
    """Per step, the settings of :data:`SCHEDULED` that ``net``'s
    ``LRScheduler`` gives the optimizer (None without one); ``steps``: the
    number of steps of each epoch."""
    callbacks = _callbacks(net)
    if not callbacks:
        return None
    cb = callbacks[0]
    dummy = torch.zeros(1, requires_grad=True)
    opt = net.optimizer([dummy], **optimizer_kwargs)
    policy = cb._get_policy_cls() if isinstance(cb.policy, str) else cb.policy
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

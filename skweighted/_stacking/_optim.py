"""Adam, AdamW and SGD on a stack of models, each with its own settings.

The update is PyTorch's own: :func:`torch.optim.adam.adam` and
:func:`torch.optim.sgd.sgd` (the functional forms ``torch.optim.Adam`` and
``SGD`` call), applied to each model's row of the stacked ``(M, P)`` tensor
(element-wise, so the same as per parameter, and five times fewer tensors to
loop over), with the same implementation (fused, foreach) the separate fit
would pick. So model ``m`` takes exactly the steps of its
separate fit, bit for bit given the same gradients. Models with the same
settings are updated in one call; a model that is inactive at a step (its
epoch has fewer batches) is left out of the call, so its parameters, state
and step count stay as they were.
"""

import inspect

import torch
from torch.optim import adam, sgd

from .._compat import fast_optimizer_kwargs, fused_adam_
from ._schedule import permute

#: The optimizers a stack implements, with the settings it reads from each.
SUPPORTED = {
    torch.optim.Adam: ("lr", "betas", "eps", "weight_decay", "amsgrad",
                       "decoupled_weight_decay"),
    torch.optim.AdamW: ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    torch.optim.SGD: ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
}  # fmt: skip
#: Settings that select an implementation (kept, to pick the same one).
_IMPLEMENTATION = ("fused", "foreach")
_IGNORED = {"capturable", "differentiable"}


def settings(optimizer, kwargs, device="cpu"):
    """The full settings of ``optimizer(params, **kwargs)``, or raise ValueError.

    Defaults are filled in, and the implementation (``fused``/``foreach``) is
    the one the classifier's net would use on ``device``.
    """
    if optimizer not in SUPPORTED:
        raise ValueError(
            f"optimizer {getattr(optimizer, '__name__', optimizer)!r} cannot be "
            f"stacked; stacked fits support {[o.__name__ for o in SUPPORTED]}."
        )
    defaults = {
        name: p.default
        for name, p in inspect.signature(optimizer.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    if not set(_IMPLEMENTATION) & set(kwargs):
        kwargs = {**fast_optimizer_kwargs(optimizer, device), **kwargs}
    full = {**defaults, **kwargs}
    unsupported = {
        k: v
        for k, v in full.items()
        if k not in SUPPORTED[optimizer]
        and k not in _IMPLEMENTATION
        and k not in _IGNORED
        and v not in (False, None)
    }
    unsupported.update({k: full[k] for k in _IGNORED if full.get(k)})
    if unsupported:
        raise ValueError(
            f"{optimizer.__name__} settings {unsupported} cannot be stacked."
        )
    out = {k: full.get(k) for k in (*SUPPORTED[optimizer], *_IMPLEMENTATION)}
    out["lr"] = float(out["lr"])
    if optimizer is torch.optim.AdamW:
        out["decoupled_weight_decay"] = True
    return out


def _key(settings, schedule):
    """What models updated in one call share: their settings and schedule."""
    return tuple(sorted(settings.items(), key=str)), repr(schedule)


class StackedOptimizer:
    """One optimizer for the ``(M, P)`` parameters of a stack.

    Models with the same settings that sit next to each other in the stack
    and have taken the same number of steps are updated by one call of
    PyTorch's functional optimizer on their block of rows (one tensor, not a
    tensor per model).

    Parameters
    ----------
    model : StackedModel
        Its ``flat`` parameters are updated in place.
    optimizer : type
        ``torch.optim.Adam``, ``AdamW`` or ``SGD``; the same for every model.
    per_model : list of dict
        Model ``m``'s settings, as returned by :func:`settings`.
    schedules : list of (list of dict or None), default=None
        Model ``m``'s settings that change at each of its steps (an
        ``LRScheduler``'s, see :mod:`~skweighted._stacking._lr`), or None.
    """

    def __init__(self, model, optimizer, per_model, schedules=None):
        self.model = model
        self.sgd = optimizer is torch.optim.SGD
        self.params = model.flat.detach()  # the same storage, no autograd
        self.per_model = per_model
        self.schedules = schedules or [None] * len(per_model)
        # models with the same key and step count are updated together
        self.keys = [_key(s, sch) for s, sch in zip(per_model, self.schedules)]
        self.steps = [0] * len(per_model)
        self.momentum = None  # SGD: created by the first step, as torch does
        if not self.sgd:
            self.exp_avg = torch.zeros_like(self.params)
            self.exp_avg_sq = torch.zeros_like(self.params)
            amsgrad = any(s["amsgrad"] for s in per_model)
            self.max_sq = torch.zeros_like(self.params) if amsgrad else None
        self._runs = {}

    def step(self, grad, n_active=None):
        """Update the first ``n_active`` models (all by default) with their
        gradients ``grad`` of shape (M, P); the others keep their parameters,
        state and step count."""
        n = self.model.n_models if n_active is None else n_active
        if n not in self._runs:
            self._runs = {n: self._blocks(n)}
        with torch.no_grad():
            for a, b in self._runs[n]:
                self._update(self.per_model[a], a, b, grad[a:b])
                for m in range(a, b):
                    self.steps[m] += 1

    def reorder(self, order):
        """Put the model at position ``order[i]`` at position ``i``: its
        settings, schedule, step count and state (the parameters are the
        model's, reordered by :meth:`StackedModel.reorder`)."""
        permute(self, ("per_model", "schedules", "keys", "steps"), order)
        index = torch.as_tensor(order, device=self.params.device)
        for name in ("exp_avg", "exp_avg_sq", "max_sq", "momentum"):
            state = getattr(self, name, None)
            if state is not None:
                setattr(self, name, state.index_select(0, index))
        self._runs = {}

    def set_lr(self, m, lr):
        """Model ``m`` steps with learning rate ``lr`` from now on."""
        if lr != self.per_model[m]["lr"]:
            self.per_model[m] = {**self.per_model[m], "lr": lr}
            self.keys[m] = _key(self.per_model[m], self.schedules[m])
            self._runs = {}

    def _blocks(self, n):
        """``[a, b)`` ranges of the first ``n`` models: same settings, same
        number of steps taken."""
        blocks, a = [], 0
        for m in range(1, n + 1):
            if m == n or (self.keys[m], self.steps[m]) != (
                self.keys[a],
                self.steps[a],
            ):
                blocks.append((a, m))
                a = m
        return blocks

    def _update(self, s, a, b, grad):
        if self.schedules[a] is not None:  # this step's lr (betas, momentum)
            s = {**s, **self.schedules[a][self.steps[a]]}
        params = [self.params[a:b]]
        if self.sgd:
            first = self.momentum is None or self.steps[a] == 0
            buffers = [None] if first else [self.momentum[a:b]]
            sgd.sgd(
                params,
                [grad],
                buffers,
                foreach=s["foreach"],
                fused=s["fused"],
                weight_decay=s["weight_decay"],
                momentum=s["momentum"],
                lr=s["lr"],
                dampening=s["dampening"],
                nesterov=s["nesterov"],
                maximize=False,
            )
            if first and buffers[0] is not None:  # sgd() created the buffer
                if self.momentum is None:
                    self.momentum = torch.zeros_like(self.params)
                self.momentum[a:b].copy_(buffers[0])
            return
        step = torch.tensor(float(self.steps[a]), device=self._step_device(s))
        state = (
            [grad],
            [self.exp_avg[a:b]],
            [self.exp_avg_sq[a:b]],
            [self.max_sq[a:b]] if s["amsgrad"] else [],
            [step],
        )
        kwargs = dict(
            decoupled_weight_decay=bool(s["decoupled_weight_decay"]),
            amsgrad=s["amsgrad"],
            beta1=s["betas"][0],
            beta2=s["betas"][1],
            lr=s["lr"],
            weight_decay=s["weight_decay"],
            eps=s["eps"],
        )
        if s["fused"]:
            fused_adam_(params, *state, **kwargs)
        else:
            adam.adam(params, *state, foreach=s["foreach"], maximize=False, **kwargs)

    def _step_device(self, settings):
        """Where torch keeps the step count: with the parameters for the fused
        implementation, on the CPU otherwise."""
        return self.params.device if settings.get("fused") else "cpu"

    def state_for(self, m):
        """Model ``m``'s state as PyTorch's optimizer holds it, per parameter."""

        def split(rows):
            if rows is None:
                return [None] * len(self.model.names)
            views = self.model.views(rows[m : m + 1])
            return [v[0].clone() for v in views.values()]

        if self.sgd:  # torch keeps no state for SGD without momentum
            if not self.per_model[m]["momentum"]:
                return [{} for _ in self.model.names]
            return [{"momentum_buffer": b} for b in split(self.momentum)]
        avg, sq = split(self.exp_avg), split(self.exp_avg_sq)
        max_sq = split(self.max_sq if self.per_model[m]["amsgrad"] else None)
        states = []
        for i in range(len(self.model.names)):
            state = {
                "step": torch.tensor(
                    float(self.steps[m]), device=self._step_device(self.per_model[m])
                ),
                "exp_avg": avg[i],
                "exp_avg_sq": sq[i],
            }
            if max_sq[i] is not None:
                state["max_exp_avg_sq"] = max_sq[i]
            states.append(state)
        return states

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
from collections import defaultdict

import torch
from torch.optim import adam, sgd

from .._compat import fast_optimizer_kwargs

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


class StackedOptimizer:
    """One optimizer for the ``(M, P)`` parameters of a stack.

    Parameters
    ----------
    model : StackedModel
        Its ``flat`` parameters are updated in place.
    optimizer : type
        ``torch.optim.Adam``, ``AdamW`` or ``SGD``; the same for every model.
    per_model : list of dict
        Model ``m``'s settings, as returned by :func:`settings`.
    """

    def __init__(self, model, optimizer, per_model):
        self.model = model
        self.sgd = optimizer is torch.optim.SGD
        flat = model.flat
        self.params = _rows(flat.detach())
        n_models = len(per_model)
        if self.sgd:
            self.buffers = [[None] for _ in range(n_models)]
        else:
            self.exp_avg = torch.zeros_like(flat, requires_grad=False)
            self.exp_avg_sq = torch.zeros_like(flat, requires_grad=False)
            self.avg_rows = _rows(self.exp_avg)
            self.sq_rows = _rows(self.exp_avg_sq)
            self.max_sq = [[None] for _ in range(n_models)]
            step_device = flat.device if per_model[0].get("fused") else "cpu"
            self.steps = [
                [torch.tensor(0.0, device=step_device)] for _ in range(n_models)
            ]
        self.groups = defaultdict(list)  # same settings -> one call
        for m, s in enumerate(per_model):
            self.groups[tuple(sorted(s.items(), key=str))].append(m)
        self.per_model = per_model

    def step(self, grad, active):
        """Update the active models with their gradients ``grad`` (M, P).

        ``active`` is a bool tensor of shape (M,) or None (all active).
        """
        grads = _rows(grad)
        act = None if active is None else active.tolist()
        with torch.no_grad():
            for key, models in self.groups.items():
                if act is not None:
                    models = [m for m in models if act[m]]
                if models:
                    self._update(dict(key), models, grads)

    def _update(self, s, models, grads):
        def gather(rows):
            return [t for m in models for t in rows[m]]

        params, grad = gather(self.params), gather(grads)
        if self.sgd:
            buffers = gather(self.buffers)
            sgd.sgd(
                params,
                grad,
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
            for i, m in enumerate(models):  # sgd() creates the buffers
                self.buffers[m] = buffers[i : i + 1]
            return
        max_sq = gather(self.max_sq)
        if s["amsgrad"] and any(t is None for t in max_sq):
            for m in models:
                if self.max_sq[m][0] is None:
                    self.max_sq[m] = [torch.zeros_like(self.params[m][0])]
            max_sq = gather(self.max_sq)
        adam.adam(
            params,
            grad,
            gather(self.avg_rows),
            gather(self.sq_rows),
            max_sq if s["amsgrad"] else [],
            gather(self.steps),
            foreach=s["foreach"],
            fused=s["fused"],
            decoupled_weight_decay=bool(s["decoupled_weight_decay"]),
            amsgrad=s["amsgrad"],
            beta1=s["betas"][0],
            beta2=s["betas"][1],
            lr=s["lr"],
            weight_decay=s["weight_decay"],
            eps=s["eps"],
            maximize=False,
        )

    def state_for(self, m):
        """Model ``m``'s state as PyTorch's optimizer holds it, per parameter."""

        def split(row):
            if row is None:
                return [None] * len(self.model.names)
            views = self.model.views(row.detach().unsqueeze(0))
            return [v[0].clone() for v in views.values()]

        if self.sgd:
            return [{"momentum_buffer": b} for b in split(self.buffers[m][0])]
        avg, sq = split(self.avg_rows[m][0]), split(self.sq_rows[m][0])
        max_sq = split(self.max_sq[m][0])
        states = []
        for i in range(len(self.model.names)):
            state = {
                "step": self.steps[m][0].clone(),
                "exp_avg": avg[i],
                "exp_avg_sq": sq[i],
            }
            if max_sq[i] is not None:
                state["max_exp_avg_sq"] = max_sq[i]
            states.append(state)
        return states


def _rows(flat):
    """Per model, a one-element list holding its row of ``flat`` (a view)."""
    return [[flat[m]] for m in range(flat.shape[0])]

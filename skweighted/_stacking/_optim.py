"""Adam, AdamW and SGD on a stack of models, each with its own settings.

The update is PyTorch's own: :func:`torch.optim.adam.adam` and
:func:`torch.optim.sgd.sgd` (the functional forms ``torch.optim.Adam`` and
``SGD`` call), applied to each model's parameters as views into the stacked
``(M, P)`` tensor, with the same implementation (fused, foreach) the
separate fit would pick. So model ``m`` takes exactly the steps of its
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
        self.params = _views(model, flat.detach())
        n_models, n_params = len(per_model), len(model.names)
        if self.sgd:
            self.buffers = [[None] * n_params for _ in range(n_models)]
        else:
            self.exp_avg = torch.zeros_like(flat, requires_grad=False)
            self.exp_avg_sq = torch.zeros_like(flat, requires_grad=False)
            self.avg_views = _views(model, self.exp_avg)
            self.sq_views = _views(model, self.exp_avg_sq)
            self.max_sq = [[None] * n_params for _ in range(n_models)]
            step_device = flat.device if per_model[0].get("fused") else "cpu"
            self.steps = [
                [torch.tensor(0.0, device=step_device) for _ in range(n_params)]
                for _ in range(n_models)
            ]
        self.groups = defaultdict(list)  # same settings -> one call
        for m, s in enumerate(per_model):
            self.groups[tuple(sorted(s.items(), key=str))].append(m)
        self.per_model = per_model

    def step(self, grad, active):
        """Update the active models with their gradients ``grad`` (M, P).

        ``active`` is a bool tensor of shape (M,) or None (all active).
        """
        grads = _views(self.model, grad)
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
            n = len(self.model.names)
            for i, m in enumerate(models):  # sgd() creates the buffers
                self.buffers[m] = buffers[i * n : (i + 1) * n]
            return
        max_sq = gather(self.max_sq)
        if s["amsgrad"] and any(t is None for t in max_sq):
            for m in models:
                self.max_sq[m] = [torch.zeros_like(p) for p in self.params[m]]
            max_sq = gather(self.max_sq)
        adam.adam(
            params,
            grad,
            gather(self.avg_views),
            gather(self.sq_views),
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
        if self.sgd:
            return [
                {"momentum_buffer": None if b is None else b.detach().clone()}
                for b in self.buffers[m]
            ]
        states = []
        for i in range(len(self.model.names)):
            state = {
                "step": self.steps[m][i].clone(),
                "exp_avg": self.avg_views[m][i].clone(),
                "exp_avg_sq": self.sq_views[m][i].clone(),
            }
            if self.max_sq[m][i] is not None:
                state["max_exp_avg_sq"] = self.max_sq[m][i].clone()
            states.append(state)
        return states


def _views(model, flat):
    """Per model, its parameters as views of ``flat`` (their own shapes)."""
    stacked = list(model.views(flat).values())
    return [[v[m] for v in stacked] for m in range(flat.shape[0])]

"""Adam, AdamW and SGD on a stack of models, each with its own hyperparameters.

Model ``m``'s update is PyTorch's single-model update (``torch.optim.Adam``,
``AdamW``, ``SGD``) with model ``m``'s learning rate and settings; the state
(moments, step count) is per model. A model that is inactive at a step (its
epoch has fewer batches) is left exactly as it was: parameters, state and
step count.
"""

import inspect

import torch

#: The optimizers a stack implements, with the settings it reads from each.
SUPPORTED = {
    torch.optim.Adam: ("lr", "betas", "eps", "weight_decay"),
    torch.optim.AdamW: ("lr", "betas", "eps", "weight_decay"),
    torch.optim.SGD: ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
}
#: Settings that only select an implementation (the result is the same).
_IMPLEMENTATION = {"fused", "foreach", "capturable", "differentiable"}


def settings(optimizer, kwargs):
    """The full settings of ``optimizer(params, **kwargs)``, or raise ValueError.

    Parameters
    ----------
    optimizer : type
        ``torch.optim.Adam``, ``AdamW`` or ``SGD``.
    kwargs : dict
        Its keyword arguments (``lr`` included).

    Returns
    -------
    settings : dict
        Every setting the stacked update uses, defaults filled in.
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
    full = {**defaults, **kwargs}
    unsupported = {
        k: v
        for k, v in full.items()
        if k not in SUPPORTED[optimizer]
        and k not in _IMPLEMENTATION
        and v not in (False, None)
    }
    if unsupported:
        raise ValueError(
            f"{optimizer.__name__} settings {unsupported} cannot be stacked."
        )
    if isinstance(full["lr"], torch.Tensor):
        full["lr"] = float(full["lr"])
    return {k: full[k] for k in SUPPORTED[optimizer]}


class StackedOptimizer:
    """One optimizer for the ``(M, P)`` parameters of a stack.

    Parameters
    ----------
    flat : Tensor of shape (M, P)
        The stacked parameters, updated in place.
    optimizer : type
        ``torch.optim.Adam``, ``AdamW`` or ``SGD``; the same for every model.
    per_model : list of dict
        Model ``m``'s settings, as returned by :func:`settings`.
    """

    def __init__(self, flat, optimizer, per_model):
        self.flat = flat
        self.kind = optimizer
        dev = flat.device
        M = flat.shape[0]

        def column(key, index=None):
            values = [s[key] if index is None else s[key][index] for s in per_model]
            return torch.tensor(values, dtype=torch.float64).view(M, 1)

        self.lr = column("lr")
        self.weight_decay = column("weight_decay").to(dev, torch.float32)
        if optimizer is torch.optim.SGD:
            self.momentum = column("momentum").to(dev, torch.float32)
            self.dampening = column("dampening").to(dev, torch.float32)
            nesterov = {s["nesterov"] for s in per_model}
            if len(nesterov) > 1:
                raise ValueError("nesterov must be the same for every stacked model.")
            self.nesterov = nesterov.pop()
            self.buf = None
            self.has_buf = torch.zeros(M, 1, dtype=torch.bool, device=dev)
        else:
            self.beta1, self.beta2 = column("betas", 0), column("betas", 1)
            self.eps = column("eps").to(dev, torch.float32)
            self.exp_avg = torch.zeros_like(flat)
            self.exp_avg_sq = torch.zeros_like(flat)
            self.steps = torch.zeros(M, 1, dtype=torch.float64)

    def step(self, grad, active):
        """Update the active models with their gradients ``grad`` (M, P).

        ``active`` is a bool tensor of shape (M,) (on the CPU) or None (all).
        """
        with torch.no_grad():
            if self.kind is torch.optim.SGD:
                self._sgd(grad, active)
            else:
                self._adam(grad, active)

    def state_for(self, m, model):
        """Model ``m``'s state as PyTorch's optimizer holds it, per parameter."""
        if self.kind is torch.optim.SGD:
            if self.buf is None or not bool(self.has_buf[m]):
                return [{"momentum_buffer": None} for _ in model.names]
            return [
                {"momentum_buffer": v[m].detach().clone()}
                for v in model.views(self.buf).values()
            ]
        step = torch.tensor(float(self.steps[m]), dtype=torch.float32)
        avg, sq = model.views(self.exp_avg), model.views(self.exp_avg_sq)
        return [
            {
                "step": step.clone().to(self.flat.device),
                "exp_avg": avg[name][m].detach().clone(),
                "exp_avg_sq": sq[name][m].detach().clone(),
            }
            for name in model.names
        ]

    @staticmethod
    def _keep(active, new, old):
        """``new`` where the model is active, ``old`` elsewhere, into ``old``."""
        if active is None:
            old.copy_(new)
        else:
            old.copy_(torch.where(active, new, old))

    def _adam(self, grad, active):
        p, dev = self.flat, self.flat.device
        a = None if active is None else active.view(-1, 1).to(dev)
        act64 = 1.0 if active is None else active.view(-1, 1).double()
        self.steps += act64
        steps = self.steps.clamp_min(1)
        # bias corrections in float64, as PyTorch computes them
        bc1 = 1 - self.beta1**steps
        bc2_sqrt = (1 - self.beta2**steps).sqrt()
        step_size = (self.lr / bc1).to(dev, torch.float32)
        bc2_sqrt = bc2_sqrt.to(dev, torch.float32)
        wd = self.weight_decay
        if self.kind is torch.optim.AdamW:
            decayed = p * (1 - self.lr.to(dev, torch.float32) * wd)
        else:
            decayed = p
            grad = grad + wd * p
        beta1 = self.beta1.to(dev, torch.float32)
        beta2 = self.beta2.to(dev, torch.float32)
        exp_avg = torch.lerp(self.exp_avg, grad, 1 - beta1)
        exp_avg_sq = self.exp_avg_sq * beta2 + (1 - beta2) * grad * grad
        denom = exp_avg_sq.sqrt() / bc2_sqrt + self.eps
        new_p = decayed - step_size * exp_avg / denom
        self._keep(a, exp_avg, self.exp_avg)
        self._keep(a, exp_avg_sq, self.exp_avg_sq)
        self._keep(a, new_p, p)

    def _sgd(self, grad, active):
        p, dev = self.flat, self.flat.device
        a = None if active is None else active.view(-1, 1).to(dev)
        grad = grad + self.weight_decay * p
        if bool((self.momentum != 0).any()):
            if self.buf is None:
                self.buf = torch.zeros_like(p)
            # the first step copies the gradient into the buffer, as PyTorch does
            buf = torch.where(
                self.has_buf,
                self.buf * self.momentum + (1 - self.dampening) * grad,
                grad,
            )
            self._keep(a, buf, self.buf)
            self.has_buf |= True if a is None else a
            use = self.momentum != 0
            d = grad + self.momentum * buf if self.nesterov else buf
            grad = torch.where(use, d, grad)
        new_p = p - self.lr.to(dev, torch.float32) * grad
        self._keep(a, new_p, p)

"""M modules of one architecture as one stacked functional model.

The parameters of all models live in one ``(M, P)`` tensor (model ``m``'s
parameters flattened in ``named_parameters`` order), so the optimizer updates
every model with a handful of element-wise operations. The forward pass views
that tensor as stacked parameters ``(M, *shape)`` and runs either

- batched matrix products (``torch.baddbmm``) for the built-in
  :class:`~skweighted.modules.MLP`, or
- ``torch.func.vmap`` over ``torch.func.functional_call`` for any other
  module (``randomness="different"``: each model draws its own dropout
  masks).
"""

import copy

import torch
from torch import nn

from ..modules import MLP


class StackedModel:
    """The stacked parameters of ``modules`` and their batched forward pass.

    Parameters
    ----------
    modules : list of torch.nn.Module
        Same architecture (same parameter names and shapes); their current
        parameters are the initial weights. They are not modified.
    device : torch.device
    """

    def __init__(self, modules, device):
        first = modules[0]
        names, shapes = [], []
        for name, p in first.named_parameters():
            names.append(name)
            shapes.append(p.shape)
        self.names, self.shapes = names, shapes
        self.numels = [s.numel() for s in shapes]
        rows = [
            torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in modules
        ]
        self.flat = torch.stack(rows).to(device=device, dtype=torch.float32)
        self.flat.requires_grad_(True)
        self.device = device
        self._template = first
        self._buffers = {
            name: torch.stack([dict(m.named_buffers())[name] for m in modules]).to(
                device
            )
            for name, _ in first.named_buffers()
        }
        self._forward = (
            self._mlp_forward if _is_plain_mlp(first) else self._vmap_forward
        )
        self._vmapped = None

    @property
    def n_models(self):
        return self.flat.shape[0]

    def views(self, flat=None):
        """Name -> stacked parameter ``(M, *shape)``, views into ``flat``."""
        flat = self.flat if flat is None else flat
        out, start = {}, 0
        for name, shape, n in zip(self.names, self.shapes, self.numels):
            out[name] = flat[:, start : start + n].view(flat.shape[0], *shape)
            start += n
        return out

    def __call__(self, X):
        """Logits ``(M, B, K)`` for the batches ``X`` of shape ``(M, B, ...)``."""
        return self._forward(X)

    # -- the built-in MLP: batched matrix products -----------------------------
    def _mlp_forward(self, X):
        params = self.views()
        h = X
        for name, layer in self._template.layers.named_children():
            if isinstance(layer, nn.Linear):
                W = params[f"layers.{name}.weight"]
                b = params.get(f"layers.{name}.bias")
                if b is None:
                    h = torch.bmm(h, W.transpose(1, 2))
                else:
                    h = torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2))
            elif isinstance(layer, nn.Dropout):
                h = nn.functional.dropout(h, layer.p, training=True)
            else:  # a parameter-free element-wise activation
                h = layer(h)
        return h

    # -- any module: vmap over functional_call --------------------------------
    def _vmap_forward(self, X):
        if self._vmapped is None:
            base = copy.deepcopy(self._template).to("meta")
            base.train()

            def one(params, buffers, x):
                return torch.func.functional_call(base, (params, buffers), (x,))

            self._vmapped = torch.func.vmap(one, randomness="different")
        return self._vmapped(self.views(), self._buffers, X)

    def state_dicts(self):
        """One ``state_dict``-shaped dict of CPU tensors per model."""
        flat = self.flat.detach().cpu()
        out = []
        for m in range(flat.shape[0]):
            state = {k: v[m].clone() for k, v in self.views(flat).items()}
            state.update({k: v[m].cpu().clone() for k, v in self._buffers.items()})
            out.append(state)
        return out


#: Activations that apply element-wise, so also to a stacked ``(M, B, H)`` batch.
_ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.ReLU6, nn.Hardswish,
    nn.Hardsigmoid, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Identity,
)  # fmt: skip


def _is_plain_mlp(module):
    """The built-in MLP made of Linear layers, Dropout and element-wise
    activations (anything else goes through ``vmap``)."""
    return type(module) is MLP and all(
        isinstance(layer, (nn.Linear, nn.Dropout, *_ELEMENTWISE))
        for layer in module.layers
    )

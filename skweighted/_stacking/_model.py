"""M modules of one architecture as one stacked functional model.

The parameters of all models live in one ``(M, P)`` tensor (model ``m``'s
parameters flattened in ``named_parameters`` order), so the optimizer updates
every model with a handful of element-wise operations. A step computes the
loss of the first ``n`` models (those still training) on their batches and
its gradient, ``(n, P)``, in one of two ways:

- the built-in :class:`~skweighted.modules.MLP` (Linear layers and the
  activations of :data:`_BACKWARD`): forward and backward written out as
  batched matrix products (``torch.baddbmm``), the activations' backward in
  place. Autograd costs more than the arithmetic of networks this small.
- a convolutional network built from the layers :mod:`._conv` knows (the
  built-in :class:`~skweighted.modules.CNN`, or a user's chain of Conv2d,
  BatchNorm2d, pooling, activations, flatten and Linear layers): the models
  side by side on the channel axis, grouped convolutions, with autograd;
- any other module: ``torch.func.vmap`` over ``torch.func.functional_call``,
  with autograd.

The loss of model ``m`` is ``sum_i c_i * CE(logits_i, y_i)`` over its batch,
with ``c`` the row weights already divided by the batch's normaliser.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..modules import MLP, as_float
from . import _conv, _layers
from ._criteria import StackedCriterion


class StackedModel:
    """The stacked parameters of ``modules`` and their loss and gradient.

    Parameters
    ----------
    modules : list of torch.nn.Module
        Same architecture (same parameter names and shapes); their current
        parameters are the initial weights. They are not modified.
    device : torch.device
    criterion : StackedCriterion, default=None
        The models' criteria; None is the built-in cross-entropy.
    keyed : bool, default=False
        Whether ``X`` is a dict of tensors, passed to ``forward`` as keyword
        arguments (always through ``vmap``).
    """

    def __init__(self, modules, device, criterion=None, keyed=False):
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
        self.device = device
        self.criterion = criterion or StackedCriterion([None], device)
        self._template = first
        self._buffers = {
            name: torch.stack([dict(m.named_buffers())[name] for m in modules]).to(
                device
            )
            for name, _ in first.named_buffers()
        }
        self.keyed = keyed
        plain = not keyed  # the built-in networks' own paths take one tensor
        self._kernel = (
            _MLPKernel(first, names) if plain and _is_plain_mlp(first) else None
        )
        layers = _conv.chain(first) if plain and self._kernel is None else None
        self._conv = None if layers is None else _conv.GroupedConvNet(layers)
        self._vmapped = None
        self._views = {}
        #: the rows and dropout noise of each step (:class:`_layers.Steps`)
        self.steps = None

    @property
    def n_models(self):
        return self.flat.shape[0]

    def reorder(self, order):
        """Put the model at position ``order[i]`` at position ``i``: its
        parameters, buffers, criterion and step inputs. In place, so views
        of :attr:`flat` (and the optimizer's) stay valid."""
        index = torch.as_tensor(order, device=self.flat.device)
        with torch.no_grad():
            for t in (self.flat, *self._buffers.values()):
                t.copy_(t.index_select(0, index.to(t.device)))
        self.criterion.reorder(index)
        if self.steps is not None:
            self.steps.reorder(order)

    def snapshot(self, m):
        """A copy of model ``m``'s parameters and buffers (a BatchNorm's
        running statistics), for :meth:`restore`."""
        return [t[m].clone() for t in (self.flat, *self._buffers.values())]

    def restore(self, m, snapshot):
        """Give model ``m`` the parameters and buffers of ``snapshot``."""
        with torch.no_grad():
            for t, saved in zip((self.flat, *self._buffers.values()), snapshot):
                t[m] = saved

    def views(self, flat=None):
        """Name -> stacked parameter ``(n, *shape)``, views into ``flat``."""
        flat = self.flat if flat is None else flat
        out, start = {}, 0
        for name, shape, n in zip(self.names, self.shapes, self.numels):
            out[name] = flat[:, start : start + n].view(flat.shape[0], *shape)
            start += n
        return out

    def loss_and_grad(self, X, y, c, step=None):
        """Losses ``(n,)`` and their gradient ``(n, P)`` of the first ``n``
        models on their batches.

        Parameters
        ----------
        X : Tensor of shape (n, B, ...), or a dict of them
        y : LongTensor of shape (n, B)
        c : Tensor of shape (n, B)
            Each row's weight over its batch's normaliser (0 for padding).

        The built-in MLP's gradient is written into the same tensor at every
        call with the same shapes: use it before the next call.
        """
        n = y.shape[0]
        if n not in self._views:  # the first n rows of flat, updated in place
            self._views = {n: self.views(self.flat[:n])}
        if self._kernel is not None:
            return self._kernel.loss_and_grad(self._views[n], X, y, c, self.criterion)
        params = {k: v.detach().requires_grad_() for k, v in self._views[n].items()}
        logits = self.logits(X, params, step)
        loss = (c * self.criterion.per_row(logits, y)).sum(1)
        grads = torch.autograd.grad(
            loss.sum(), list(params.values()), allow_unused=True
        )
        unused = [k for k, g in zip(params, grads) if g is None]
        if unused:  # a separate fit's optimizer would skip it: not the same
            raise ValueError(f"parameter {unused[0]!r} is not used by forward")
        return loss.detach(), torch.cat([g.reshape(n, -1) for g in grads], 1)

    def logits(self, X, params=None, step=None, models=None, training=True):
        """Logits ``(n, B, K)`` of the models of ``params`` (default: all);
        ``step``: the stack's step, whose rows and dropout noise
        :attr:`steps` gives (None: PyTorch's own layers, no dropout);
        ``models`` (an index tensor) says which models of the stack they are,
        when not the first ``n``; ``training=False``: as in eval mode (no
        dropout, BatchNorm on its running statistics)."""
        params = self.views() if params is None else params
        if self._kernel is not None:
            return self._kernel.forward(params, X)[-1]
        n = next(iter(params.values())).shape[0]
        buffers = {
            k: v[:n] if models is None else v[models] for k, v in self._buffers.items()
        }
        drawn = {}  # the step's dropout noise by layer name, and its rows
        if step is not None and self.steps is not None:
            drawn = self.steps.noise(step, n)
            valid = self.steps.valid(step, n)
            if valid is not None:
                drawn[_layers.VALID] = valid
        if self._conv is not None and (self._conv.images or X.ndim == 3):
            return self._conv(params, buffers, X, drawn, training)
        if self._vmapped is None:
            base = copy.deepcopy(self._template).to("meta")
            base.train()
            self._inputs = inputs = _layers.StepInputs()
            _layers.patch(base, inputs)
            keyed = self.keyed

            def one(params, buffers, x, step):
                inputs.noise, inputs.valid = step, step.get(_layers.VALID)
                args, kwargs = ((), x) if keyed else ((x,), None)
                return torch.func.functional_call(base, (params, buffers), args, kwargs)

            self._vmapped = torch.func.vmap(one, randomness="different")
        self._inputs.training = training
        return self._vmapped(params, buffers, X, drawn)

    def state_dicts(self):
        """One ``state_dict``-shaped dict of CPU tensors per model."""
        flat = self.flat.detach().cpu()
        out = []
        for m in range(flat.shape[0]):
            state = {k: v[m].clone() for k, v in self.views(flat).items()}
            state.update({k: v[m].cpu().clone() for k, v in self._buffers.items()})
            out.append(state)
        return out


_aten = torch.ops.aten

#: Activation -> (in place on the layer's output ``z``; in place on ``dh``,
#: the gradient of the activation's output ``h``, turning it into the
#: gradient of ``z``: autograd's own backward kernels, written into ``dh``).
_BACKWARD = {
    nn.ReLU: (
        lambda z, layer: z.clamp_min_(0),
        lambda dh, h, layer: _aten.threshold_backward.grad_input(
            dh, h, 0, grad_input=dh
        ),
    ),
    nn.LeakyReLU: (
        lambda z, layer: F.leaky_relu_(z, layer.negative_slope),
        lambda dh, h, layer: _aten.leaky_relu_backward.grad_input(
            dh, h, layer.negative_slope, True, grad_input=dh
        ),
    ),
    nn.Tanh: (
        lambda z, layer: z.tanh_(),
        lambda dh, h, layer: _aten.tanh_backward.grad_input(dh, h, grad_input=dh),
    ),
    nn.Sigmoid: (
        lambda z, layer: z.sigmoid_(),
        lambda dh, h, layer: _aten.sigmoid_backward.grad_input(dh, h, grad_input=dh),
    ),
}


class _MLPKernel:
    """Forward and backward of the built-in MLP for a stack, by hand."""

    def __init__(self, template, names):
        self.linear = []  # (weight name, bias name or None, activation or None)
        for name, layer in template.layers.named_children():
            if isinstance(layer, nn.Linear):
                bias = f"layers.{name}.bias" if layer.bias is not None else None
                self.linear.append([f"layers.{name}.weight", bias, None])
            elif type(layer) in _BACKWARD:
                self.linear[-1][2] = layer
        self.names = names
        self._work = {}

    def forward(self, params, X, last=True, work=None):
        """Every layer's output (activation applied in place), input first;
        ``last=False`` stops before the output layer. ``work``: tensors to
        write the hidden layers' outputs into."""
        # as MLP.forward: integers converted (uint8 scaled), samples flattened
        outs = [as_float(X).reshape(X.shape[0], X.shape[1], -1)]
        for i, (weight, bias, act) in enumerate(
            self.linear if last else self.linear[:-1]
        ):
            W = params[weight].transpose(1, 2)
            out = {} if work is None else {"out": work[i]}
            if bias is None:
                z = torch.bmm(outs[-1], W, **out)
            else:
                z = torch.baddbmm(params[bias].unsqueeze(1), outs[-1], W, **out)
            if act is not None:
                _BACKWARD[type(act)][0](z, act)
            outs.append(z)
        return outs

    def workspace(self, params, X):
        """The step's large tensors, kept from one step to the next while the
        shapes stay: each hidden layer's output and its gradient, ``(n, B,
        width)``, and the gradient ``(n, P)``. A fresh megabyte-sized
        temporary each step made glibc give the heap's top back and take it
        again, page by page: a quarter of the step's time in page faults."""
        n, B = X.shape[:2]
        key = (n, B, X.dtype, X.device)
        if key not in self._work:
            widths = [params[w].shape[1] for w, _, _ in self.linear[:-1]]
            n_params = sum(p[0].numel() for p in params.values())
            dtype = next(iter(params.values())).dtype  # X may be integers
            self._work = {
                key: {
                    "outs": [X.new_empty((n, B, h), dtype=dtype) for h in widths],
                    "grads": [X.new_empty((n, B, h), dtype=dtype) for h in widths],
                    "grad": X.new_empty((n, n_params), dtype=dtype),
                }
            }
        return self._work[key]

    def loss_and_grad(self, params, X, y, c, criterion):
        work = self.workspace(params, X)
        with torch.no_grad():
            outs = self.forward(params, X, last=False, work=work["outs"])
            h, (weight, bias, _) = outs[-1], self.linear[-1]
            # the logits as (n, K, B): with few classes, W @ h.T is several
            # times cheaper than h @ W.T, and so are the products below
            if bias is None:
                logits = torch.bmm(params[weight], h.transpose(1, 2))
            else:
                logits = torch.baddbmm(
                    params[bias].unsqueeze(2), params[weight], h.transpose(1, 2)
                )
            if criterion.cross_entropy:
                y, c = y.unsqueeze(1), c.unsqueeze(1)
                log_p = logits.log_softmax(1)  # as F.cross_entropy computes it
                loss = (c * log_p.gather(1, y)).sum((1, 2)).neg_()
                # d loss / d logits = c * (softmax - one_hot(y))
                dz = log_p.exp_().mul_(c)
                dz.scatter_add_(1, y, -c)
            else:  # any other criterion: autograd on the logits alone
                with torch.enable_grad():
                    z = logits.transpose(1, 2).requires_grad_()
                    loss = (c * criterion.per_row(z, y)).sum(1)
                    (dz,) = torch.autograd.grad(loss.sum(), z)
                loss, dz = loss.detach(), dz.transpose(1, 2)
            grads = {weight: torch.bmm(dz, h)}
            if bias is not None:
                grads[bias] = dz.sum(2)
            last = len(self.linear) - 2
            if last >= 0:
                dh = torch.bmm(
                    dz.transpose(1, 2), params[weight], out=work["grads"][last]
                )
            for i in range(last, -1, -1):
                weight, bias, act = self.linear[i]
                if act is not None:  # in place: dh becomes d loss / d z
                    _BACKWARD[type(act)][1](dh, outs[i + 1], act)
                grads[weight] = torch.bmm(dh.transpose(1, 2), outs[i])
                if bias is not None:
                    grads[bias] = dh.sum(1)
                if i:
                    dh = torch.bmm(dh, params[weight], out=work["grads"][i - 1])
            n = X.shape[0]
            grad = torch.cat(
                [grads[k].reshape(n, -1) for k in self.names], 1, out=work["grad"]
            )
        return loss, grad


def _plain_layer(layer):
    if isinstance(layer, nn.Dropout):
        return layer.p == 0
    if type(layer) is nn.LeakyReLU:
        return layer.negative_slope >= 0
    return isinstance(layer, nn.Identity) or type(layer) in _BACKWARD


def _is_plain_mlp(module):
    """The built-in MLP: Linear layers, each but the last followed by at most
    one activation of :data:`_BACKWARD` (Identity and ``Dropout(0)``
    anywhere); anything else goes through ``vmap``."""
    if type(module) is not MLP:
        return False
    seen_linear, activated = False, False
    for layer in module.layers:
        if isinstance(layer, nn.Linear):
            seen_linear, activated = True, False
        elif not _plain_layer(layer):
            return False
        elif type(layer) in _BACKWARD:
            if not seen_linear or activated:
                return False
            activated = True
    return seen_linear and not activated  # the logits come from a Linear

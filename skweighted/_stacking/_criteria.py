"""Each model's criterion in a stack: the unweighted loss of every row.

A stack weighs and reduces the rows itself (class weight of the row's label
x its sample weight, over the batch's normaliser, see
:mod:`~skweighted._stacking._engine`), exactly as every criterion of
:mod:`skweighted.losses` does (``_ClassWeightedLoss.forward``). What differs
between criteria is only the loss of one row, their ``per_sample_loss``:
:class:`StackedCriterion` computes it for ``n`` models at once. The models
of one stack share the criterion's class and settings (:func:`criterion_key`
tells stacks apart); what differs between them is in the criterion's
buffers (the class counts of a logit-adjusted loss, fold by fold, the cost
matrix), which ``torch.func.vmap`` maps over.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import MultiLabelBCELoss, WeightedCrossEntropyLoss
from ..losses._base import _ClassWeightedLoss

_STACKED = (_ClassWeightedLoss, MultiLabelBCELoss)
#: Buffers the stack applies itself (as row weights), not the criterion.
_WEIGHTS = ("weight",)


def reason(criterion):
    """Why a stack cannot compute ``criterion``'s loss (None: it can)."""
    if criterion is None or isinstance(criterion, _STACKED):
        return None
    return f"criterion {type(criterion).__name__}: its loss is not one a stack computes"


def criterion_key(criterion):
    """What models of one stack must share: the criterion's class and its
    settings other than buffers and ``normalization`` (the stack normalises
    each model's batch itself)."""
    if criterion is None:
        return None
    settings = {
        k: v
        for k, v in vars(criterion).items()
        if not k.startswith("_") and k not in ("training", "normalization")
    }
    return (type(criterion).__qualname__, repr(sorted(settings.items())))


class StackedCriterion:
    """The per-row losses of ``n`` models, each with its own criterion.

    Parameters
    ----------
    criteria : list of torch.nn.Module or None
        Per model, its criterion (same :func:`criterion_key`); ``None`` is
        :class:`~skweighted.losses.WeightedCrossEntropyLoss`.
    device : torch.device
    """

    def __init__(self, criteria, device):
        template = criteria[0]
        #: the built-in cross-entropy, whose gradient the MLP kernel writes out
        self.cross_entropy = template is None or (
            type(template) is WeightedCrossEntropyLoss
        )
        self.multilabel = isinstance(template, MultiLabelBCELoss)
        self._buffers, self._template, self._vmapped = {}, template, None
        if self.cross_entropy or self.multilabel:
            return
        names = [n for n, _ in template.named_buffers() if n not in _WEIGHTS]
        self._buffers = {
            n: torch.stack([dict(c.named_buffers())[n] for c in criteria]).to(device)
            for n in names
        }
        self._template = copy.deepcopy(template).to(device)
        self._template.weight = None

    def reorder(self, index):
        """Put model ``index[i]``'s buffers at position ``i``."""
        self._buffers = {
            n: v.index_select(0, index.to(v.device)) for n, v in self._buffers.items()
        }

    def per_row(self, logits, y, models=None):
        """Unweighted losses ``(n, B)`` of logits ``(n, B, K)`` and labels
        ``(n, B)`` (multi-label: ``(n, B * L)`` of logits ``(n, B, L)`` and
        entries ``(n, B * L)``) of the first ``n`` models, or of the models
        at the positions ``models`` (an index tensor)."""
        n, B = y.shape
        if self.multilabel:  # y: the entries of label_entries, 2 * j + y_ij
            target = (y % 2).to(logits.dtype)
            return F.binary_cross_entropy_with_logits(
                logits.reshape(n, -1), target, reduction="none"
            )
        if self.cross_entropy:
            return F.cross_entropy(
                logits.reshape(n * B, -1), y.reshape(-1), reduction="none"
            ).view(n, B)
        if not self._buffers:  # one criterion for all: no vmap needed
            flat = logits.reshape(n * B, -1)
            return self._template.per_sample_loss(flat, y.reshape(-1)).view(n, B)
        if self._vmapped is None:
            wrapper = _PerSample(self._template)

            def one(buffers, z, t):
                return torch.func.functional_call(wrapper, buffers, (z, t))

            self._vmapped = torch.func.vmap(one)
        buffers = {
            f"criterion.{k}": v[:n] if models is None else v[models.to(v.device)]
            for k, v in self._buffers.items()
        }
        return self._vmapped(buffers, logits, y)


class _PerSample(nn.Module):
    """A criterion's ``per_sample_loss`` as a module's forward (what
    ``functional_call`` runs)."""

    def __init__(self, criterion):
        super().__init__()
        self.criterion = criterion

    def forward(self, z, t):
        return self.criterion.per_sample_loss(z, t)


def label_entries(labels, w, valid):
    """A multi-label batch as entries: each (row, label) pair is weighed on
    its own, as :class:`~skweighted.losses.MultiLabelBCELoss` weighs it.

    Parameters
    ----------
    labels : LongTensor of shape (..., B, L)
        The 0/1 indicator rows.
    w, valid : Tensor of shape (..., B)
        Each row's weight and whether it is a real row.

    Returns
    -------
    entries : LongTensor of shape (..., B * L)
        ``2 * j + y_ij``: the index of the entry's weight in the ``(L, 2)``
        label weights, flattened.
    w, valid : Tensor of shape (..., B * L)
        The row's weight and flag, repeated for each of its labels.
    """
    L = labels.shape[-1]
    entries = labels + 2 * torch.arange(L, device=labels.device)
    per_entry = [t.unsqueeze(-1).expand(*t.shape, L).flatten(-2) for t in (w, valid)]
    return entries.flatten(-2), *per_entry

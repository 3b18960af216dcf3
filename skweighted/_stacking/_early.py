"""Early stopping inside a stack: each model its own validation rows, score,
patience and best weights.

After every step, the models whose epoch ended at that step (and that have
not stopped) are scored on their validation rows: only their parameter rows
are gathered, so the cost follows the models that need it. The score is the
loss the separate fit's net logs as ``valid_loss``: the weighted mean
``sum(w * l) / sum(w)`` of each evaluation batch (``w`` = class weight of
the epoch x ``sample_weight``), averaged over the batches by their sizes.
The rule is :class:`skweighted._early_stopping.Patience`, the one a separate
fit applies. A model that stops keeps its optimizer state of that moment and
its best epoch's parameters; the stack ends when its last model stops.
"""

from collections import defaultdict

import torch
import torch.nn.functional as F

from .._early_stopping import Patience
from ._rows import take


class EarlyStops:
    """The models of a chunk that stop early (those whose job has ``valid``).

    Parameters
    ----------
    jobs : list of StackJob
        In stack order.
    steps : list of list of int
        Per model, the steps of each of its epochs (``PackedSchedule.steps``).
    X, y, sample_weight : Tensor
        The stack's shared rows (a dict of tensors for a dict ``X``), labels
        and row weights (or None), on its device.
    class_weight : Tensor of shape (M, S, K) or None
        Per model and step, its class weights (an epoch's validation loss
        takes those of the epoch's last step, as the separate fit's
        criterion holds the epoch's weights when it scores).
    """

    def __init__(self, jobs, steps, X, y, sample_weight, class_weight):
        self.patience = {
            m: Patience(j.n_iter_no_change, j.tol)
            for m, j in enumerate(jobs)
            if j.valid is not None
        }
        self.n_models = len(jobs)
        self.ends = defaultdict(list)  # global step -> [(model, epoch)]
        self.last_step = {}  # model -> the last step of each of its epochs
        for m in self.patience:
            s, self.last_step[m] = 0, []
            for e, n in enumerate(steps[m]):
                s += n
                self.ends[s - 1].append((m, e))
                self.last_step[m].append(s - 1)
        device = y.device
        self.rows, self.share = {}, {}
        for m in self.patience:
            job = jobs[m]
            rows = torch.as_tensor(job.valid, dtype=torch.long) + job.offset
            rows = rows.to(device)
            # each evaluation batch's share of the epoch's valid_loss
            size = len(rows) if job.eval_batch_size == -1 else job.eval_batch_size
            batch = torch.arange(len(rows), device=device) // size
            counts = torch.bincount(batch).to(torch.float32)
            self.rows[m], self.share[m] = rows, (batch, counts / len(rows))
        self.X, self.y = X, y
        self.sample_weight, self.class_weight = sample_weight, class_weight
        self.best = {}  # model -> its best parameter row
        self.stopped = {}  # model -> (epochs trained, optimizer state then)
        self.losses = defaultdict(list)  # model -> validation loss per epoch

    def done(self):
        """Whether every model of the chunk stops early and has stopped."""
        return len(self.stopped) == self.n_models

    def after_step(self, step, model, opt):
        """Score the models whose epoch ended at global ``step``."""
        pending = [(m, e) for m, e in self.ends.get(step, ()) if m not in self.stopped]
        if not pending:
            return
        for (m, e), loss in zip(pending, self._losses(model, pending)):
            self.losses[m].append(loss)
            improved, stop = self.patience[m].update(-loss)
            if improved:
                self.best[m] = model.flat[m].detach().clone()
            if stop:
                self.stopped[m] = (e + 1, opt.state_for(m))

    def _coefficients(self, m, e):
        """Row ``i``'s factor of model ``m``'s validation loss in epoch ``e``."""
        rows = self.rows[m]
        w = torch.ones(len(rows), device=rows.device)
        if self.class_weight is not None:
            w = w * self.class_weight[m, self.last_step[m][e]][self.y[rows]]
        if self.sample_weight is not None:
            w = w * self.sample_weight[rows]
        batch, share = self.share[m]
        total = torch.zeros(len(share), device=w.device).index_add_(0, batch, w)
        tiny = torch.finfo(torch.float32).tiny
        return w / total.clamp_min(tiny)[batch] * share[batch]

    def _losses(self, model, pending):
        models = [m for m, _ in pending]
        width = max(len(self.rows[m]) for m in models)
        device = self.y.device
        rows = torch.zeros(len(models), width, dtype=torch.long, device=device)
        coef = torch.zeros(len(models), width, device=device)
        for i, (m, e) in enumerate(pending):
            n = len(self.rows[m])
            rows[i, :n] = self.rows[m]
            coef[i, :n] = self._coefficients(m, e)
        index = torch.as_tensor(models, device=model.flat.device)
        with torch.no_grad():
            params = model.views(model.flat.index_select(0, index))
            logits = model.logits(take(self.X, rows), params, models=index)
            per_row = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), self.y[rows].reshape(-1),
                reduction="none",
            ).view(len(models), width)  # fmt: skip
            return (coef * per_row).sum(1).tolist()

    def finish(self, m, n_epochs):
        """Model ``m``'s epochs trained and their validation losses (a model
        that never stopped trained all ``n_epochs``)."""
        epochs = self.stopped[m][0] if m in self.stopped else n_epochs
        return epochs, self.losses[m][:epochs]

"""Early stopping inside a stack: each model its own validation rows, score,
patience and best weights.

After every step, the models whose epoch ended at that step (and that have
not stopped) are scored on their validation rows: only their parameter rows
are gathered, so the cost follows the models that need it. The score is the
loss the separate fit's net logs as ``valid_loss``: its criterion's loss of
each evaluation batch, the weighted mean ``sum(w * l) / sum(w)`` (or
``sum(w * l) / n`` for ``normalization="mean"``; ``w`` = class weight of the
epoch x ``sample_weight``, per label for a multi-label ``y``), averaged over
the batches by their sizes, with the module as in eval mode.
The rule is :class:`skweighted._early_stopping.Patience`, the one a separate
fit applies. A model that stops keeps its optimizer state of that moment and
its best epoch's parameters; the engine then retires it from the stack
(:meth:`~._schedule.PackedSchedule.retire`), so it costs nothing more, and
the stack ends when its last model stops.
"""

from collections import defaultdict

import numpy as np
import torch
from sklearn.metrics import get_scorer

from .._early_stopping import Patience
from .._net import classifier_tags
from ..losses._base import decide, proba_function
from ._criteria import label_entries
from ._rows import take
from ._schedule import EpochEnds, new_positions


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
        self.ends = EpochEnds(steps, self.patience)
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
        self.mean = {m: jobs[m].normalization == "mean" for m in self.patience}
        self.X, self.y = X, y
        self.sample_weight, self.class_weight = sample_weight, class_weight
        self.best = {}  # model -> its best epoch's state (StackedModel.snapshot)
        self.stopped = {}  # model -> (epochs trained, optimizer state then)
        self.losses = defaultdict(list)  # model -> validation loss per epoch
        self.scores = defaultdict(list)  # model -> score per epoch (higher: better)
        self.scoring = {m: jobs[m].scoring for m in self.patience}
        self.criteria = {m: jobs[m].criterion for m in self.patience}

    def reorder(self, order, class_weight):
        """Follow the stack's new order (position ``i`` holds the model that
        was at ``order[i]``) and its reordered ``class_weight``."""
        new = new_positions(order)
        for name in ("patience", "rows", "share", "best", "stopped", "losses",
                     "scores", "mean", "scoring", "criteria"):  # fmt: skip
            setattr(self, name, {new[m]: v for m, v in getattr(self, name).items()})
        self.losses = defaultdict(list, self.losses)
        self.scores = defaultdict(list, self.scores)
        self.ends.reorder(new)
        self.class_weight = class_weight

    def done(self):
        """Whether every model of the chunk stops early and has stopped."""
        return len(self.stopped) == self.n_models

    def after_step(self, step, model, opt):
        """Score the models whose epoch ended at global ``step``."""
        pending = [(m, e) for m, e in self.ends.at(step) if m not in self.stopped]
        if not pending:
            return
        losses, logits = self._losses(model, pending)
        for i, ((m, e), loss) in enumerate(zip(pending, losses)):
            self.losses[m].append(loss)
            score = -loss if self.scoring[m] == "loss" else self._score(m, logits[i])
            self.scores[m].append(score)
            improved, stop = self.patience[m].update(score)
            if improved:
                self.best[m] = model.snapshot(m)
            if stop:
                self.stopped[m] = (e + 1, opt.state_for(m))

    def _coefficients(self, m, e):
        """The factor of each loss (a row's; a multi-label row's, one per
        label) in model ``m``'s validation loss of epoch ``e``: its weight
        over its evaluation batch's normaliser, times the batch's share."""
        rows = self.rows[m]
        batch, share = self.share[m]
        labels = self.y[rows]
        w = torch.ones(len(rows), device=rows.device)
        if self.sample_weight is not None:
            w = w * self.sample_weight[rows]
        if labels.ndim > 1:  # multi-label: a loss per (row, label)
            labels, w, _ = label_entries(labels, w, w)
            batch = batch.repeat_interleave(self.y.shape[1])
        if self.class_weight is not None:
            w = w * self.class_weight[m, self.ends.last_step[m][e]][labels]
        if self.mean[m]:  # normalization="mean": the number of losses
            total = torch.bincount(batch, minlength=len(share)).to(w.dtype)
        else:
            total = torch.zeros(len(share), device=w.device).index_add_(0, batch, w)
        tiny = torch.finfo(torch.float32).tiny
        return w / total.clamp_min(tiny)[batch] * share[batch]

    def _losses(self, model, pending):
        models = [m for m, _ in pending]
        width = max(len(self.rows[m]) for m in models)
        device = self.y.device
        rows = torch.zeros(len(models), width, dtype=torch.long, device=device)
        for i, m in enumerate(models):
            rows[i, : len(self.rows[m])] = self.rows[m]
        targets = self.y[rows]
        if targets.ndim > 2:  # multi-label: the entries the criterion reads
            targets = label_entries(targets, rows, rows)[0]
        coef = torch.zeros(targets.shape, device=device)
        for i, (m, e) in enumerate(pending):
            c = self._coefficients(m, e)
            coef[i, : len(c)] = c  # the padding's losses count 0
        index = torch.as_tensor(models, device=model.flat.device)
        with torch.no_grad():
            params = model.views(model.flat.index_select(0, index))
            logits = model.logits(
                take(self.X, rows), params, models=index, training=False
            )
            losses = model.criterion.per_row(logits, targets, models=index)
            return (coef * losses).sum(1).tolist(), logits

    def _score(self, m, logits):
        """Model ``m``'s scorer on its validation rows, from their ``logits``
        (padded), through the predictions its separate net would give."""
        rows = self.rows[m]
        criterion = self.criteria[m]
        proba = proba_function(criterion)(logits[: len(rows)].cpu()).numpy()
        y = self.y[rows].cpu().numpy()
        scorer = get_scorer(self.scoring[m])
        return float(scorer(_Predictions(proba, criterion), np.empty((len(y), 0)), y))

    def finish(self, m, n_epochs):
        """Model ``m``'s epochs trained, their validation losses and scores (a
        model that never stopped trained all ``n_epochs``)."""
        epochs = self.stopped[m][0] if m in self.stopped else n_epochs
        return epochs, self.losses[m][:epochs], self.scores[m][:epochs]


class _Predictions:
    """What a scikit-learn scorer reads of a classifier, from one model's
    validation probabilities: the net's ``predict_proba`` and ``predict``
    (see :class:`skweighted._net.WeightedNet`), on the encoded labels."""

    def __init__(self, proba, criterion):
        self.proba, self.criterion = proba, criterion
        self.classes_ = np.arange(proba.shape[1])

    def predict_proba(self, X):
        return self.proba

    def predict(self, X):
        return decide(self.criterion, self.proba)

    def __sklearn_tags__(self):
        return classifier_tags()

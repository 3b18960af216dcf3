"""Train M models of one architecture together.

The inputs are plain: the shared rows ``X, y`` (and their
``sample_weight``), and per model a :class:`StackJob` (its initial module,
its row order per epoch, its class weights, its optimizer settings and batch
size). Folds, over- and under-sampling and class-balanced sampling are all
just row orders; SMOTE's synthetic rows are rows of the shared data that only
one model's orders visit. Each model's loss per
batch is the weighted mean ``sum(w * l) / sum(w)`` of its rows (``w`` = class
weight of the row's label x the row's ``sample_weight``), as
:class:`~skweighted.losses.WeightedCrossEntropyLoss` computes it, or
``sum(w * l) / n`` for ``normalization="mean"``.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs

from . import _layers, _memory, _rows
from ._criteria import StackedCriterion, label_entries
from ._early import EarlyStops
from ._lr import Plateaus
from ._model import StackedModel
from ._optim import StackedOptimizer, settings
from ._schedule import PackedSchedule, epoch_lengths, step_counts


@dataclass
class StackJob:
    """One model of a stack.

    Attributes
    ----------
    module : torch.nn.Module
        The network with its initial weights (not modified).
    orders : list of LongTensor, or EpochOrders
        Per epoch, the rows of the shared data in batch order; a multiset
        (oversampling repeats rows), a subset (a fold, undersampling) or any
        sequence. The number of epochs is ``len(orders)``. An
        :class:`~skweighted._batching.EpochOrders` draws each epoch when the
        stack reads it.
    batch_size : int
    optimizer_kwargs : dict
        Keyword arguments of the optimizer, ``lr`` included.
    class_weight : Tensor of shape (K,), (n_epochs, K) or (n_steps, K), or None
        Class weights, or one row per epoch (a deferred schedule), or one row
        per step (``per_step``: weights from each batch's own counts);
        ``None`` weighs every class 1.
    per_step : bool
        Whether ``class_weight`` has one row per step.
    criterion : torch.nn.Module or None
        Its criterion (see :mod:`~skweighted._stacking._criteria`); ``None``
        is the built-in weighted cross-entropy.
    seed : int or None
        Its fit's seed, which its dropout noise is drawn from (see
        :mod:`skweighted._dropout`).
    schedule : list of dict or None
        Per step, the optimizer settings its learning-rate schedule gives
        (see :mod:`~skweighted._stacking._lr`); None: ``optimizer_kwargs``
        throughout.
    normalization : {"weighted_mean", "mean"}
    offset : int
        Added to every row of ``orders``: where this model's data starts in
        the shared rows (0 by default).
    valid : LongTensor or None
        Early stopping: the rows (of this model's data, like ``orders``) its
        validation loss is measured on after every epoch; it stops as its
        separate fit does (see :mod:`._early`). ``orders`` then hold the
        most epochs.
    scoring : str
        Early stopping: ``'loss'`` or the name of the scikit-learn scorer its
        validation rows are scored with.
    n_iter_no_change, tol : int, float
        The patience rule of early stopping.
    eval_batch_size : int
        The evaluation batch size of the separate fit (-1: all rows).
    plateau : tuple or None
        ``(monitor, kwargs)`` of its ``ReduceLROnPlateau`` schedule (see
        :class:`~._lr.Plateaus`), or None.
    """

    module: torch.nn.Module
    orders: list
    batch_size: int
    optimizer_kwargs: dict
    class_weight: torch.Tensor | None = None
    normalization: str = "weighted_mean"
    offset: int = 0
    per_step: bool = False
    criterion: torch.nn.Module | None = None
    seed: int | None = None
    schedule: list | None = None
    valid: torch.Tensor | None = None
    scoring: str = "loss"
    n_iter_no_change: int = 0
    tol: float = 0.0
    eval_batch_size: int = -1
    plateau: tuple | None = None


@dataclass
class StackResult:
    """What one model of a stack learned.

    Attributes
    ----------
    state_dict : dict
        Its trained parameters and buffers (CPU tensors).
    batch_losses : list of list of float
        Per epoch, the loss of each batch.
    batch_sizes : list of list of int
        Per epoch, the rows of each batch.
    epoch_durations : list of float
        Per epoch, its share of the stack's wall time: each of its steps
        counts the time of the window of :data:`WINDOW` steps it belongs to
        (on a GPU, until its kernels finished), over the window's steps and
        the models that took them together.
    optimizer_state : list of dict
        Per parameter (in ``parameters()`` order), the state PyTorch's
        optimizer would hold after the same steps.
    valid_losses : list of float or None
        Early stopping: the validation loss of every epoch trained (the
        epochs are those of ``batch_losses``; ``state_dict`` holds the best
        epoch's parameters).
    valid_scores : list of float or None
        Early stopping: the score of every epoch trained (higher is better:
        the negated validation loss, or the scorer's).
    n_valid : int
        Early stopping: the number of validation rows.
    """

    state_dict: dict
    batch_losses: list = field(default_factory=list)
    batch_sizes: list = field(default_factory=list)
    epoch_durations: list = field(default_factory=list)
    optimizer_state: list = field(default_factory=list)
    valid_losses: list | None = None
    valid_scores: list | None = None
    n_valid: int = 0


def train_stack(
    jobs,
    X,
    y,
    sample_weight=None,
    *,
    optimizer=torch.optim.Adam,
    device="cpu",
    memory_budget=None,
    n_jobs=None,
    progress=None,
):
    """Train every job on ``X, y``, as many together as the budget allows.

    Parameters
    ----------
    jobs : list of StackJob
        Same architecture and optimizer class.
    X : Tensor or ndarray of shape (n_rows, ...), or a dict of them
        The shared rows: floats (trained as float32), or integers and
        booleans kept as they are (token ids, ``uint8`` images), which the
        module converts itself; a dict (each array with the same rows, each
        dtype kept by the same rule) goes to ``forward`` as keyword
        arguments.
    y : Tensor or ndarray of shape (n_rows,) or (n_rows, L)
        Their labels, encoded ``0..K-1``, or a multi-label indicator matrix
        (each job's class weights then hold ``(L, 2)`` flattened, see
        :func:`~skweighted._stacking._criteria.label_entries`).
    sample_weight : Tensor or ndarray of shape (n_rows,), default=None
        A weight per row, multiplied by the class weight of its label.
    optimizer : type, default=torch.optim.Adam
    device : str or torch.device, default="cpu"
    memory_budget : int or None, default=None
        Bytes the chunks training at once may use together (each worker's
        chunk its share); ``None`` is
        :func:`~skweighted._stacking._memory.default_budget`.
    n_jobs : int or None, default=None
        Chunks run through :class:`joblib.Parallel` (so a Dask backend spreads
        them over a cluster); with more than one worker the stack is split
        into at least as many chunks as workers (while there are models for
        them), so that every worker trains a share.
    progress : callable, default=None
        Called as ``progress(epoch, n_epochs)`` while the chunks train in
        this process (one worker): the epoch reached by the longest model
        of the chunk, after each window of steps.

    Returns
    -------
    results : list of StackResult
        In the order of ``jobs``; the results do not depend on the chunking.
    """
    device = torch.device(device)
    X = _rows.each(X, lambda a: _rows.as_input(_tensor(a, None)))
    y = _tensor(y, torch.long)
    sample_weight = (
        None if sample_weight is None else _tensor(sample_weight, torch.float32)
    )
    n_chunks = len(plan_chunks(jobs, X, device, memory_budget, n_jobs))
    # dealt out in turn by number of steps: chunks of equal work
    order = sorted(
        range(len(jobs)), key=lambda m: -step_counts(jobs[m].orders, jobs[m].batch_size)
    )
    dealt = [order[i::n_chunks] for i in range(n_chunks)]
    chunks = [[jobs[m] for m in part] for part in dealt]
    args = (X, y, sample_weight, optimizer, device)
    if len(chunks) == 1 or _workers(n_jobs) == 1:
        parts = [train_chunk(c, *args, progress=progress) for c in chunks]
    else:
        parts = Parallel(n_jobs=n_jobs)(delayed(train_chunk)(c, *args) for c in chunks)
    results = [None] * len(jobs)
    for part, out in zip(dealt, parts):
        for m, result in zip(part, out):
            results[m] = result
    return results


def _tensor(a, dtype):
    if isinstance(a, torch.Tensor):
        return a if dtype is None else a.to(dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def stack_bytes(jobs, X):
    """Estimated bytes of one chunk holding all ``jobs``."""
    return sum(_model_bytes(jobs, X)[0])


def _model_bytes(jobs, X):
    """Estimated bytes each of ``jobs`` adds to a stack of them all, and the
    bytes of one model's largest activation."""
    module = jobs[0].module
    n_params = sum(p.numel() for p in module.parameters())
    width = max(j.batch_size for j in jobs)
    device = next(module.parameters()).device  # where the recorded net put it
    sample = _rows.each(X, lambda a: _tensor(a[:2], None).to(device))  # ints stay
    activation, largest = _memory.activation_bytes(module, sample, width)
    per_model = [
        _memory.bytes_per_model(
            n_params,
            activation,
            step_counts(j.orders, j.batch_size),
            width,
            WINDOW,
            max(epoch_lengths(j.orders), default=0),
        )
        for j in jobs
    ]
    return per_model, largest


def plan_chunks(jobs, X, device, memory_budget=None, n_jobs=None):
    """The chunk sizes that keep the chunks training at once (one per worker
    of ``n_jobs``) under ``memory_budget`` bytes together, and give each
    worker one at least (when there are enough jobs); on a CPU, a
    convolutional network's chunks keep their largest activation under
    :data:`_memory.CPU_CONV_ACTIVATION`."""
    budget = _memory.default_budget(device) if memory_budget is None else memory_budget
    per_model, largest = _model_bytes(jobs, X)
    cap = _memory.max_models(jobs[0].module, largest, device)
    workers = _workers(n_jobs)
    return _memory.chunk_sizes(
        len(jobs), max(per_model), budget // workers, workers, max_per_chunk=cap
    )


def _workers(n_jobs):
    return 1 if n_jobs in (None, 1) else effective_n_jobs(n_jobs)


def _class_weights(jobs, steps, n_steps, n_classes, device):
    """``(M, S, K)`` class weights of every model's steps (``steps``: per
    model, its steps per epoch), or None when no job has any."""
    if all(j.class_weight is None for j in jobs):
        return None
    cw = torch.ones(len(jobs), n_steps, n_classes)
    for m, j in enumerate(jobs):
        if j.class_weight is not None:
            w = torch.as_tensor(j.class_weight, dtype=torch.float32)
            if w.ndim == 1:
                w = w.expand(len(steps[m]), -1)
            if not j.per_step:  # one row per epoch: repeated over its steps
                w = w[: len(steps[m])].repeat_interleave(
                    torch.tensor(steps[m], dtype=torch.long), dim=0
                )
            cw[m, : len(w), : w.shape[-1]] = w[:n_steps]
    return cw.to(device)


#: Steps whose batch schedule is laid out at once (row indices, labels and
#: weights of every model), so the step loop only slices.
WINDOW = 32


def train_chunk(jobs, X, y, sample_weight, optimizer, device, progress=None):
    """Train ``jobs`` as one stack; see :func:`train_stack`."""
    device = torch.device(device)
    per_model = [settings(optimizer, j.optimizer_kwargs, device) for j in jobs]
    totals = [step_counts(j.orders, j.batch_size) for j in jobs]
    # most steps first (those still training are a prefix), then models with
    # the same optimizer settings side by side (one optimizer call each)
    perm = sorted(
        range(len(jobs)),
        key=lambda m: (-totals[m], repr(sorted(per_model[m].items()))),
    )
    jobs, per_model = [jobs[m] for m in perm], [per_model[m] for m in perm]
    X, y = _rows.each(X, lambda t: t.to(device)), y.to(device)
    sw = None if sample_weight is None else sample_weight.to(device)
    sched = PackedSchedule(
        [j.orders for j in jobs], [j.batch_size for j in jobs], [j.offset for j in jobs]
    )
    criterion = StackedCriterion([j.criterion for j in jobs], device)
    model = StackedModel(
        [j.module for j in jobs], device, criterion, keyed=isinstance(X, dict)
    )
    opt = StackedOptimizer(model, optimizer, per_model, [j.schedule for j in jobs])
    n_classes = max(
        [int(y.max()) + 1]
        + [j.class_weight.shape[-1] for j in jobs if j.class_weight is not None]
    )
    cw = _class_weights(jobs, sched.steps, sched.n_steps, n_classes, device)
    mean = torch.tensor([j.normalization == "mean" for j in jobs], device=device)
    any_mean = bool(mean.any())
    tiny = torch.finfo(torch.float32).tiny
    n_models, n_steps = len(jobs), sched.n_steps
    losses = torch.zeros(n_models, n_steps, device=device)
    sizes = torch.zeros(n_models, n_steps, dtype=torch.int32)
    model.steps = _layers.Steps(
        jobs[0].module, _rows.take(X, slice(2)), [j.seed for j in jobs],
        sched.steps, sizes, sched.width, device,
    )  # fmt: skip
    early = None
    if any(j.valid is not None for j in jobs):
        early = EarlyStops(jobs, sched.steps, X, y, sw, cw)
    plateaus = None
    if any(j.plateau is not None for j in jobs):
        plateaus = Plateaus(jobs, sched.steps, optimizer)
    # per step, each active model's share of its time (of its window's time:
    # timing each step on a GPU would need a synchronisation each)
    shares = np.zeros(n_steps)
    start = 0
    while start < n_steps:
        a = sched.n_active(start)
        stopping = set() if early is None else {m for m in early.stopped if m < a}
        if stopping:  # retired: behind the models still training, no more cost
            order = sched.retire(stopping, start)
            model.reorder(order)
            opt.reorder(order)
            sizes.copy_(sizes[order])
            losses, mean, cw = (_take(t, order) for t in (losses, mean, cw))
            early.reorder(order, cw)
            if plateaus is not None:
                plateaus.reorder(order)
            jobs, perm = [jobs[m] for m in order], [perm[m] for m in order]
            a = sched.n_active(start)
        if a == 0:
            break  # the stack ends when its last model stops
        stop = sched.window_end(start, WINDOW)
        idx = sched.window(start, stop, a)[0].to(device)
        valid = idx >= 0
        sizes[:a, start:stop] = valid.sum(-1).cpu().to(torch.int32)
        idx = idx.clamp_min(0)
        labels = y[idx]
        w = valid.to(torch.float32)
        if sw is not None:
            w = w * sw[idx]
        if labels.ndim > idx.ndim:  # multi-label: a weight per (row, label)
            labels, w, valid = label_entries(labels, w, valid)
        if cw is not None:
            w = w * cw[:a, start:stop].gather(2, labels)  # each step's weights
        denom = w.sum(-1).clamp_min(tiny)
        if any_mean:
            counts = valid.sum(-1).to(torch.float32).clamp_min(1)
            denom = torch.where(mean[:a, None], counts, denom)
        c = w / denom.unsqueeze(-1)
        # step-major, so that each step's slices are contiguous views
        idx, labels, c = (t.transpose(0, 1).contiguous() for t in (idx, labels, c))
        # each step's rows go into one tensor (see _MLPKernel.workspace)
        gather = _rows.gather(X, a, idx.shape[-1])
        began = time.perf_counter()
        for t in range(stop - start):
            Xb = gather(idx[t].view(-1))
            loss, grad = model.loss_and_grad(Xb, labels[t], c[t], start + t)
            opt.step(grad, a)
            # copied at once: small tensors kept alive between the steps'
            # large temporaries doubled the resident memory (malloc cannot
            # give the heap back)
            losses[:a, start + t] = loss
            if early is not None:
                early.after_step(start + t, model, opt)
            if plateaus is not None:
                plateaus.after_step(start + t, losses, sizes, early, opt)
        if device.type == "cuda":  # the window's kernels have run, not just launched
            torch.cuda.synchronize(device)
        shares[start:stop] = (time.perf_counter() - began) / ((stop - start) * a)
        if progress is not None:  # the longest model's epoch (jobs[0]: most steps)
            n_epochs = len(jobs[0].orders)
            progress(math.ceil(n_epochs * stop / max(n_steps, 1)), n_epochs)
        start = stop
    results = _results(sched.steps, losses.cpu(), sizes, shares, model, opt, early)
    out = [None] * n_models
    for m, result in zip(perm, results):
        out[m] = result
    return out


def _take(t, order):
    """The rows ``order`` of a per-model tensor (None stays None)."""
    return None if t is None else t[torch.as_tensor(order, device=t.device)]


def _results(steps, losses, sizes, shares, model, opt, early=None):
    """Per model (in stack order), its :class:`StackResult`; a model that
    stopped early has its epochs until then, its best epoch's parameters and
    its optimizer's state when it stopped."""
    stops = {} if early is None else early.patience
    for m in stops:
        if m in early.best:
            model.restore(m, early.best[m])
    results = []
    for m, (model_steps, state) in enumerate(zip(steps, model.state_dicts())):
        result = StackResult(state_dict=state, optimizer_state=opt.state_for(m))
        if m in stops:
            n_epochs, result.valid_losses, result.valid_scores = early.finish(
                m, len(model_steps)
            )
            result.n_valid = len(early.rows[m])
            if m in early.stopped:
                result.optimizer_state = early.stopped[m][1]
            model_steps = model_steps[:n_epochs]
        s = 0
        for t in model_steps:
            result.batch_losses.append(losses[m, s : s + t].tolist())
            result.batch_sizes.append(sizes[m, s : s + t].tolist())
            result.epoch_durations.append(float(shares[s : s + t].sum()))
            s += t
        results.append(result)
    return results

"""Collect the fits of a search, train the stackable ones together, hand
each result back to the fit that asks for it.

A search runs its fits twice. First under :meth:`Session.recording`: each
``WeightedNeuralNetClassifier.fit`` prepares its net exactly as it would
(validation, labels, class weights, module initialised under its seed, the
row order of every epoch) and, instead of training, leaves a record keyed by
a fingerprint of everything the training depends on (data, labels, weights,
settings, seed). Identical fits leave one record. Then :meth:`Session.train`
trains every stackable record in stacks. Then the search runs its ordinary
code under :meth:`Session.replaying`: each fit prepares its net again and, if
a trained record has its fingerprint, loads the trained weights and history
instead of training, in whatever order the fits come. A fit without a
trained record (its data or settings differ from any recorded fit, or it has
a reason not to stack) trains separately, and the report says why.
"""

import contextlib
import copy
import functools
import hashlib
import math
import time
import warnings
from collections import Counter, defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np
import torch
from joblib import parallel_config

from .. import _net
from .._compat import active_backend
from ..class_weight import scheme_weights
from . import _eligibility, _lr
from ._criteria import criterion_key
from ._engine import StackJob, plan_chunks, stack_bytes, train_stack
from ._writeback import write_back

_ACTIVE = ContextVar("skweighted_stacking_session", default=None)


def active_session():
    """The session the current fits belong to, or None."""
    return _ACTIVE.get()


@dataclass
class FitRecord:
    """One distinct fit seen while recording."""

    fingerprint: str
    reason: str | None = None
    group: tuple | None = None
    block: str | None = None
    job: StackJob | None = None
    result: object = None
    uses: int = 0  # fits of the recording pass that share it


def _digest(*arrays):
    h = hashlib.sha1()
    for a in arrays:
        if a is None:
            h.update(b"none")
        else:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a)  # the buffer itself: no copy
    return h.hexdigest()


def _fingerprint(net, plan, data):
    """What the training of the prepared ``net`` depends on, as a digest: two
    fits with the same fingerprint train the same model. ``data`` is the
    digest of its ``X, y, sample_weight``."""
    tensors = [*net.module_.parameters(), *net.module_.buffers()]
    settings = repr(
        (
            type(net.module_),
            repr(net.module_),  # the architecture, activations included
            sorted(net.get_params_for("module").items(), key=str),
            net.lr,
            net.max_epochs,
            net.batch_size,
            str(net.device),
            len(net.history),
            net.optimizer,
            sorted(net.get_params_for("optimizer").items(), key=str),
            repr(net.criterion_),  # its type and settings (normalization)
            sorted(net.get_params_for("criterion").items(), key=str),
            sorted(net.get_params_for("iterator_train").items(), key=str),
            plan.seed,
            plan.deferred_start,
            plan.weighted,
            plan.per_batch,
            # what makes a fit train separately must tell it apart too: a fit
            # with callbacks must never load the weights of one without
            _kinds(net.callbacks),
            _callback_settings(net.callbacks),  # an LRScheduler's policy
            _kinds([net.train_split]),
            [(str(t.dtype), tuple(t.shape)) for t in tensors],
        )
    ).encode()
    validation = plan.validation
    if validation is not None:  # its rows and rule decide what it learns too
        settings += repr(
            (validation.scoring, validation.n_iter_no_change, validation.tol)
        ).encode()
    return _digest(
        np.frombuffer(settings + data.encode(), dtype=np.uint8),
        plan.class_weight,
        plan.sampling_weight,
        None if validation is None else validation.train,
        None if validation is None else validation.valid,
        *(_raw_bytes(t) for t in tensors),
    )


def _raw_bytes(tensor):
    """The bytes of ``tensor`` as a uint8 array, whatever its dtype (NumPy
    has no bfloat16 or float8)."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def _kinds(objects):
    """The classes of ``objects`` (skorch callbacks, or ``(name, callback)``
    pairs, or a train split): their reprs may hold memory addresses."""
    if objects in (None, "disable"):
        return objects
    return [
        None if o is None else type(o[1] if isinstance(o, tuple) else o).__qualname__
        for o in objects
    ]


def _callback_settings(callbacks):
    """The parameters of each callback (an address in a repr, of a lambda
    say, only makes two fits look different: the safe side)."""
    if callbacks in (None, "disable"):
        return callbacks
    out = []
    for cb in callbacks:
        cb = cb[1] if isinstance(cb, tuple) else cb
        params = cb.get_params() if hasattr(cb, "get_params") else {}
        out.append(sorted((k, repr(v)) for k, v in params.items()))
    return out


class Session:
    """The fits of one search: recorded, trained in stacks, replayed.

    Parameters
    ----------
    memory_budget : int or None
        Bytes per stack chunk (None: the engine's default for the device).
    n_jobs : int or None
        Stack chunks run through joblib with this many workers.
    """

    def __init__(self, memory_budget=None, n_jobs=None):
        self.memory_budget = memory_budget
        self.n_jobs = n_jobs
        self.records = {}  # fingerprint -> FitRecord, in recording order
        self.order = []  # the fingerprint of every recorded fit, duplicates too
        self.replayed = []  # per fit of the replaying pass: "stacked" or why not
        self.blocks = {}
        self.mode = None
        self.chunks = []
        self.estimated_bytes = 0
        self.train_time = 0.0
        self.recording_errors = []  # distinct errors of fits that failed recording
        # train() sends its chunks through the backend of whoever made the
        # session, even from inside a block that runs fits sequentially
        self._backend = active_backend()

    @contextlib.contextmanager
    def _active(self, mode):
        before = self.mode
        self.mode = mode
        token = _ACTIVE.set(self)
        # The session is this thread's: joblib must not send the fits of a
        # pass elsewhere (a Dask backend sends even n_jobs=1 to its workers,
        # where they would train, unrecorded, in full). An "alone" block
        # keeps the caller's backend: train() sends stack chunks through it.
        backend = (
            parallel_config(backend="sequential")
            if mode in ("record", "replay")
            else contextlib.nullcontext()
        )
        try:
            with backend:
                yield self
        finally:
            _ACTIVE.reset(token)
            self.mode = before

    def recording(self):
        """Fits inside this block are prepared and recorded, not trained."""
        return self._active("record")

    def replaying(self):
        """Fits inside this block load their trained results."""
        return self._active("replay")

    def alone(self):
        """Fits inside this block train at once, each as a stack of one (or
        separately, if they cannot be stacked): a search's refit."""
        return self._active("alone")

    def recording_failed(self, error):
        """Keep the ``error`` (a line of text) of a fit that failed while
        recording: it was not recorded, and trains separately."""
        if error not in self.recording_errors:
            self.recording_errors.append(error)

    # -- what WeightedNeuralNetClassifier.fit calls -----------------------------
    def fit(self, net, plan, X, y, sample_weight):
        """Handle one fit; True when the net needs no training of its own."""
        if self.mode not in ("record", "replay", "alone"):
            return False
        if not isinstance(X, np.ndarray):
            if self.mode == "record":
                self.order.append(None)
                return True
            self.replayed.append(_not_an_array(X))
            return False
        dataset = _net.prepare(net, plan, X, y, sample_weight)
        block = _digest(X, y, sample_weight)
        fingerprint = _fingerprint(net, plan, block)
        if self.mode != "replay":
            self._record(net, plan, X, (y, sample_weight), dataset, block, fingerprint)
            if self.mode == "record":
                return True
            self.train()  # alone: a stack of one, the engine's step is faster
        record = self.records.get(fingerprint)
        if record is None or record.result is None:
            self.replayed.append(self._why_not_stacked(record))
            return False
        self.replayed.append("stacked")  # counted even if it diverged
        _check_finite(record.result)
        write_back(net, record.result)
        return True

    def _why_not_stacked(self, record):
        if record is not None:
            return record.reason or "not trained in a stack"
        if self.recording_errors:
            return (
                "it was not recorded: a fit failed while recording ("
                + "; ".join(self.recording_errors)
                + ")"
            )
        return "its data or settings differ from every recorded fit"

    def _record(self, net, plan, X, labels, dataset, block, fingerprint):
        """Record the prepared fit of ``net`` on ``X`` and ``labels`` (``y``
        and ``sample_weight``), whose data digest is ``block``."""
        self.order.append(fingerprint)
        if fingerprint in self.records:  # the same fit again: trained once
            self.records[fingerprint].uses += 1
            return
        record = self.records[fingerprint] = FitRecord(fingerprint, uses=1)
        record.reason = _eligibility.reason(net, plan, X)
        if record.reason is not None:
            return
        self.blocks.setdefault(block, (X, *labels))
        n_epochs = net.max_epochs
        start = len(net.history)
        batch_size = net.get_params_for("iterator_train").get(
            "batch_size", net.batch_size
        )
        if batch_size == -1:
            batch_size = len(X)
        validation = plan.validation
        orders = net.epoch_orders(dataset, n_epochs)
        early = {}
        if validation is not None:  # epochs over the training rows only
            train = torch.as_tensor(validation.train)
            subset = torch.utils.data.Subset(dataset, validation.train.tolist())
            orders = [train[o] for o in net.epoch_orders(subset, n_epochs)]
            eval_size = net.get_params_for("iterator_valid").get(
                "batch_size", max(net.batch_size, _net._EVAL_BATCH_SIZE)
            )
            early = dict(
                valid=torch.as_tensor(validation.valid),
                scoring=validation.scoring,
                n_iter_no_change=validation.n_iter_no_change,
                tol=validation.tol,
                eval_batch_size=eval_size,
            )
        if plan.per_batch is not None:  # every batch weighted by its own counts
            weights = _batch_weights(plan, labels[0], orders, batch_size)
        else:
            weights = [plan.loss_weight(start + e) for e in range(n_epochs)]
        class_weight = (
            None
            if weights[0] is None  # multi-label (n_labels, 2): flattened
            else torch.tensor(np.stack(weights), dtype=torch.float32).flatten(1)
        )
        criterion = copy.deepcopy(net.criterion_).cpu()
        criterion.weight = None  # the job's class_weight, per epoch or step
        optimizer_kwargs = _eligibility.optimizer_kwargs(net)
        record.job = StackJob(
            module=copy.deepcopy(net.module_),
            # int32 halves what a search holds between its passes
            orders=[o.to(torch.int32) for o in orders],
            batch_size=batch_size,
            optimizer_kwargs=optimizer_kwargs,
            class_weight=class_weight,
            normalization=net.criterion_.normalization,
            per_step=plan.per_batch is not None,
            criterion=criterion,
            schedule=_lr.schedule(
                net,
                optimizer_kwargs,
                [-(-len(o) // batch_size) for o in orders],
            ),
            seed=plan.seed,
            plateau=_lr.plateau(net),
            **early,
        )
        shapes = tuple((n, tuple(p.shape)) for n, p in net.module_.named_parameters())
        record.group = (
            net.optimizer,
            str(net.device),
            type(net.module_),
            repr(net.module_),  # the same shapes with other activations differ
            shapes,
            X.shape[1:],
            str(X.dtype),  # uint8 and float rows cannot share a stack
            batch_size,
            criterion_key(net.criterion_),
        )
        record.block = block

    # -- training ---------------------------------------------------------------
    def train(self, progress=None):
        """Train every stackable record, one stack per architecture.

        ``progress``, if given, is called as ``progress(stack, n_stacks,
        n_fits, epoch, n_epochs)`` as each stack trains (see
        :func:`~._engine.train_stack`).
        """
        groups = defaultdict(list)
        for record in self.records.values():
            if record.job is not None:
                groups[record.group].append(record)
        start = time.perf_counter()
        with parallel_config(**self._backend):
            self._train_groups(groups, progress)
        self.blocks.clear()
        self.train_time += time.perf_counter() - start

    def _train_groups(self, groups, progress):
        for i, (group, records) in enumerate(groups.items(), start=1):
            optimizer, device = group[0], group[1]
            offsets, parts = {}, []
            for r in records:
                if r.block not in offsets:
                    offsets[r.block] = sum(len(p[0]) for p in parts)
                    parts.append(self.blocks[r.block])
            X = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            sw = None
            if any(p[2] is not None for p in parts):
                sw = np.concatenate(
                    [np.ones(len(p[0])) if p[2] is None else p[2] for p in parts]
                )
            jobs = [replace(r.job, offset=offsets[r.block]) for r in records]
            sizes = plan_chunks(
                jobs, X, torch.device(device), self.memory_budget, self.n_jobs
            )
            self.chunks.extend(sizes)
            self.estimated_bytes = max(
                self.estimated_bytes, stack_bytes(jobs[: max(sizes)], X)
            )
            results = train_stack(
                jobs,
                X,
                y,
                sw,
                optimizer=optimizer,
                device=device,
                memory_budget=self.memory_budget,
                n_jobs=self.n_jobs,
                progress=None
                if progress is None
                else functools.partial(progress, i, len(groups), len(records)),
            )
            for r, result in zip(records, results):
                r.result = result
                r.job = None  # the initial module and orders are no longer needed

    def train_time_of(self, first, last):
        """Training seconds of the recorded fits ``first:last`` (their shares
        of the stacks, a shared record's split among the fits that share it)."""
        total = 0.0
        for fingerprint in self.order[first:last]:
            record = self.records.get(fingerprint)
            if record is not None and record.result is not None:
                total += sum(record.result.epoch_durations) / record.uses
        return total

    def report(self):
        """What was stacked and what trained separately, and why."""
        separate = [why for why in self.replayed if why != "stacked"]
        return {
            "n_fits": len(self.replayed),
            "n_stacked": len(self.replayed) - len(separate),
            "separate": separate,
            "chunks": list(self.chunks),
            "estimated_bytes": self.estimated_bytes,
            "memory_budget": self.memory_budget,
            "train_time": self.train_time,
            "recording_errors": list(self.recording_errors),
        }


def _batch_weights(plan, y, orders, batch_size):
    """Per step, the class weights of :class:`~skweighted.class_weight.PerBatch`
    from its batch's counts (as ``WeightedNet.get_loss`` computes them)."""
    y, k = np.asarray(y), len(plan.classes)
    return [
        scheme_weights(
            plan.per_batch.weights_from_counts,
            np.bincount(y[order[i : i + batch_size].numpy()], minlength=k),
        )
        for order in orders
        for i in range(0, len(order), batch_size)
    ]


def warn_separate(separate, n_fits, where):
    """Warn once that ``where`` trained fits separately, naming each reason.

    ``separate`` holds the reason of every fit that trained separately (as
    :meth:`Session.report` lists them); nothing when it is empty.
    """
    if not separate:
        return
    reasons = "; ".join(f"{n} x {why}" for why, n in Counter(separate).most_common())
    warnings.warn(
        f"{where}: {len(separate)} of {n_fits} network fits trained separately, "
        f"not in stacks, so more slowly: {reasons}.",
        UserWarning,
        stacklevel=3,
    )


def _not_an_array(X):
    return (
        f"X is a {type(X).__name__}, not an in-memory array: it trains as a "
        "separate fit"
    )


def _check_finite(result):
    for epoch, losses in enumerate(result.batch_losses, start=1):
        bad = [v for v in losses if not math.isfinite(v)]  # floats: no NumPy
        if bad:
            raise FloatingPointError(
                f"Training diverged: the train loss became non-finite ({bad[0]}) "
                f"in epoch {epoch}. Lower lr, scale the features, or check the "
                "class and sample weights."
            )

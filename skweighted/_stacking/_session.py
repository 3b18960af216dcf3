"""Collect the fits of a search, train the stackable ones together, hand
each result back to the fit that asked for it.

A search runs its fits twice. First under :meth:`Session.recording`: each
``WeightedNeuralNetClassifier.fit`` prepares its net exactly as it would
(validation, labels, class weights, module initialised under its seed, the
row order of every epoch) and, instead of training, leaves a record. Then
:meth:`Session.train` trains every stackable record in stacks. Then the
search runs its ordinary code under :meth:`Session.replaying`: the fits come
in the same order, prepare their net again, and load their trained weights
and history instead of training. A fit whose data or settings differ from its
record (a sampler without a fixed seed, say) trains separately, as does every
fit with a reason not to stack.
"""

import contextlib
import copy
import hashlib
import time
from collections import defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import _net
from . import _eligibility
from ._engine import StackJob, plan_chunks, stack_bytes, train_stack
from ._writeback import write_back

_ACTIVE = ContextVar("skweighted_stacking_session", default=None)


def active_session():
    """The session the current fits belong to, or None."""
    return _ACTIVE.get()


@dataclass
class FitRecord:
    """One fit seen while recording."""

    fingerprint: str
    reason: str | None = None
    group: tuple | None = None
    block: str | None = None
    job: StackJob | None = None
    result: object = None
    replayed: str | None = None  # "stacked", or why it trained separately


def _digest(*arrays):
    h = hashlib.sha1()
    for a in arrays:
        if a is None:
            h.update(b"none")
        else:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _fingerprint(net, plan, X, y, sample_weight):
    settings = repr(
        (
            type(net.module),
            net.module if isinstance(net.module, type) else None,
            net.lr,
            net.max_epochs,
            net.batch_size,
            net.optimizer,
            sorted(net.get_params_for("optimizer").items(), key=str),
            sorted(net.get_params_for("module").items(), key=str),
            plan.seed,
            plan.deferred_start,
            plan.weighted,
        )
    ).encode()
    return _digest(
        np.frombuffer(settings, dtype=np.uint8),
        X,
        y,
        sample_weight,
        plan.class_weight,
        plan.sampling_weight,
    )


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
        self.records = []
        self.blocks = {}
        self.mode = None
        self.cursor = 0
        self.chunks = []
        self.estimated_bytes = 0
        self.train_time = 0.0

    @contextlib.contextmanager
    def _active(self, mode):
        self.mode, self.cursor = mode, 0
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)
            self.mode = None

    def recording(self):
        """Fits inside this block are prepared and recorded, not trained."""
        return self._active("record")

    def replaying(self):
        """Fits inside this block load their trained results, in order."""
        return self._active("replay")

    # -- what WeightedNeuralNetClassifier.fit calls -----------------------------
    def fit(self, net, plan, X, y, sample_weight):
        """Handle one fit; True when the net needs no training of its own."""
        if self.mode == "record":
            self._record(net, plan, X, y, sample_weight)
            return True
        if self.mode != "replay" or self.cursor >= len(self.records):
            return False
        record = self.records[self.cursor]
        self.cursor += 1
        if record.result is None:
            record.replayed = record.reason or "not trained in a stack"
            return False
        if _fingerprint(net, plan, X, y, sample_weight) != record.fingerprint:
            record.replayed = "its data or settings changed between the passes"
            return False
        _net.prepare(net, plan, X, y, sample_weight)
        _check_finite(record.result)
        write_back(net, record.result)
        record.replayed = "stacked"
        return True

    def _record(self, net, plan, X, y, sample_weight):
        if not isinstance(X, np.ndarray):
            record = FitRecord(None)
            self.records.append(record)
            record.reason = (
                f"X is a {type(X).__name__}, not an in-memory array: it trains "
                "as a separate fit"
            )
            return
        record = FitRecord(_fingerprint(net, plan, X, y, sample_weight))
        self.records.append(record)
        dataset = _net.prepare(net, plan, X, y, sample_weight)
        record.reason = _eligibility.reason(net, plan, X)
        if record.reason is not None:
            return
        block = _digest(X, y, sample_weight)
        self.blocks.setdefault(block, (X, y, sample_weight))
        n_epochs = net.max_epochs
        start = len(net.history)
        weights = [plan.loss_weight(start + e) for e in range(n_epochs)]
        class_weight = (
            None
            if weights[0] is None
            else torch.tensor(np.stack(weights), dtype=torch.float32)
        )
        batch_size = net.get_params_for("iterator_train").get(
            "batch_size", net.batch_size
        )
        if batch_size == -1:
            batch_size = len(X)
        record.job = StackJob(
            module=copy.deepcopy(net.module_),
            orders=net.epoch_orders(dataset, n_epochs),
            batch_size=batch_size,
            optimizer_kwargs=_eligibility.optimizer_kwargs(net),
            class_weight=class_weight,
            normalization=net.criterion_.normalization,
        )
        shapes = tuple((n, tuple(p.shape)) for n, p in net.module_.named_parameters())
        record.group = (
            net.optimizer,
            str(net.device),
            type(net.module_),
            shapes,
            X.shape[1:],
            batch_size,
        )
        record.block = block

    # -- training ---------------------------------------------------------------
    def train(self):
        """Train every stackable record, one stack per architecture."""
        groups = defaultdict(list)
        for record in self.records:
            if record.job is not None:
                groups[record.group].append(record)
        start = time.perf_counter()
        for group, records in groups.items():
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
            jobs = [
                replace(r.job, orders=[o + offsets[r.block] for o in r.job.orders])
                for r in records
            ]
            sizes = plan_chunks(jobs, X, torch.device(device), self.memory_budget)
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
            )
            for r, result in zip(records, results):
                r.result = result
                r.job = None  # the initial module and orders are no longer needed
        self.blocks.clear()
        self.train_time += time.perf_counter() - start

    def train_time_of(self, first, last):
        """Training seconds of records ``first:last`` (their stack shares)."""
        return sum(
            sum(r.result.epoch_durations)
            for r in self.records[first:last]
            if r.result is not None
        )

    def report(self):
        """What was stacked and what trained separately, and why."""
        separate = [r.replayed or r.reason for r in self.records]
        separate = [s for s in separate if s != "stacked" and s is not None]
        return {
            "n_fits": len(self.records),
            "n_stacked": sum(r.replayed == "stacked" for r in self.records),
            "separate": separate,
            "chunks": list(self.chunks),
            "estimated_bytes": self.estimated_bytes,
            "memory_budget": self.memory_budget,
            "train_time": self.train_time,
        }


def _check_finite(result):
    for epoch, losses in enumerate(result.batch_losses, start=1):
        bad = [v for v in losses if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"Training diverged: the train loss became non-finite ({bad[0]}) "
                f"in epoch {epoch}. Lower lr, scale the features, or check the "
                "class and sample weights."
            )

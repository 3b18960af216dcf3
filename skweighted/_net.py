"""The private skorch net the classifier builds.

What differs from :class:`skorch.NeuralNet`:

- **fast batching**: in-memory arrays are batched by
  :mod:`skweighted._batching` (tensors prepared once, one gather per epoch);
  on a GPU the data is moved to the device once when it fits. Any other
  ``iterator_train__*`` / ``iterator_valid__*`` option falls back to skorch's
  general ``DataLoader`` path over the same dataset;
- **sample-weight-aware loss**: a batch with sample weights is
  ``({"X": X, "sample_weight": w}, y)`` (skorch's documented pattern); the
  weights go to the criterion, never to the module;
- **no host-device sync per batch**: batch losses stay on the device and are
  read once per epoch (``history`` stays complete), which is also where a
  diverged (non-finite) loss is caught;
- **randomness that belongs to the fit**: the module is initialised under the
  fit's seed while holding a process-wide lock, and every epoch draws its
  batch order from its own generator seeded by ``(seed, epoch)``, so fits in
  threads of one process do not share random numbers, and a warm fit goes on
  exactly as one longer fit would. Dropout layers draw from the fit's own
  generator, seeded per epoch (:mod:`skweighted._dropout`); other stochastic
  layers seed torch's global generator per epoch, under the same lock;
- **less Python per step**: the per-batch events (``on_batch_begin``,
  ``on_grad_computed``, ``on_batch_end``) go only to the callbacks that
  override them (the others are no-ops), modules switch train/eval mode only
  when their mode changes, and tensors already on the device skip
  ``to_tensor``. Every callback still sees every event it listens to;
- **steps over micro-batches and processes**: with gradient accumulation or
  in a process group (:mod:`skweighted._distributed`), an optimizer step
  trains several micro-batches, through DDP across processes, each on its
  ``sum(w * l)`` over the sum of the weights of the whole step; the batch
  events and ``history`` then count optimizer steps, and only rank 0 runs
  the callbacks that print or write.
- **early stopping from the plan**: a plan with a
  :class:`~skweighted._early_stopping.Validation` holds out its rows (the
  net's ``train_split`` for that fit), scores every epoch on them (before
  the epoch's callbacks, which see the score), stops after they ran when the
  score stops improving, and restores the best epoch's weights
  (:class:`~skweighted._early_stopping.Stopper`);
- **a classifier to scikit-learn's scorers**: ``predict`` returns class
  indices (skorch's returns probabilities) and ``classes_`` are
  ``0 .. K-1``, so skorch's ``EpochScoring('balanced_accuracy')`` and every
  scikit-learn scorer name work on the net, on its encoded labels.
"""

import contextlib
import copy
import functools
from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PrintLog
from skorch.setter import optimizer_setter
from skorch.utils import TeeGenerator, to_tensor

from . import _build, _distributed, _dropout, _early_stopping, _inputs, calibration
from ._batching import (
    SAMPLE_WEIGHT,
    ArrayDataset,
    BatchIterator,
    EpochOrder,
    EpochOrders,
    _batch_len,
    _fits_on_device,
    _labels,
    _rows,
    _tensors,
)
from ._compat import fast_optimizer_kwargs
from ._devices import seeded
from ._module_check import check_module_output
from .class_weight import scheme_weights
from .losses._base import decide, n_outputs, proba_function
from .sampling import GLOBAL, epoch_seed

_FAST_ITERATOR_OPTIONS = {"batch_size", "shuffle"}
#: smallest batch used for prediction and validation (no gradients there)
_EVAL_BATCH_SIZE = 1024


#: Layers that draw from torch's global generator in training mode.
_STOCHASTIC_LAYERS = (
    torch.nn.Dropout,
    torch.nn.Dropout1d,
    torch.nn.Dropout2d,
    torch.nn.Dropout3d,
    torch.nn.AlphaDropout,
    torch.nn.FeatureAlphaDropout,
)


class _PrintLog(PrintLog):
    """skorch's ``PrintLog`` that builds no table when there is nothing to print."""

    def on_epoch_end(self, net, **kwargs):
        if self.sink is print and not net.verbose:
            return
        super().on_epoch_end(net, **kwargs)


def named_sinks(value):
    """``value`` (a callback, a ``(name, callback)`` pair or a list of them)
    with every callback whose ``sink`` is ``print`` replaced by a copy whose
    sink is the string ``'print'``: what a saved model holds, so that a
    skops file need not trust ``builtins.print``."""
    if isinstance(value, list):
        return [named_sinks(v) for v in value]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[0], named_sinks(value[1])
    if getattr(value, "sink", None) is print:
        value = copy.copy(value)
        value.sink = "print"
    return value


def restore_sinks(value):
    """Undo :func:`named_sinks` in place on what was loaded."""
    if isinstance(value, list | tuple):
        for v in value:
            restore_sinks(v)
    elif getattr(value, "sink", None) == "print":
        value.sink = print


class WeightedNet(NeuralNet):
    """skorch ``NeuralNet`` with fast batching and sample-weight-aware loss.

    What a fit trains with comes from its :class:`~skweighted._build.Plan`,
    given through :meth:`apply_plan`, the same way for a cold and a warm fit;
    the constructor takes only :class:`skorch.NeuralNet`'s parameters (no
    tensors). ``criterion=None`` means
    :class:`~skweighted.losses.WeightedCrossEntropyLoss`.
    """

    plan_ = None
    #: set while a fit trains (see :func:`skweighted._distributed.training`):
    #: the process group, the DDP wrapper of ``module_``, micro-batches per step
    _group = None
    _ddp = None
    _accumulate = 1
    #: set while a step trains: the scale of each micro-batch's ``sum(w * l)``
    #: and the step's class counts (for ``PerBatch`` weights)
    _loss_scale = None
    _step_counts = None

    # -- state: skorch's optimizer setters stored by the optimizer's name and
    # print sinks by name, so that a skops file of a model trusts no function
    # (neither functools.partial, skorch's setter nor print)
    def __getstate__(self):
        state = super().__getstate__()
        for key in ("callbacks", "callbacks_"):
            if key in state:
                state[key] = named_sinks(state[key])
        virtual = dict(state.get("virtual_params_", {}))
        setters = {}
        for pattern, fn in list(virtual.items()):
            if isinstance(fn, functools.partial) and fn.func is optimizer_setter:
                setters[pattern] = fn.keywords["optimizer_name"]
                del virtual[pattern]
        if setters:
            state["virtual_params_"] = virtual
            state["_optimizer_setters"] = setters
        return state

    def __setstate__(self, state):
        state = dict(state)
        setters = state.pop("_optimizer_setters", {})
        super().__setstate__(state)
        restore_sinks([self.__dict__.get("callbacks"), self.__dict__.get("callbacks_")])
        for pattern, name in setters.items():
            self.virtual_params_[pattern] = functools.partial(
                optimizer_setter, optimizer_attr=name + "_", optimizer_name=name
            )

    # -- the plan of a fit -------------------------------------------------
    def apply_plan(self, plan):
        """Train the next ``partial_fit`` with ``plan``'s weights, counts and order.

        The one way a fit configures the net, cold or warm: the plan is
        stored, and an initialised net rebuilds its criterion through
        :meth:`initialize_criterion`, exactly as the first initialisation
        built it. (A criterion with learnable parameters therefore starts
        again at each fit.) The plan applied already is not applied twice.
        """
        if plan is self.plan_ and self.initialized_:
            return self
        self.plan_ = plan
        if plan.validation is not None:
            self.train_split = RowSplit(plan.validation.train, plan.validation.valid)
        elif isinstance(self.train_split, RowSplit):  # the last fit's split
            self.train_split = None
        if self.initialized_:
            self._initialize_criterion()
        return self

    def initialize_criterion(self):
        """skorch's hook: the criterion with the plan's weights and counts.

        Built by :func:`skweighted._build.criterion` from ``criterion`` and
        the ``criterion__*`` parameters; a criterion instance is copied,
        never modified. The weights and counts are float32 tensors on the
        net's device.
        """
        plan = self.plan_
        epoch = len(self.history_) if getattr(self, "history_", None) else 0
        self.criterion_ = _build.criterion(
            self.criterion,
            self.get_params_for("criterion"),
            weight=None if plan is None else plan.loss_weight(epoch),
            counts=None if plan is None else plan.counts,
            device=self.device,
        )
        return self

    def check_proba_correction(self):
        """Raise a ``ValueError`` unless ``correct_proba`` can undo what this
        net's criterion and plan train with (the criterion built by
        :meth:`initialize_criterion`; see
        :func:`skweighted.calibration._check_correctable`)."""
        calibration._check_correctable(self.criterion_, self.plan_)

    def proba_correction(self, class_prior):
        """The class weights that ``correct_proba=True`` divides out.

        Those this net trained with in its last epoch, times the sampler's,
        times the training prior over ``class_prior``; see
        :func:`skweighted.calibration.unweight_proba`.
        """
        return calibration._correction_weight(
            self.plan_, len(self.history), class_prior
        )

    def decide(self, proba):
        """Class indices for probabilities: the criterion's ``decision`` rule
        (e.g. least expected cost) when it has one, else the most probable."""
        return decide(self.criterion_, proba)

    # -- scikit-learn's view of the net (for scorers) ----------------------
    @property
    def classes_(self):
        """The class indices ``0 .. K-1`` the net's labels are encoded as."""
        return np.arange(len(self.plan_.classes))

    def predict(self, X):
        """Class indices (multi-label: the indicator matrix) for ``X``.

        What scikit-learn's scorers and skorch's ``EpochScoring`` expect of a
        classifier's ``predict``, on the encoded labels the net trains on.
        """
        return self.decide(self.predict_proba(X))

    def __sklearn_tags__(self):
        return classifier_tags()

    def curves(self):
        """What the last training left: the epochs, the best one, the curves.

        Returns a dict with ``n_iter`` (epochs in the history, warm fits
        included), ``best_iteration`` (the epoch whose weights the module
        holds: the best one when the last training stopped early, else the
        last), ``loss_curve`` (training loss per epoch), ``validation_scores``
        and ``best_validation_score`` (of the last training's epochs; None
        without early stopping). Lets go of the training's stopper.
        """
        history = self.history
        n_iter = len(history)
        out = {
            "n_iter": n_iter,
            "best_iteration": n_iter,
            "loss_curve": [float(h.get("train_loss", np.nan)) for h in history],
            "validation_scores": None,
            "best_validation_score": None,
        }
        stopper = vars(self).pop("stopper_", None)
        if stopper is None or stopper.best_epoch is None:
            return out
        start = n_iter - stopper.epochs
        out["best_iteration"] = start + stopper.best_epoch
        out["validation_scores"] = [
            float(h[_early_stopping.SCORE_KEY]) for h in history[start:]
        ]
        out["best_validation_score"] = float(stopper.best_score)
        return out

    def get_default_callbacks(self):
        return [
            (name, _PrintLog() if name == "print_log" else cb)
            for name, cb in super().get_default_callbacks()
        ]

    # -- data --------------------------------------------------------------
    def get_dataset(self, X, y=None):
        base = X.dataset if isinstance(X, torch.utils.data.Subset) else X
        if isinstance(base, ArrayDataset | _inputs.LabelledDataset):
            return X
        return self.make_dataset(X, y)

    def make_dataset(self, X, y=None, sample_weight=None):
        """The dataset of validated ``X`` (see :mod:`skweighted._inputs`).

        In-memory data (an array or a dict of arrays) becomes tensors that
        share its memory and keep its dtype, moved to the device when they
        fit there; a user Dataset is served by
        :class:`~skweighted._inputs.LabelledDataset` with ``y`` and
        ``sample_weight``.
        """
        y = _inputs.tensor(y, np.int64)
        sample_weight = _inputs.tensor(sample_weight, np.float32)
        if _inputs.is_dataset(X):
            return _inputs.LabelledDataset(X, y, sample_weight)
        X = _inputs.to_torch(X)
        device = torch.device(self.device)
        if _fits_on_device(device, *_tensors(X), y, sample_weight):
            X = _rows(X, lambda t: t.to(device))
            y, sample_weight = (
                None if t is None else t.to(device) for t in (y, sample_weight)
            )
        return ArrayDataset(X, y, sample_weight)

    def _fast_iterator(self, dataset, training, kwargs):
        base, indices = dataset, None
        if isinstance(dataset, torch.utils.data.Subset):
            base, indices = dataset.dataset, torch.as_tensor(dataset.indices)
        default_bs = (
            self.batch_size if training else max(self.batch_size, _EVAL_BATCH_SIZE)
        )
        batch_size = kwargs.get("batch_size", default_bs)
        if batch_size == -1:
            batch_size = len(dataset)
        return BatchIterator(
            base,
            indices,
            batch_size=batch_size,
            order=self._epoch_order(dataset, kwargs) if training else None,
            device=torch.device(self.device),
            share=_distributed.share(self._group) if training else None,
        )

    def _epoch_order(self, dataset, kwargs):
        """The training order (an :class:`EpochOrder`); None keeps the rows in order."""
        plan = self.plan_
        sampling = plan is not None and plan.sampling_weight is not None
        if not sampling and not kwargs.get("shuffle", False):
            return None
        row_weight = None
        if sampling:
            y = _labels(dataset)
            if y is None:
                raise TypeError(
                    "sampler= needs the training labels, which this dataset "
                    f"({type(dataset).__name__}) does not expose."
                )
            row_weight = torch.tensor(plan.sampling_weight)[y.cpu()]
        return EpochOrder(
            len(dataset),
            row_weight,
            None if plan is None else plan.seed,
            epoch=lambda: len(self.history) - 1,
        )

    def epoch_orders(self, dataset, n_epochs, rows=None):
        """The rows of the next ``n_epochs`` training epochs, in batch order.

        What the fast batch iterator reads in each epoch (the same generator
        calls, epochs counted from ``len(history)`` on), as an
        :class:`~skweighted._batching.EpochOrders`: a sequence of
        LongTensors of row indices into ``dataset`` (or into what ``rows``,
        a ``Subset``'s indices, stand for), drawn when read.
        """
        kwargs = self.get_params_for("iterator_train")
        order = self._epoch_order(dataset, kwargs)
        return EpochOrders(order, len(dataset), len(self.history), n_epochs, rows)

    def get_iterator(self, dataset, training=False):
        """skorch's ``DataLoader`` path or, for in-memory arrays, the fast one.

        Both take a training epoch's order from :class:`EpochOrder`.
        """
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        base = (
            dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
        )
        if isinstance(base, ArrayDataset) and not set(kwargs) - _FAST_ITERATOR_OPTIONS:
            return self._fast_iterator(dataset, training, kwargs)
        user_order = {"sampler", "batch_sampler"} & set(kwargs)
        order = self._epoch_order(dataset, kwargs) if training else None
        share = _distributed.share(self._group) if training else None
        if user_order or (order is None and share is None):
            return super().get_iterator(dataset, training=training)
        if share is not None:  # this process reads only its rows
            order = _distributed.Share(order, len(dataset), share)
        kwargs = {**kwargs, "shuffle": False, "sampler": order}
        batch_size = kwargs.pop("batch_size", self.batch_size)
        return self.iterator_train(
            dataset,
            batch_size=len(dataset) if batch_size == -1 else batch_size,
            **kwargs,
        )

    # -- loss --------------------------------------------------------------
    def infer(self, x, **fit_params):
        if isinstance(x, dict) and SAMPLE_WEIGHT in x:
            x = x["X"]
        # training data-parallel: the forward pass goes through DDP
        ddp = self._ddp if torch.is_grad_enabled() else None
        module = self.module_ if ddp is None else ddp
        if isinstance(x, torch.Tensor) and not fit_params:
            return module(x.to(self.device))
        if ddp is None:
            return super().infer(x, **fit_params)
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping):
            return ddp(**self._merge_x_and_fit_params(x, fit_params))
        return ddp(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = self._target(y_true)
        sw = self._sample_weight(y_true, X, training)
        if sw is None:
            loss = self.criterion_(y_pred, y_true)
        else:
            loss = self.criterion_(y_pred, y_true, sample_weight=sw)
        if training and self._loss_scale is not None:
            # this micro-batch's sum(w * l), over the sum of w of the whole step
            d = _distributed.normalizer(self.criterion_, y_true, sw)
            loss = loss * d.to(loss.device) * self._loss_scale.to(loss.device)
        return loss

    def _target(self, y_true):
        if isinstance(y_true, torch.Tensor):
            return y_true.to(self.device)
        return to_tensor(y_true, device=self.device)

    def _sample_weight(self, y_true, X, training):
        """A batch's per-sample weights beyond the criterion's class weights:
        ``sample_weight``, times the ``PerBatch`` class weights in training
        (from the counts of the batch, or of the whole step when one spans
        micro-batches or processes)."""
        sw = X.get(SAMPLE_WEIGHT) if isinstance(X, dict) else None
        per_batch = None if self.plan_ is None else self.plan_.per_batch
        if training and per_batch is not None:
            counts = self._step_counts
            if counts is None:
                counts = self._class_counts(y_true)
            # a class absent from the batch gets 1, which no sample here uses
            weights = scheme_weights(per_batch.weights_from_counts, counts)
            cw = torch.as_tensor(weights, dtype=torch.float32, device=y_true.device)
            sw = cw[y_true] if sw is None else cw[y_true] * sw
        return sw

    def _class_counts(self, y_true):
        return torch.bincount(y_true, minlength=len(self.plan_.classes)).cpu().numpy()

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix == "optimizer" and not {"fused", "foreach"} & set(kwargs):
            kwargs = {**fast_optimizer_kwargs(self.optimizer, self.device), **kwargs}
        return args, kwargs

    def _get_predict_nonlinearity(self):
        return proba_function(self.criterion_)

    # -- training loop -----------------------------------------------------
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        validation = None if self.plan_ is None else self.plan_.validation
        self.stopper_ = validation and _early_stopping.Stopper(validation)
        self._stop = False

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        stopper = getattr(self, "stopper_", None)
        if stopper is not None:
            self._stop = stopper.epoch_end(self, dataset_valid)

    def notify(self, method_name, **cb_kwargs):
        # in a data-parallel fit only rank 0 prints and writes files
        getattr(self, method_name)(self, **cb_kwargs)
        for cb in self._active_callbacks():
            getattr(cb, method_name)(self, **cb_kwargs)
        if method_name == "on_epoch_end" and getattr(self, "_stop", False):
            stopper = self.stopper_
            if self.verbose:
                print(
                    f"Stopping: the validation score has not improved by tol="
                    f"{stopper.validation.tol} for "
                    f"{stopper.validation.n_iter_no_change + 1} epochs; the best "
                    f"epoch of this fit was {stopper.best_epoch}."
                )
            raise KeyboardInterrupt  # skorch's partial_fit ends training here

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        stopper = getattr(self, "stopper_", None)
        if stopper is not None:
            stopper.restore(self)
        if isinstance(self.train_split, RowSplit):  # the split belongs to the fit
            self.train_split = None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        if self.plan_ is not None and self.plan_.deferred_start is not None:
            epoch = len(self.history) - 1  # 0-based, counted across warm fits
            weight = self.plan_.loss_weight(epoch)
            self.criterion_.weight = _float32(weight, self.device)

    def _set_training(self, training=True):
        # skorch calls this before every batch; ``Module.train`` walks the
        # whole module tree, so only switch modules whose mode differs.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def _listeners(self, method_name):
        """The callbacks whose ``method_name`` is not skorch's no-op."""
        noop = getattr(Callback, method_name)
        return [
            cb
            for cb in self._active_callbacks()
            if getattr(getattr(cb, method_name), "__func__", None) is not noop
        ]

    def _notify_batch(self, listeners, method_name, **cb_kwargs):
        """``notify`` restricted to ``listeners`` (the net itself always hears)."""
        getattr(self, method_name)(self, **cb_kwargs)
        for cb in listeners:
            getattr(cb, method_name)(self, **cb_kwargs)

    def _active_callbacks(self):
        callbacks = [cb for _, cb in self.callbacks_]
        if self._group is None or self._group.rank == 0:
            return callbacks
        return [cb for cb in callbacks if not _distributed.rank0_only(cb)]

    def train_step(self, batch, **fit_params):
        if isinstance(batch, _distributed.Step):
            return self._train_global_step(batch, **fit_params)
        # skorch's train_step, but ``on_grad_computed`` (and the TeeGenerator
        # over all parameters it needs) only when someone listens to it.
        notify_grad = getattr(self, "_grad_listeners", None) != []
        accumulator = self.get_train_step_accumulator()

        def step_fn():
            self._zero_grad_optimizer()
            step = self.train_step_single(batch, **fit_params)
            accumulator.store_step(step)
            if notify_grad:
                self.notify(
                    "on_grad_computed",
                    named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    batch=batch,
                    training=True,
                )
            return step["loss"]

        self._step_optimizer(step_fn)
        return accumulator.get_step()

    def _train_global_step(self, step, **fit_params):
        """One optimizer step over micro-batches (and processes), each trained
        on its ``sum(w * l)`` over the sum of the weights of the whole step
        (see :mod:`skweighted._distributed`)."""
        self._zero_grad_optimizer()
        micro = step.micro
        labels = [self._target(m.batch[1]) for m in micro]
        if self.plan_ is not None and self.plan_.per_batch is not None:
            counts = sum(
                torch.bincount(y, minlength=len(self.plan_.classes))
                for y, m in zip(labels, micro)
                if m.real
            )
            self._step_counts = _distributed.all_reduce(counts, self._group).cpu()
            self._step_counts = self._step_counts.numpy()
        denominators = [
            _distributed.normalizer(
                self.criterion_, y, self._sample_weight(y, m.batch[0], True)
            )
            * m.real
            for y, m in zip(labels, micro)
        ]
        scales = _distributed.loss_scales(denominators, self._group)
        total = 0
        try:
            for i, (m, scale) in enumerate(zip(micro, scales)):
                self._loss_scale = scale if m.real else scale * 0
                with _distributed.no_sync(self._ddp, i < len(micro) - 1):
                    out = self.train_step_single(m.batch, **fit_params)
                total = total + out["loss"].detach()
        finally:
            self._loss_scale = self._step_counts = None
        if getattr(self, "_grad_listeners", None) != []:
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=step.last,
                training=True,
            )
        self._step_optimizer(lambda: total)
        return {"loss": total, "y_pred": out["y_pred"]}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        with self._epoch_rng(training):
            self._run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def _epoch_rng(self, training):
        """The randomness of a training epoch, this fit's own: its dropout
        layers draw from a generator of its own, seeded for the epoch (see
        :mod:`skweighted._dropout`); other stochastic layers from torch's
        global generator, seeded for the epoch under the lock."""
        plan = self.plan_
        if not training or plan is None or plan.seed is None:
            return contextlib.nullcontext()
        seed = epoch_seed(plan.seed, len(self.history) - 1, GLOBAL)
        device = torch.device(self.device)
        stack = contextlib.ExitStack()
        if _dropout.layers(self.module_):
            generator = torch.Generator(device).manual_seed(seed)
            stack.enter_context(_dropout.drawing_from(self.module_, generator))
        if any(
            isinstance(m, _STOCHASTIC_LAYERS) and type(m) not in _dropout.OWN_GENERATOR
            for m in self.module_.modules()
        ):
            stack.enter_context(seeded(seed, device))
        return stack

    def _run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        begin = self._listeners("on_batch_begin")
        end = self._listeners("on_batch_end")
        net_hears_grad = type(self).on_grad_computed is not NeuralNet.on_grad_computed
        grad = self._listeners("on_grad_computed")
        self._grad_listeners = None if net_hears_grad else grad
        losses, sizes, records = [], [], []
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        grouped = training and (self._group is not None or self._accumulate > 1)
        if grouped:  # optimizer steps over micro-batches and processes
            iterator = _distributed.steps(iterator, self._accumulate, self._group)
        try:
            for batch in iterator:
                cb_batch = batch.last if grouped else batch
                self._notify_batch(
                    begin, "on_batch_begin", batch=cb_batch, training=training
                )
                step = step_fn(batch, **fit_params)
                loss = step["loss"].detach()
                if grouped:
                    n = sum(_batch_len(m.batch[0]) for m in batch.micro if m.real)
                else:
                    n = _batch_len(batch[0])
                self.history.record_batch(loss_key, loss)  # a float after the epoch
                self.history.record_batch(size_key, n)
                losses.append(loss)
                sizes.append(n)
                records.append(self.history[-1]["batches"][-1])
                self._notify_batch(
                    end, "on_batch_end", batch=cb_batch, training=training, **step
                )
        finally:  # also on KeyboardInterrupt: history holds floats, never tensors
            self._grad_listeners = None
            # One host-device transfer per epoch for all batch losses.
            values = torch.stack(losses) if losses else torch.zeros(0)
            if grouped and self._group is not None:
                # the global step's loss and rows: the sums over the processes
                # (each process's step loss is its share times world_size)
                both = torch.stack([values, torch.tensor(sizes).to(values)])
                both = _distributed.all_reduce(both, self._group)
                values = both[0] / self._group.world_size
                sizes = both[1].round().long().tolist()
                for record, n in zip(records, sizes):
                    record[size_key] = n
            values = values.tolist()
            for record, value in zip(records, values):
                record[loss_key] = value
            self.history.record(prefix + "_batch_count", len(values))
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(
                f"Training diverged: the {prefix} loss became non-finite "
                f"({next(v for v in values if not np.isfinite(v))}) in epoch "
                f"{len(self.history)}. Lower lr, scale the features, or check "
                "the class and sample weights."
            )


def classifier_tags():
    """The tags scikit-learn's scorers read of a classifier on encoded labels
    (the net, and a stack's view of one model's predictions)."""
    from sklearn.utils import ClassifierTags, Tags, TargetTags

    return Tags(
        estimator_type="classifier",
        target_tags=TargetTags(required=True),
        classifier_tags=ClassifierTags(),
    )


class RowSplit:
    """A fit's ``train_split``: fixed training and validation rows of its
    dataset (as skorch's ``predefined_split``, by row indices)."""

    def __init__(self, train, valid):
        self.train = train
        self.valid = valid

    def __call__(self, dataset, y=None, groups=None):
        subset = torch.utils.data.Subset
        train, valid = self.train.tolist(), self.valid.tolist()
        return subset(dataset, train), subset(dataset, valid)


def train(net, plan, X, y, sample_weight=None, epochs=None, group=None, accumulate=1):
    """Train ``net`` on one fit's data with ``plan``, cold or warm.

    Applies the plan; a net that is not initialised yet is initialised under
    the fit's seed and its module's output checked on two samples; then one
    ``partial_fit`` trains ``epochs`` epochs (``max_epochs`` when None). A
    diverged loss raises ``FloatingPointError`` (see
    :meth:`WeightedNet.run_single_epoch`).

    Parameters
    ----------
    net : WeightedNet
    plan : skweighted._build.Plan
    X : ndarray, dict of ndarray or Dataset
        Training data validated by :mod:`skweighted._inputs`.
    y : ndarray of shape (n_samples,)
        Labels encoded as ``0 .. n_classes - 1``.
    sample_weight : ndarray of shape (n_samples,) or None
    epochs : int or None
    group : skweighted._distributed.Group or None
        Train data-parallel over this process group (each process on its
        share of every batch).
    accumulate : int, default=1
        Micro-batches per optimizer step.
    """
    dataset = prepare(net, plan, X, y, sample_weight)
    if group is not None or accumulate > 1:
        _distributed.check_criterion(net.criterion_)
    fit_params = {} if epochs is None else {"epochs": epochs}
    with _distributed.training(net, group, accumulate):
        net.partial_fit(dataset, y, **fit_params)
    return net


def initialize(net, plan, X):
    """Apply ``plan`` to ``net``; a new net is initialised under the fit's seed
    and its module's output checked on two samples of validated ``X``.

    Nothing trains: the classifier calls this before training to ask the
    net's own criterion whether ``correct_proba`` can be undone
    (:meth:`WeightedNet.check_proba_correction`).
    """
    net.apply_plan(plan)
    if not net.initialized_:
        with seeded(plan.seed, torch.device(net.device)):
            net.initialize()
        n_classes = len(plan.classes)
        check_module_output(net, X, n_outputs(net.criterion_, n_classes), n_classes)
    return net


def prepare(net, plan, X, y, sample_weight=None):
    """Everything :func:`train` does before training; returns the dataset.

    :func:`initialize`, then a check of the criterion's ``sample_weight``
    support. The stacking engine calls this too, so a stacked model starts
    exactly where its separate fit would.
    """
    initialize(net, plan, X)
    if sample_weight is not None and not _build.accepts(
        net.criterion_.forward, SAMPLE_WEIGHT
    ):
        raise TypeError(
            f"The criterion {type(net.criterion_).__name__} does not accept "
            "sample_weight in forward(); use a loss from skweighted.losses "
            "(e.g. WeightedCrossEntropyLoss) or drop sample_weight."
        )
    return net.make_dataset(X, y, sample_weight)


def _float32(values, device):
    return (
        None
        if values is None
        else torch.tensor(values, dtype=torch.float32, device=device)
    )

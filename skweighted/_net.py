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
  exactly as one longer fit would. Modules with dropout also seed torch's
  global generator per epoch, under the same lock;
- **less Python per step**: the per-batch events (``on_batch_begin``,
  ``on_grad_computed``, ``on_batch_end``) go only to the callbacks that
  override them (the others are no-ops), modules switch train/eval mode only
  when their mode changes, and tensors already on the device skip
  ``to_tensor``. Every callback still sees every event it listens to;
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
import threading

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PrintLog
from skorch.utils import TeeGenerator, to_tensor

from . import _build, _early_stopping, _inputs, calibration
from ._batching import (
    SAMPLE_WEIGHT,
    ArrayDataset,
    BatchIterator,
    EpochOrder,
    _batch_len,
    _fits_on_device,
    _labels,
    _rows,
    _tensors,
)
from ._compat import fast_optimizer_kwargs
from .class_weight import scheme_weights
from .losses._base import n_outputs, proba_function
from .sampling import GLOBAL, epoch_seed

_FAST_ITERATOR_OPTIONS = {"batch_size", "shuffle"}
#: smallest batch used for prediction and validation (no gradients there)
_EVAL_BATCH_SIZE = 1024


#: Guards torch's process-wide generator while a fit seeds it (module
#: initialisation, and the epochs of modules with dropout).
_GLOBAL_RNG_LOCK = threading.RLock()
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


class WeightedNet(NeuralNet):
    """skorch ``NeuralNet`` with fast batching and sample-weight-aware loss.

    What a fit trains with comes from its :class:`~skweighted._build.Plan`,
    given through :meth:`apply_plan`, the same way for a cold and a warm fit;
    the constructor takes only :class:`skorch.NeuralNet`'s parameters (no
    tensors). ``criterion=None`` means
    :class:`~skweighted.losses.WeightedCrossEntropyLoss`.
    """

    plan_ = None

    # -- the plan of a fit -------------------------------------------------
    def apply_plan(self, plan):
        """Train the next ``partial_fit`` with ``plan``'s weights, counts and order.

        The one way a fit configures the net, cold or warm: the plan is
        stored, and an initialised net rebuilds its criterion through
        :meth:`initialize_criterion`, exactly as the first initialisation
        built it. (A criterion with learnable parameters therefore starts
        again at each fit.)
        """
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
        decision = getattr(self.criterion_, "decision", None)
        if decision is None:
            return np.argmax(proba, axis=1)
        return np.asarray(decision(proba))

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
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
        )

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

    def epoch_orders(self, dataset, n_epochs):
        """The rows of the next ``n_epochs`` training epochs, in batch order.

        What the fast batch iterator reads in each epoch (the same generator
        calls, epochs counted from ``len(history)`` on), as LongTensors of
        row indices into ``dataset``.
        """
        kwargs = self.get_params_for("iterator_train")
        start = len(self.history)
        order = self._epoch_order(dataset, kwargs)
        rows = torch.arange(len(dataset))
        if order is None:
            return [rows] * n_epochs
        orders = []
        for e in range(n_epochs):
            order.epoch = lambda e=e: start + e
            orders.append(order.indices())
        return orders

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
        if order is None or user_order:
            return super().get_iterator(dataset, training=training)
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
        if isinstance(x, torch.Tensor) and not fit_params:
            return self.module_(x.to(self.device))
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(y_true, torch.Tensor):
            y_true = y_true.to(self.device)
        else:
            y_true = to_tensor(y_true, device=self.device)
        sw = X.get(SAMPLE_WEIGHT) if isinstance(X, dict) else None
        per_batch = None if self.plan_ is None else self.plan_.per_batch
        if training and per_batch is not None:
            counts = torch.bincount(y_true, minlength=y_pred.shape[-1]).cpu().numpy()
            # a class absent from the batch gets 1, which no sample here uses
            weights = scheme_weights(per_batch.weights_from_counts, counts)
            cw = torch.as_tensor(weights, dtype=torch.float32, device=y_pred.device)
            sw = cw[y_true] if sw is None else cw[y_true] * sw
        if sw is None:
            return self.criterion_(y_pred, y_true)
        return self.criterion_(y_pred, y_true, sample_weight=sw)

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
        super().notify(method_name, **cb_kwargs)
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
            for _, cb in self.callbacks_
            if getattr(getattr(cb, method_name), "__func__", None) is not noop
        ]

    def _notify_batch(self, listeners, method_name, **cb_kwargs):
        """``notify`` restricted to ``listeners`` (the net itself always hears)."""
        getattr(self, method_name)(self, **cb_kwargs)
        for cb in listeners:
            getattr(cb, method_name)(self, **cb_kwargs)

    def train_step(self, batch, **fit_params):
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

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        with self._epoch_rng(training):
            self._run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def _epoch_rng(self, training):
        """Seed torch's global generator for a training epoch of a module with
        dropout (under the lock), so that its draws belong to this fit."""
        plan = self.plan_
        if not training or plan is None or plan.seed is None:
            return contextlib.nullcontext()
        if not any(isinstance(m, _STOCHASTIC_LAYERS) for m in self.module_.modules()):
            return contextlib.nullcontext()
        epoch = len(self.history) - 1
        return seeded(epoch_seed(plan.seed, epoch, GLOBAL), torch.device(self.device))

    def _run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        begin = self._listeners("on_batch_begin")
        end = self._listeners("on_batch_end")
        net_hears_grad = type(self).on_grad_computed is not NeuralNet.on_grad_computed
        grad = self._listeners("on_grad_computed")
        self._grad_listeners = None if net_hears_grad else grad
        losses, records = [], []
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        try:
            for batch in iterator:
                self._notify_batch(
                    begin, "on_batch_begin", batch=batch, training=training
                )
                step = step_fn(batch, **fit_params)
                loss = step["loss"].detach()
                n = _batch_len(batch[0])
                self.history.record_batch(loss_key, loss)  # a float after the epoch
                self.history.record_batch(size_key, n)
                losses.append(loss)
                records.append(self.history[-1]["batches"][-1])
                self._notify_batch(
                    end, "on_batch_end", batch=batch, training=training, **step
                )
        finally:  # also on KeyboardInterrupt: history holds floats, never tensors
            self._grad_listeners = None
            # One host-device transfer per epoch for all batch losses.
            values = torch.stack(losses).tolist() if losses else []
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


def resolve_device(device):
    """Return a ``torch.device`` for ``device`` or raise a clear ValueError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'cpu', 'cuda', "
            f"'cuda:N' or 'mps' ({exc})."
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
    }
    if not available.get(dev.type, True):
        raise ValueError(
            f"device={device!r} was requested but {dev.type.upper()} is not "
            f"available on this machine (torch.{dev.type} reports no device); "
            "use device='cpu'."
        )
    if dev.type == "cuda" and dev.index is not None:
        if dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has only "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return dev


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch's global generator inside the block, holding the process-wide
    lock, and restore the caller's generator state afterwards."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices):
        if devices:
            torch.manual_seed(seed)
        else:  # torch.manual_seed also queues a (costly) lazy seed of CUDA
            torch.default_generator.manual_seed(seed)
        yield


def train(net, plan, X, y, sample_weight=None, epochs=None):
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
    """
    dataset = prepare(net, plan, X, y, sample_weight)
    fit_params = {} if epochs is None else {"epochs": epochs}
    net.partial_fit(dataset, y, **fit_params)
    return net


def prepare(net, plan, X, y, sample_weight=None):
    """Everything :func:`train` does before training; returns the dataset.

    Applies the plan, initialises a new net under the fit's seed and checks
    its output width and the criterion's ``sample_weight`` support. The
    stacking engine calls this too, so a stacked model starts exactly where
    its separate fit would.
    """
    net.apply_plan(plan)
    if not net.initialized_:
        with seeded(plan.seed, torch.device(net.device)):
            net.initialize()
        n_classes = len(plan.classes)
        check_module_output(net, X, n_outputs(net.criterion_, n_classes), n_classes)
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


def _probe(net, X):
    """The first two samples of validated ``X``, batched as training batches are."""
    if _inputs.is_dataset(X):
        items = _inputs.LabelledDataset(X)
        collate = net.get_params_for("iterator_train").get("collate_fn")
        collate = collate or torch.utils.data.default_collate
        return collate([items[i] for i in range(min(2, len(items)))])[0]
    # torch.tensor copies two rows: X may be read-only
    if isinstance(X, dict):
        return {k: torch.tensor(v[:2]) for k, v in X.items()}
    return torch.tensor(X[:2])


def _describe(batch):
    if isinstance(batch, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in batch.items())
    if isinstance(batch, torch.Tensor):
        return f"shape {tuple(batch.shape)}, dtype {batch.dtype}"
    return type(batch).__name__


def _integer_hint(batch):
    tensors = batch.values() if isinstance(batch, dict) else [batch]
    if any(isinstance(t, torch.Tensor) and not t.is_floating_point() for t in tensors):
        return (
            " Integer and boolean X keep their dtype (for nn.Embedding and uint8 "
            "images); convert X to float32 if the module expects floats."
        )
    return ""


def check_module_output(net, X, n_outputs, n_classes):
    """Run the initialised module on two samples and check its output width."""
    module = net.module_
    was_training = module.training
    module.eval()
    batch = _probe(net, X)
    try:
        with torch.no_grad():
            out = net.infer(to_tensor(batch, device=net.device))
    except Exception as exc:
        raise RuntimeError(
            f"The module's forward pass failed on the input ({_describe(batch)}): "
            f"{type(exc).__name__}: {exc}.{_integer_hint(batch)}"
        ) from exc
    finally:
        module.train(was_training)
    out = out[0] if isinstance(out, tuple | list) else out
    width = out.shape[-1] if out.ndim > 1 else 1
    if out.ndim != 2 or width != n_outputs:
        raise ValueError(
            f"The module returns {width} output(s) per sample (output shape "
            f"{tuple(out.shape)}), but there are {n_classes} classes and the "
            f"criterion needs {n_outputs} output(s) per sample. Size the "
            "module's last layer accordingly."
        )

"""The private skorch net the classifier builds.

Three things differ from :class:`skorch.NeuralNet`:

- **fast batching**: in-memory arrays become tensors once; each epoch shuffles
  (or samples) indices, gathers the rows once and slices views, instead of
  one ``__getitem__`` per row and a collate per batch. On a GPU the data is
  moved to the device once when it fits. Any other ``iterator_train__*`` /
  ``iterator_valid__*`` option falls back to skorch's general
  ``DataLoader`` path over the same dataset;
- **sample-weight-aware loss**: a batch with sample weights is
  ``({"X": X, "sample_weight": w}, y)`` (skorch's documented pattern); the
  weights go to the criterion, never to the module;
- **no host-device sync per batch**: batch losses stay on the device and are
  read once per epoch (``history`` stays complete), which is also where a
  diverged (non-finite) loss is caught;
- **less Python per step**: the per-batch events (``on_batch_begin``,
  ``on_grad_computed``, ``on_batch_end``) go only to the callbacks that
  override them (the others are no-ops), modules switch train/eval mode only
  when their mode changes, and tensors already on the device skip
  ``to_tensor``. Every callback still sees every event it listens to.
"""

import contextlib

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PrintLog
from skorch.utils import TeeGenerator, to_tensor

from ._compat import fast_optimizer_kwargs
from .class_weight import scheme_weights
from .losses._base import proba_function

SAMPLE_WEIGHT = "sample_weight"
_FAST_ITERATOR_OPTIONS = {"batch_size", "shuffle"}
#: smallest batch used for prediction and validation (no gradients there)
_EVAL_BATCH_SIZE = 1024


class ArrayDataset(torch.utils.data.Dataset):
    """Tensors ``X``, ``y`` (optional) and ``sample_weight`` (optional)."""

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        Xi = self.X[i]
        if self.sample_weight is not None:
            Xi = {"X": Xi, SAMPLE_WEIGHT: self.sample_weight[i]}
        yi = self.y[i] if self.y is not None else torch.zeros(())
        return Xi, yi


def _as_tensor(a, dtype):
    if a is None or isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if not a.flags.writeable:  # torch cannot share memory with read-only arrays
        a = a.copy()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def _take(a, idx):
    """Rows ``idx`` of ``a`` (None stays None); ``index_select`` is several
    times faster than advanced indexing ``a[idx]`` for gathering rows."""
    return None if a is None else torch.index_select(a, 0, idx.to(a.device))


def _fits_on_device(device, *tensors):
    if device.type != "cuda":
        return device.type == "cpu"
    free, _ = torch.cuda.mem_get_info(device)
    return sum(t.nbytes for t in tensors if t is not None) < 0.5 * free


class BatchIterator:
    """Mini-batches sliced from tensors prepared once per epoch.

    Parameters
    ----------
    dataset : ArrayDataset
    indices : LongTensor or None
        The rows of ``dataset`` to iterate over (a ``Subset``'s indices).
    batch_size : int
    shuffle : bool
        Draw a new permutation each epoch.
    sampling_weight : Tensor of shape (n_classes,) or None
        When given, each epoch draws ``len`` rows with replacement, row ``i``
        with probability proportional to ``sampling_weight[y_i]`` (PyTorch's
        ``WeightedRandomSampler``): a class-balanced mini-batch sampler.
    device : torch.device
    """

    def __init__(self, dataset, indices, batch_size, shuffle, sampling_weight, device):
        self.dataset = dataset
        self.indices = indices
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampling_weight = sampling_weight
        self.device = device

    def __len__(self):
        n = len(self.dataset) if self.indices is None else len(self.indices)
        return (n + self.batch_size - 1) // self.batch_size

    def _epoch_indices(self):
        idx = self.indices
        n = len(self.dataset) if idx is None else len(idx)
        if self.sampling_weight is not None:
            y = self.dataset.y if idx is None else self.dataset.y[idx]
            p = self.sampling_weight.to(y.device)[y].float()
            order = torch.multinomial(p.cpu(), n, replacement=True)
        elif self.shuffle:
            order = torch.randperm(n)
        else:
            return idx
        return order if idx is None else idx[order]

    def __iter__(self):
        ds = self.dataset
        idx = self._epoch_indices()
        arrays = [ds.X, ds.y, ds.sample_weight]
        if idx is not None:
            arrays = [_take(a, idx) for a in arrays]
        X, y, w = arrays
        on_device = X.device == self.device
        for start in range(0, len(X), self.batch_size):
            sl = slice(start, start + self.batch_size)
            Xb, yb, wb = (
                X[sl],
                None if y is None else y[sl],
                None if w is None else w[sl],
            )
            if not on_device:
                Xb, yb, wb = (
                    None if t is None else t.to(self.device, non_blocking=True)
                    for t in (Xb, yb, wb)
                )
            yield ({"X": Xb, SAMPLE_WEIGHT: wb} if wb is not None else Xb), yb


class _PrintLog(PrintLog):
    """skorch's ``PrintLog`` that builds no table when there is nothing to print."""

    def on_epoch_end(self, net, **kwargs):
        if self.sink is print and not net.verbose:
            return
        super().on_epoch_end(net, **kwargs)


class WeightedNet(NeuralNet):
    """skorch ``NeuralNet`` with fast batching and sample-weight-aware loss.

    Parameters beyond :class:`skorch.NeuralNet`'s
    ----------------------------------------------
    sampling_weight : Tensor of shape (n_classes,) or None
        Per-class sampling weights for a balanced mini-batch sampler.
    per_batch : callable or None
        ``counts -> weights``; when set, class weights are recomputed from
        each training batch's labels (the criterion then holds no weights).
    deferred : tuple (start_epoch, weights) or None
        Deferred re-weighting: uniform class weights before ``start_epoch``
        (0-based), ``weights`` from then on.
    """

    def __init__(
        self, *args, sampling_weight=None, per_batch=None, deferred=None, **kw
    ):
        super().__init__(*args, **kw)
        self.sampling_weight = sampling_weight
        self.per_batch = per_batch
        self.deferred = deferred

    def get_default_callbacks(self):
        return [
            (name, _PrintLog() if name == "print_log" else cb)
            for name, cb in super().get_default_callbacks()
        ]

    # -- data --------------------------------------------------------------
    def get_dataset(self, X, y=None):
        if isinstance(X, ArrayDataset):
            return X
        if isinstance(X, torch.utils.data.Dataset):
            return super().get_dataset(X, y)
        return self.make_dataset(X, y)

    def make_dataset(self, X, y=None, sample_weight=None):
        """Tensors for in-memory data, on the device when they fit there."""
        X = _as_tensor(X, np.float32)
        y = _as_tensor(y, np.int64)
        sample_weight = _as_tensor(sample_weight, np.float32)
        device = torch.device(self.device)
        if _fits_on_device(device, X, y, sample_weight):
            X, y, sample_weight = (
                None if t is None else t.to(device) for t in (X, y, sample_weight)
            )
        return ArrayDataset(X, y, sample_weight)

    def get_iterator(self, dataset, training=False):
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        base, indices = dataset, None
        if isinstance(dataset, torch.utils.data.Subset):
            base, indices = dataset.dataset, torch.as_tensor(dataset.indices)
        if not isinstance(base, ArrayDataset) or set(kwargs) - _FAST_ITERATOR_OPTIONS:
            return super().get_iterator(dataset, training=training)
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
            shuffle=training and kwargs.get("shuffle", False),
            sampling_weight=self.sampling_weight if training else None,
            device=torch.device(self.device),
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
        if training and self.per_batch is not None:
            counts = torch.bincount(y_true, minlength=y_pred.shape[-1]).cpu().numpy()
            # a class absent from the batch gets 1, which no sample here uses
            weights = scheme_weights(self.per_batch, counts)
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
    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        if self.deferred is not None:
            start_epoch, weights = self.deferred
            epoch = len(self.history) - 1  # 0-based index of the epoch beginning
            w = torch.ones_like(weights) if epoch < start_epoch else weights
            self.criterion_.weight = w.to(self.device)

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
                Xb = batch[0]
                n = len(Xb["X"] if isinstance(Xb, dict) else Xb)
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
    """Seed torch inside the block without touching the caller's RNG state."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if devices:
            torch.manual_seed(seed)
        else:  # torch.manual_seed also queues a (costly) lazy seed of CUDA
            torch.default_generator.manual_seed(seed)
        yield


def check_module_output(net, X, n_outputs, n_classes):
    """Run the initialised module on two rows and check its output width."""
    module = net.module_
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():  # torch.tensor copies: X may be read-only
            out = net.infer(torch.tensor(X[:2]).to(net.device))
    except Exception as exc:
        raise RuntimeError(
            f"The module's forward pass failed on the input "
            f"(shape {tuple(X[:2].shape)}): {type(exc).__name__}: {exc}"
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

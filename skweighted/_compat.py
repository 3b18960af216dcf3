"""Every version-dependent shim lives here, and nowhere else.

This is also the one place that reaches private scikit-learn or joblib API;
each such name says which versions it was checked against (scikit-learn
1.6 to 1.9, joblib 1.4 to 1.6).
"""

import inspect
import sys
from functools import cache

import numpy as np
import sklearn
import torch
from joblib.parallel import get_active_backend
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.fixes import parse_version
from sklearn.utils.validation import _check_sample_weight, validate_data

__all__ = [
    "HasMethods",
    "Interval",
    "SearchHooks",
    "StrOptions",
    "active_backend",
    "check_sample_weight",
    "default_backend",
    "fast_optimizer_kwargs",
    "fused_adam_",
    "routed_fit_params",
    "safe_indexing",
    "scorer_sign",
    "validate_data",
]

SKLEARN_VERSION = parse_version(parse_version(sklearn.__version__).base_version)

_FUSED_OPTIMIZERS = tuple(
    getattr(torch.optim, name)
    for name in ("Adam", "AdamW", "SGD", "Adagrad")
    if hasattr(torch.optim, name)
)


def _fused_devices():
    try:  # private since torch 2.2; the list grew with later releases
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
    except ImportError:  # pragma: no cover - older torch
        return ("cuda",)
    return tuple(_get_fused_kernels_supported_devices())


def fast_optimizer_kwargs(optimizer, device):
    """Extra keyword arguments that select a fused optimizer step.

    Returns ``{"fused": True}`` for PyTorch's Adam, AdamW, SGD and Adagrad when
    this torch build has a fused kernel for ``device``; otherwise ``{}`` (the
    optimizer then picks its own foreach implementation).
    """
    if not (isinstance(optimizer, type) and issubclass(optimizer, _FUSED_OPTIMIZERS)):
        return {}
    if "fused" not in inspect.signature(optimizer.__init__).parameters:
        return {}  # pragma: no cover - older torch
    if torch.device(device).type not in _fused_devices():
        return {}
    return {"fused": True}


def fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, **settings):
    """One step of PyTorch's fused Adam (``decoupled_weight_decay``: AdamW).

    What :func:`torch.optim.adam.adam` runs with ``fused=True``, without the
    checks and regrouping it repeats on every call (a third of a small stack's
    optimizer time). ``settings``: ``amsgrad, lr, beta1, beta2, weight_decay,
    eps, decoupled_weight_decay``. The step counts ``steps`` are incremented
    first, as there.
    """
    decoupled = settings.pop("decoupled_weight_decay")
    kernel = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_", None)
    if kernel is None:  # pragma: no cover - a torch without the private op
        from torch.optim.adam import adam

        return adam(
            params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, fused=True,
            maximize=False, decoupled_weight_decay=decoupled, **settings,
        )  # fmt: skip
    torch._foreach_add_(steps, 1)
    kernel(
        params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps,
        grad_scale=None, found_inf=None, maximize=False, **settings,
    )  # fmt: skip


def check_sample_weight(sample_weight, X):
    """Validate ``sample_weight``: finite, non-negative, not all zero, float32."""
    kwargs = {"dtype": np.float32, "ensure_non_negative": True}
    if "allow_all_zero_weights" in inspect.signature(_check_sample_weight).parameters:
        kwargs["allow_all_zero_weights"] = False
    sample_weight = _check_sample_weight(sample_weight, X, **kwargs)
    if not np.any(sample_weight > 0):  # older scikit-learn accepts all zeros
        raise ValueError("sample_weight is zero for every sample.")
    return sample_weight


def torch_load(f, map_location=None):
    """``torch.load`` that never unpickles arbitrary objects."""
    return torch.load(f, map_location=map_location, weights_only=True)


def scorer_sign(scorer):
    """+1, or -1 for a scorer scikit-learn negated (``greater_is_better=False``)."""
    return getattr(scorer, "_sign", 1)  # private, but stable since scikit-learn 0.x


#: ``sklearn.utils._safe_indexing``: rows (or columns) of arrays, DataFrames,
#: sparse matrices and lists alike; private but stable since scikit-learn 0.24.
safe_indexing = _safe_indexing


def routed_fit_params(search, params):
    """The routed parameters of a search's fit (``.splitter.split``,
    ``.estimator.fit``): ``BaseSearchCV._get_routed_params_for_fit``, private,
    checked with scikit-learn 1.6 to 1.9."""
    return search._get_routed_params_for_fit(params)


class SearchHooks:
    """Mixin for a ``BaseSearchCV`` subclass, over two private hooks of
    scikit-learn's search (checked with scikit-learn 1.6 to 1.9):

    - ``_evaluator(evaluate_candidates)`` may wrap the function through which
      ``_run_search`` evaluates candidates;
    - ``_search_outputs(out)`` may rewrite the per-fit output dicts before
      ``_format_results`` builds ``cv_results_`` from them.
    """

    def _evaluator(self, evaluate_candidates):
        return evaluate_candidates

    def _search_outputs(self, out):
        return out

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        # scikit-learn >= 1.9 passes callback_ctx to a _run_search whose
        # signature names it; older versions call it without
        kwargs = {} if callback_ctx is None else {"callback_ctx": callback_ctx}
        return super()._run_search(self._evaluator(evaluate_candidates), **kwargs)

    def _format_results(self, candidate_params, n_splits, out, more_results=None):
        out = self._search_outputs(out)
        return super()._format_results(candidate_params, n_splits, out, more_results)


def active_backend():
    """The caller's joblib backend as ``parallel_config`` keyword arguments, to
    be set again in a block that changed it (``get_active_backend`` is
    joblib's, public in ``joblib.parallel`` but undocumented; joblib 1.4 to
    1.6)."""
    backend, n_jobs = get_active_backend()
    return {"backend": backend, "n_jobs": n_jobs}


def default_backend(device):
    """The ``torch.distributed`` backend for a group initialised from a
    launcher's environment: gloo for CPU tensors, and NCCL too on a GPU
    (a backend string per device type, torch >= 2.0)."""
    if torch.device(device).type == "cuda":
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def _dask_data(value):
    """A task whose result is ``value`` (see :func:`resilient_dask_backend`)."""
    return value


def resilient_dask_backend(active):
    """A copy of ``active``, joblib's Dask backend, whose large arguments Dask
    can compute again when the worker holding them is lost; ``active`` itself
    when it is such a copy already; ``None`` when it is not joblib's Dask
    backend.

    joblib (1.3 to 1.6) scatters every large argument of a call
    (``client.scatter(hash=False)``) to one worker: scattered data is "pure
    data" to the scheduler, which cannot be recomputed, so when that worker
    dies the scheduler forgets it, and with it every task that needs it:
    they end in ``FutureCancelledError: ... already forgotten`` instead of
    being run again elsewhere, which is what Dask does for a lost task
    (``distributed.scheduler.allowed-failures`` times). Here such an argument
    is sent once as the task :func:`_dask_data` that returns it, so the
    scheduler holds it and recomputes it on another worker when needed.

    ``give_up(exc)`` (called on the client's event loop) ends every call
    still pending: joblib then raises ``exc``.
    """
    # joblib imports its Dask backend (and distributed) only once a call
    # asks for "dask"; do not import them for every search on one machine
    dask = sys.modules.get("joblib._dask")
    if dask is None or not isinstance(active, dask.DaskDistributedBackend):
        return None
    if isinstance(active, _resilient_dask_backend_class()):
        return active
    backend = _resilient_dask_backend_class()(
        client=active.client,
        wait_for_workers_timeout=active.wait_for_workers_timeout,
        **active.submit_kwargs,
    )
    backend.data_futures, backend._scatter = active.data_futures, active._scatter
    return backend


@cache
def _resilient_dask_backend_class():
    from joblib._dask import Batch, DaskDistributedBackend, is_weakrefable, sizeof

    class ResilientDaskBackend(DaskDistributedBackend):
        def _ship(self, arg):
            future = self.data_futures.get(id(arg))  # parallel_config(scatter=)
            if future is not None or not is_weakrefable(arg) or sizeof(arg) <= 1e3:
                return arg if future is None else future
            try:
                return self.call_data_futures[arg]
            except KeyError:
                future = self.client.submit(_dask_data, arg, pure=False)
                self.call_data_futures[arg] = future
                return future

        async def _to_func_args(self, func):
            tasks = [
                (
                    f,
                    [self._ship(a) for a in args],
                    {k: self._ship(v) for k, v in kw.items()},
                )
                for f, args, kw in func.items
            ]
            return Batch(tasks), tasks

        def give_up(self, exc):
            self.abort_everything()
            for future in list(self._results):
                self._results.pop(future).set_result(exc)
                self._callbacks.pop(future)(exc)

    return ResilientDaskBackend

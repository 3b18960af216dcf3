"""Turn the estimator's parameters and one fit's labels into the net's parts.

:class:`Plan` is the one immutable description of what a fit trains with;
:func:`criterion` and :func:`module` build the criterion (holding the plan's
class weights and, for losses that need it, the training ``class_counts``)
and the module class with its keyword arguments. The net calls
:func:`criterion` from skorch's own ``initialize_criterion`` hook, so a cold
and a warm fit build the criterion the same way. Nothing here knows about
scikit-learn.
"""

import copy
import difflib
import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch

from .class_weight import (
    Deferred,
    PerBatch,
    WeightingScheme,
    resolve_from_counts,
    resolve_label_weight,
)
from .losses import WeightedCrossEntropyLoss
from .modules import default_module
from .sampling import check_sampling_spec


def accepts(fn, name):
    """Whether ``fn`` takes a keyword ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def _check_keywords(fn, kwargs, prefix):
    """Refuse keywords that ``fn`` does not take, naming the closest ones
    (a ``TypeError`` before training, not the constructor's own)."""
    unknown = [k for k in kwargs if not accepts(fn, k)]
    if not unknown:
        return
    params = inspect.signature(fn).parameters
    valid = [
        n for n, p in params.items() if n != "self" and p.kind is not p.VAR_POSITIONAL
    ]
    close = difflib.get_close_matches(unknown[0], valid, n=3)
    hint = f" Did you mean {', '.join(prefix + c for c in close)}?" if close else ""
    raise TypeError(
        f"{prefix}{unknown[0]} is not a parameter of {getattr(fn, '__name__', fn)}"
        f"; it takes {', '.join(valid) or 'no parameters'}.{hint}"
    )


def _frozen(array, dtype=np.float64):
    if array is None:
        return None
    array = np.array(array, dtype=dtype)  # a copy the plan owns
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Plan:
    """What one fit trains with; built by :func:`make_plan`, never modified.

    Only numpy arrays and scheme objects: the net turns them into tensors on
    its device, so the estimator's parameters and the plan hold no tensors
    (skops and pickles load anywhere).

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        The label set the output columns stand for (for a multi-label ``y``,
        the label indices ``0 .. n_labels - 1``).
    counts : ndarray of shape (n_classes,), dtype=int64
        Training samples per class in this fit's ``y`` (multi-label: shape
        ``(n_labels, 2)``, the negative and positive entries per label).
    class_weight : ndarray of shape (n_classes,)
        The resolved class weights (the estimator's ``class_weight_``;
        multi-label: shape ``(n_labels, 2)``, see
        :func:`~skweighted.class_weight.resolve_label_weight`).
    per_batch : WeightingScheme or None
        Set for :class:`~skweighted.class_weight.PerBatch`: every training
        batch is weighted by this scheme of its own counts, and the criterion
        holds no weights.
    deferred_start : int or None
        Set for :class:`~skweighted.class_weight.Deferred`: epochs before this
        one (counted over the net's whole history, across warm fits) train
        with uniform weights, the later ones with ``class_weight``.
    weighted : bool
        Whether the criterion holds class weights at all (``False`` for
        ``class_weight=None`` and for ``PerBatch``).
    sampling_weight : ndarray of shape (n_classes,) or None
        Per-class weights of the class-balanced mini-batch sampler.
    seed : int or None
        This fit's seed (``None``: torch's global generator).
    validation : skweighted._early_stopping.Validation or None
        Set when the fit stops early: the rows it trains on and is scored
        on, the score, the patience and the tolerance (see
        :func:`with_validation`).
    """

    classes: np.ndarray
    counts: np.ndarray
    class_weight: np.ndarray
    per_batch: WeightingScheme | None
    deferred_start: int | None
    weighted: bool
    sampling_weight: np.ndarray | None
    seed: int | None
    validation: object = None

    def loss_weight(self, epoch):
        """The class weights the criterion holds in ``epoch`` (None: unweighted)."""
        if not self.weighted:
            return None
        if self.deferred_start is not None and epoch < self.deferred_start:
            return np.ones_like(self.class_weight)
        return self.class_weight


def make_plan(class_weight, sampler, *, classes, counts, y, seed):
    """Resolve one fit's class weights and sampler into a :class:`Plan`.

    Parameters
    ----------
    class_weight, sampler
        The estimator's parameters (any form
        :func:`~skweighted.class_weight.resolve_class_weight` accepts).
    classes : ndarray of shape (n_classes,)
    counts : ndarray of shape (n_classes,)
        Samples per class, from the encoded labels.
    y : ndarray of shape (n_samples,)
        The labels in their original form (for a callable spec).
    seed : int or None
    """
    check_sampling_spec(sampler, "sampler")
    weights = resolve_from_counts(class_weight, counts, classes, y)
    sampling = (
        None
        if sampler is None
        else resolve_from_counts(sampler, counts, classes, y, name="sampler")
    )
    return Plan(
        classes=classes,
        counts=_frozen(counts, np.int64),
        class_weight=_frozen(weights),
        per_batch=class_weight if isinstance(class_weight, PerBatch) else None,
        deferred_start=class_weight.start_epoch
        if isinstance(class_weight, Deferred)
        else None,
        weighted=class_weight is not None and not isinstance(class_weight, PerBatch),
        sampling_weight=_frozen(sampling),
        seed=seed,
    )


def make_multilabel_plan(class_weight, sampler, *, classes, counts, y, seed):
    """The :class:`Plan` of a fit on a multi-label indicator matrix ``y``.

    ``classes`` are the label indices, ``counts`` the ``[negative, positive]``
    entries of each label and ``class_weight`` the per-label weights of shape
    ``(n_labels, 2)`` from
    :func:`~skweighted.class_weight.resolve_label_weight`. A sampler draws
    rows by their one class, so it is refused here.
    """
    if sampler is not None:
        raise ValueError(
            f"sampler={sampler!r} draws rows by their class, which a multi-label "
            "y does not have (a row can carry several labels or none); use "
            "class_weight for multi-label targets, or sampler=None."
        )
    weights = resolve_label_weight(class_weight, y)
    return Plan(
        classes=classes,
        counts=_frozen(counts, np.int64),
        class_weight=_frozen(weights),
        per_batch=None,
        deferred_start=None,
        weighted=class_weight is not None,
        sampling_weight=None,
        seed=seed,
    )


def _name(criterion):
    return getattr(criterion, "__name__", type(criterion).__name__)


def _fills_class_counts(spec, kwargs):
    """Whether a fit gives criterion ``spec`` the training ``class_counts``.

    Yes when it takes ``class_counts`` (a class accepting it, or an instance
    holding ``class_counts=None``) and the user set none.
    """
    if "class_counts" in kwargs:
        return False
    if isinstance(spec, type):
        return accepts(spec, "class_counts")
    return getattr(spec, "class_counts", False) is None


def criterion(spec, kwargs, *, weight, counts, device="cpu"):
    """A fresh criterion instance holding ``weight`` (and ``counts``).

    Parameters
    ----------
    spec : None, type or torch.nn.Module
        The ``criterion`` parameter; ``None`` is
        :class:`~skweighted.losses.WeightedCrossEntropyLoss`. An instance is
        copied (re-created from its class when ``kwargs`` are given, as skorch
        does), never modified.
    kwargs : dict
        The ``criterion__*`` parameters.
    weight : ndarray or None
        Class weights for the ``weight`` argument or buffer.
    counts : ndarray
        Training samples per class, for criteria that take ``class_counts``.
    device : str or torch.device
        Where the weights and counts are placed.
    """
    spec = WeightedCrossEntropyLoss if spec is None else spec
    if weight is not None and "weight" in kwargs:
        raise ValueError(
            "Pass class weights either as class_weight or as criterion__weight, "
            "not both."
        )
    attach = {}
    if weight is not None:
        attach["weight"] = torch.tensor(weight, dtype=torch.float32, device=device)
    if _fills_class_counts(spec, kwargs):
        attach["class_counts"] = torch.tensor(
            counts, dtype=torch.float32, device=device
        )
    if isinstance(spec, type):
        if "weight" in attach and not accepts(spec, "weight"):
            raise TypeError(
                f"class_weight is set but the criterion {_name(spec)} does not "
                "accept class weights (no `weight` argument). Use a loss from "
                "skweighted.losses or class_weight=None."
            )
        return spec(**kwargs, **attach)
    instance = type(spec)(**kwargs) if kwargs else copy.deepcopy(spec)
    if "weight" in attach and not hasattr(instance, "weight"):
        raise TypeError(
            f"class_weight is set but the criterion {_name(spec)} holds no "
            "`weight` buffer. Use a loss from skweighted.losses or "
            "class_weight=None."
        )
    for name, value in attach.items():
        setattr(instance, name, value)
    return instance


def module(spec, kwargs, sample_shape, n_outputs):
    """The module (class or copied instance) and its keyword arguments.

    ``None`` is the default network for ``sample_shape``
    (:func:`skweighted.modules.default_module`: a CNN for ``(C, H, W)``
    samples, an MLP otherwise). A module class whose ``__init__`` takes
    ``n_features_in`` (values per sample), ``input_shape`` (the sample shape)
    or ``n_classes`` gets them unless ``kwargs`` sets them; ``n_classes`` is
    the number of outputs the criterion needs. A dict or unknown
    ``sample_shape`` (a Dataset whose items are not arrays) fills neither
    size.
    """
    if spec is None:
        if not isinstance(sample_shape, tuple):
            raise TypeError(
                "module=None builds a network sized from the shape of one sample, "
                "which this X does not give (a Dataset whose items are not arrays, "
                "or a dict); pass module= a torch.nn.Module."
            )
        spec = default_module(sample_shape)
    kwargs = dict(kwargs)
    if isinstance(spec, type):
        _check_keywords(spec, kwargs, "module__")
        sizes = {"n_classes": n_outputs}
        if isinstance(sample_shape, tuple):
            sizes["n_features_in"] = math.prod(sample_shape)
            sizes["input_shape"] = sample_shape
        for name, value in sizes.items():
            if name not in kwargs and accepts(spec, name):
                kwargs[name] = value
        return spec, kwargs
    return copy.deepcopy(spec), kwargs

"""Turn the estimator's parameters and one fit's labels into the net's parts.

The criterion (holding the class weights as its ``weight`` buffer and, for
losses that need it, the training ``class_counts``), the module class and its
keyword arguments, and the net's class-weight schedule. The classifier calls
these; nothing here knows about scikit-learn.
"""

import copy
import inspect

import numpy as np
import torch

from .class_weight import Deferred, PerBatch
from .losses import WeightedCrossEntropyLoss
from .modules import MLP


def accepts(fn, name):
    """Whether ``fn`` takes a keyword ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def float_tensor(values):
    return None if values is None else torch.as_tensor(values, dtype=torch.float32)


def loss_weight(spec, class_weight):
    """The weight tensor the criterion holds for ``class_weight=spec``.

    ``None`` when it holds none: no weighting, or :class:`PerBatch` (the net
    weighs each batch itself). :class:`Deferred` starts from uniform weights;
    the net switches them at ``start_epoch``.
    """
    if spec is None or isinstance(spec, PerBatch):
        return None
    if isinstance(spec, Deferred):
        return float_tensor(np.ones_like(class_weight))
    return float_tensor(class_weight)


def schedule(spec, class_weight, sampling_weight):
    """The net's sampler and class-weight schedule for one fit."""
    return {
        "sampling_weight": float_tensor(sampling_weight),
        "per_batch": spec if isinstance(spec, PerBatch) else None,
        "deferred": (spec.start_epoch, float_tensor(class_weight))
        if isinstance(spec, Deferred)
        else None,
    }


def _name(criterion):
    return getattr(criterion, "__name__", type(criterion).__name__)


def _fills_class_counts(criterion, kwargs):
    """Whether a fit gives ``criterion`` the training ``class_counts``.

    Yes when it takes ``class_counts`` (a class accepting it, or an instance
    holding ``class_counts=None``) and the user set none.
    """
    if "class_counts" in kwargs or criterion is None:
        return False
    if isinstance(criterion, type):
        return accepts(criterion, "class_counts")
    return getattr(criterion, "class_counts", False) is None


def criterion(spec, kwargs, *, weight, counts, source="class_weight"):
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
    weight : Tensor or None
        Class weights for the ``weight`` argument or buffer.
    counts : ndarray
        Training samples per class, for criteria that take ``class_counts``.
    source : str
        What set the weights, for error messages (``"class_weight='balanced'"``).
    """
    if weight is not None and "weight" in kwargs:
        raise ValueError(
            "Pass class weights either as class_weight or as criterion__weight, "
            "not both."
        )
    fills = _fills_class_counts(spec, kwargs)
    spec = WeightedCrossEntropyLoss if spec is None else spec
    if isinstance(spec, type):
        kwargs = dict(kwargs)
        if weight is not None:
            if not accepts(spec, "weight"):
                raise TypeError(
                    f"{source} is set but the criterion {_name(spec)} does not "
                    "accept class weights (no `weight` argument). Use a loss from "
                    "skweighted.losses or class_weight=None."
                )
            kwargs["weight"] = weight
        if fills:
            kwargs["class_counts"] = counts
        return spec(**kwargs)
    instance = type(spec)(**kwargs) if kwargs else copy.deepcopy(spec)
    _set(instance, weight, counts if fills else None, _name(spec))
    return instance


def update_criterion(instance, spec, kwargs, *, weight, counts):
    """Give the fitted ``instance`` of ``spec`` a new fit's weights and counts."""
    counts = counts if _fills_class_counts(spec, kwargs) else None
    _set(instance, weight, counts, _name(instance))


def _set(instance, weight, counts, name):
    if weight is not None:
        if not hasattr(instance, "weight"):
            raise TypeError(
                f"class_weight is set but the criterion {name} holds no `weight` "
                "buffer. Use a loss from skweighted.losses or class_weight=None."
            )
        instance.weight = weight.to(_device_of(instance.weight))
    if counts is not None:
        instance.class_counts = torch.as_tensor(
            counts, dtype=torch.float32, device=_device_of(instance.class_counts)
        )


def _device_of(value):
    return value.device if isinstance(value, torch.Tensor) else "cpu"


def module(spec, kwargs, n_features, n_outputs):
    """The module (class or copied instance) and its keyword arguments.

    A module class whose ``__init__`` takes ``n_features_in`` / ``n_classes``
    gets them unless ``kwargs`` sets them; ``n_classes`` is the number of
    outputs the criterion needs.
    """
    spec = MLP if spec is None else spec
    kwargs = dict(kwargs)
    if isinstance(spec, type):
        for name, value in (("n_features_in", n_features), ("n_classes", n_outputs)):
            if name not in kwargs and accepts(spec, name):
                kwargs[name] = value
        return spec, kwargs
    return copy.deepcopy(spec), kwargs

"""The strategies a comparison evaluates, each one estimator.

A built-in strategy is an :class:`imblearn.pipeline.Pipeline`
``StandardScaler -> [sampler] -> network``, so a sampler only ever sees the
training rows that reach ``fit``; threshold moving wraps the uncorrected
pipeline in :class:`sklearn.model_selection.TunedThresholdClassifierCV`.

On input that is not a 2-D table (images, token ids, a dict of arrays, a
Dataset) the pipeline has no ``StandardScaler`` (scaling images or token ids
is the module's business) and samplers run through
:class:`~skweighted.resampling.RowSampler`: random over- and under-sampling
select rows of any form; SMOTE interpolates between flattened float or
``uint8`` images and is reshaped back, and is skipped, with a note, where
interpolation means nothing (integer token ids) or no single array exists
(dicts, datasets).
"""

import numpy as np
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import clone
from sklearn.model_selection import TunedThresholdClassifierCV
from sklearn.preprocessing import StandardScaler

from .._classifier import WeightedNeuralNetClassifier
from .._inputs import form_of
from ..class_weight import EffectiveNumber
from ..resampling import RowSampler
from ._metrics import BALANCED_ACCURACY_SCORER
from ._names import (
    _CORRECTABLE,
    BUILTIN_STRATEGIES,
    CORRECTED,
    DEFAULT_STRATEGIES,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "DEFAULT_STRATEGIES",
    "default_estimator",
    "input_kind",
    "make_strategies",
]

#: The kinds of input :func:`input_kind` tells apart.
INPUT_KINDS = ("table", "array", "integer array", "dict", "dataset")

_WEIGHTS = {
    "balanced": {"class_weight": "balanced"},
    "inverse_sqrt": {"class_weight": "inverse_sqrt"},
    "median_frequency": {"class_weight": "median_frequency"},
    "effective_number": {"class_weight": EffectiveNumber(beta=0.999)},
    "balanced_sampler": {"sampler": "balanced"},
    "sampler+weights": {"sampler": "inverse_sqrt", "class_weight": "inverse_sqrt"},
}

_SAMPLERS = {
    "random_over": RandomOverSampler,
    "random_under": RandomUnderSampler,
    "smote": SMOTE,
}


def default_estimator(
    *, max_epochs=200, lr=3e-3, early_stopping=True, random_state=None
):
    """The network every built-in strategy trains.

    A :class:`~skweighted.WeightedNeuralNetClassifier` with one hidden layer
    of 64 units, Adam at ``lr``, batches of 64, trained to its best epoch:
    at most ``max_epochs`` epochs, stopped when the loss it minimises
    (class-weighted where the strategy weights) on a stratified 15 %
    validation split has not improved for 6 epochs, the best epoch's
    weights restored. A resampling strategy resamples only the training
    rows (``resampler=``), never the validation rows.

    Parameters
    ----------
    max_epochs : int, default=200
    lr : float, default=3e-3
    early_stopping : bool, default=True
        ``False`` trains every network ``max_epochs`` epochs on all its rows.
    random_state : int or None, default=None

    Returns
    -------
    estimator : WeightedNeuralNetClassifier

    Examples
    --------
    >>> from skweighted.comparison import default_estimator
    >>> params = default_estimator().get_params()
    >>> params["module__hidden_units"], params["early_stopping"]
    ((64,), True)
    """
    return WeightedNeuralNetClassifier(
        module__hidden_units=(64,),
        lr=lr,
        max_epochs=max_epochs,
        batch_size=64,
        early_stopping=early_stopping,
        validation_fraction=0.15,
        n_iter_no_change=5,
        random_state=random_state,
    )


def _seeded(estimator, random_state):
    """A clone whose unset ``random_state`` parameters are set."""
    estimator = clone(estimator)
    if random_state is None:
        return estimator
    params = estimator.get_params(deep=True)
    estimator.set_params(
        **{
            k: random_state
            for k, v in params.items()
            if (k == "random_state" or k.endswith("__random_state")) and v is None
        }
    )
    return estimator


def input_kind(X):
    """What a comparison's strategies see ``X`` as.

    Parameters
    ----------
    X : array-like, DataFrame, dict of arrays or Dataset

    Returns
    -------
    kind : str
        ``'table'`` (2-D), ``'array'`` (N-D float or ``uint8``, e.g. images),
        ``'integer array'`` (N-D of other integers or booleans, e.g. token
        ids), ``'dict'`` or ``'dataset'``.

    Examples
    --------
    >>> import numpy as np
    >>> from skweighted.comparison import input_kind
    >>> input_kind(np.zeros((5, 3))), input_kind(np.zeros((5, 1, 8, 8)))
    ('table', 'array')
    >>> input_kind(np.zeros((5, 2, 7), dtype=np.int64))
    'integer array'
    """
    form = form_of(X).name
    if form != "array":
        return form
    dtype = np.asarray(X[:1]).dtype
    return "integer array" if dtype.kind in "biu" and dtype != np.uint8 else form


def _pipeline(estimator, sampler=None, kind="table"):
    """``[scale ->] [sampler ->] estimator``; a sampler goes into an estimator
    that takes one (``resampler=``), which resamples its training rows only,
    after holding out its validation rows."""
    steps = [("scale", StandardScaler())] if kind == "table" else []
    if sampler is not None:
        if "resampler" in estimator.get_params(deep=False):
            estimator = estimator.set_params(resampler=sampler)
        else:
            steps.append(
                ("sampler", sampler if kind == "table" else RowSampler(sampler))
            )
    return Pipeline([*steps, ("model", estimator)])


def _is_sampler(obj):
    return hasattr(obj, "fit_resample")


def _corrected(name, estimator, random_state, n_classes, class_prior, kind):
    """``name`` with ``correct_proba=True`` (and the prior before resampling)."""
    base = name[: -len(CORRECTED)]
    if base not in _CORRECTABLE:
        return None, None  # not a corrected built-in: unknown
    params = {"correct_proba": True}
    if base in _SAMPLERS:
        if class_prior is None:
            raise ValueError(
                f"Strategy {name!r} corrects for resampling and needs the class "
                "prior before it: pass class_prior= to make_strategies."
            )
        params["class_prior"] = list(class_prior)
    if "correct_proba" not in estimator.get_params(deep=False):
        return None, (
            f"{name}: skipped, {type(estimator).__name__} has no parameter "
            "'correct_proba'."
        )
    return _build(
        base, estimator.set_params(**params), random_state, n_classes, kind=kind
    )


def _build(name, estimator, random_state, n_classes, class_prior=None, kind="table"):
    """Built-in strategy ``name``; ``(strategy, note)``, one of them None."""
    if name.endswith(CORRECTED):
        strategy, note = _corrected(
            name, clone(estimator), random_state, n_classes, class_prior, kind
        )
        if strategy is not None or note is not None:
            return strategy, note
    if name == "none":
        return _pipeline(clone(estimator), kind=kind), None
    if name == "smote" and kind in ("integer array", "dict", "dataset"):
        why = (
            "interpolating between integer values (token ids) makes no sample"
            if kind == "integer array"
            else f"it needs the samples as one numeric array, not a {kind}"
        )
        return None, (
            f"smote: skipped, SMOTE synthesises samples by interpolation and {why}; "
            "random_over and the weighting strategies apply."
        )
    if name in _SAMPLERS:
        sampler = _SAMPLERS[name](random_state=random_state)
        return _pipeline(clone(estimator), sampler, kind), None
    if name in _WEIGHTS:
        params = _WEIGHTS[name]
        valid = estimator.get_params(deep=False)
        missing = [p for p in params if p not in valid]
        if missing:
            return None, (
                f"{name}: skipped, {type(estimator).__name__} has no "
                f"parameter {missing[0]!r}."
            )
        return _pipeline(clone(estimator).set_params(**params), kind=kind), None
    if name == "threshold":
        if n_classes != 2:
            return None, (
                "threshold: skipped, threshold moving (TunedThresholdClassifierCV) "
                f"applies to binary problems only and y has {n_classes} classes."
            )
        tuned = TunedThresholdClassifierCV(
            _pipeline(clone(estimator), kind=kind),
            # scikit-learn's balanced accuracy, the same floats, without the
            # millisecond of input checks per call: it scores 100 thresholds
            # on each of the 3 inner folds
            scoring=BALANCED_ACCURACY_SCORER,
            cv=3,
            random_state=random_state,
        )
        return tuned, None
    raise ValueError(
        f"Unknown strategy {name!r} in strategies; the built-in strategies are "
        f"{list(BUILTIN_STRATEGIES)}, or pass an imbalanced-learn sampler or an "
        "estimator (a dict gives them names)."
    )


def _auto_name(obj, taken):
    base = type(obj).__name__
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def make_strategies(
    strategies,
    estimator,
    *,
    classes,
    random_state=None,
    class_prior=None,
    input_kind="table",
):
    """Resolve ``strategies`` into named estimators.

    Parameters
    ----------
    strategies : None, str, list or dict
        ``None`` means :data:`DEFAULT_STRATEGIES`. A list holds built-in
        names, imbalanced-learn samplers (run as
        ``StandardScaler -> sampler -> estimator``) and estimators (run as
        given); a dict maps names to any of these.
    estimator : classifier
        The network (or any classifier) the built-in strategies train.
    classes : ndarray
        The class labels of the whole problem.
    random_state : int or None, default=None
        Set on every ``random_state`` parameter left at ``None``, samplers and
        user strategies included.
    class_prior : array-like of shape (n_classes,), default=None
        The class frequencies of the whole problem, which a
        ``'<sampler>+corrected'`` strategy corrects its probabilities back to
        (the estimator only sees the resampled labels); required for those.
    input_kind : str, default='table'
        What ``X`` is, as :func:`input_kind` names it. Anything but
        ``'table'`` drops the ``StandardScaler`` step and runs samplers
        through :class:`~skweighted.resampling.RowSampler`; SMOTE is skipped
        (with a note) for ``'integer array'``, ``'dict'`` and ``'dataset'``.

    Returns
    -------
    strategies : dict
        Name -> unfitted estimator, in the order given.
    notes : list of str
        Why a requested strategy was skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from skweighted.comparison import default_estimator, make_strategies
    >>> strategies, notes = make_strategies(
    ...     ["none", "balanced", "threshold"],
    ...     default_estimator(),
    ...     classes=np.array([0, 1, 2]),
    ... )
    >>> list(strategies)
    ['none', 'balanced']
    >>> notes  # doctest: +ELLIPSIS
    ['threshold: ...']
    """
    if input_kind not in INPUT_KINDS:
        raise ValueError(
            f"input_kind={input_kind!r}; expected one of {list(INPUT_KINDS)}."
        )
    if strategies is None:
        strategies = list(DEFAULT_STRATEGIES)
    elif isinstance(strategies, str):
        strategies = [strategies]
    if isinstance(strategies, dict):
        items = list(strategies.items())
    elif isinstance(strategies, list | tuple):
        items, taken = [], set()
        for obj in strategies:
            name = obj if isinstance(obj, str) else _auto_name(obj, taken)
            taken.add(name)
            items.append((name, obj))
    else:
        raise TypeError(
            "strategies must be None, a strategy name, a list or a dict name -> "
            f"strategy; got {type(strategies).__name__}."
        )
    if not items:
        raise ValueError("strategies is empty; name at least one strategy.")
    if isinstance(estimator, WeightedNeuralNetClassifier) and estimator.classes is None:
        # Every fold's network then has one output per class of the problem.
        estimator = clone(estimator).set_params(classes=classes)

    built, notes = {}, []
    for name, obj in items:
        if isinstance(obj, str):
            strategy, note = _build(
                obj,
                estimator,
                random_state,
                len(classes),
                class_prior,
                kind=input_kind,
            )
        elif _is_sampler(obj):
            strategy, note = _pipeline(clone(estimator), clone(obj), input_kind), None
        elif hasattr(obj, "fit"):
            strategy, note = clone(obj), None
        else:
            raise TypeError(
                f"Strategy {name!r} must be a built-in name, an imbalanced-learn "
                f"sampler or an estimator; got {type(obj).__name__}."
            )
        if strategy is None:
            notes.append(note)
        else:
            built[str(name)] = _seeded(strategy, random_state)
    if not built:
        raise ValueError("No strategy can run on this problem: " + " ".join(notes))
    return built, notes

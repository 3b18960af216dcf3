"""``WeightedNeuralNetClassifier``: the scikit-learn surface.

Parameters, validation, label encoding, class-weight resolution and tags live
here; how a network is trained lives in :mod:`skweighted._net`.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _build, _net
from ._compat import check_sample_weight, validate_data
from ._stacking._session import active_session
from .class_weight import SCHEME_NAMES, WeightingScheme
from .losses._base import n_outputs

__all__ = ["WeightedNeuralNetClassifier"]

#: Prefixed keyword arguments routed to the part of the net they configure.
PREFIXES = (
    "module__",
    "criterion__",
    "optimizer__",
    "iterator_train__",
    "iterator_valid__",
    "callbacks__",
)

_WEIGHT_SPEC = [None, dict, StrOptions(set(SCHEME_NAMES)), WeightingScheme, callable]


class WeightedNeuralNetClassifier(ClassifierMixin, BaseEstimator):
    """A PyTorch network as a scikit-learn classifier, with ``class_weight``.

    Wraps a ``torch.nn.Module`` through skorch. The class weights are
    resolved from the ``y`` that reaches each ``fit`` (after an
    imbalanced-learn sampler, separately in every CV fold) and held by the
    criterion as a float32 ``weight`` buffer on the network's device.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network; it must return one row of logits per sample. ``None``
        builds a :class:`~skweighted.modules.MLP`. A module class whose
        ``__init__`` takes ``n_features_in`` and ``n_classes`` gets them from
        the data unless given as ``module__n_features_in`` /
        ``module__n_classes`` (``n_classes`` is the number of outputs the
        criterion needs: the number of classes, or 1 for a single-logit
        binary loss). An instance is copied at each ``fit`` and trained from
        its current weights.
    class_weight : None, str, dict, WeightingScheme or callable, default=None
        How to weight the classes in the loss:

        - ``None``: every class weighs 1;
        - ``'balanced'``: ``n_samples / (n_classes * np.bincount(y))``,
          identical to :func:`sklearn.utils.class_weight.compute_class_weight`;
        - ``'inverse'``, ``'inverse_sqrt'``, ``'median_frequency'``: see
          :mod:`skweighted.class_weight`;
        - a dict ``{label: weight}`` keyed by the original labels; classes it
          does not mention weigh 1;
        - a :class:`~skweighted.class_weight.WeightingScheme`
          (e.g. ``EffectiveNumber(beta=0.999)``, ``PerBatch('balanced')``,
          ``Deferred(...)``);
        - a callable ``f(y) -> {label: weight}``.

        Resolved at every ``fit`` into ``class_weight_``.
    criterion : torch.nn.Module class or instance, default=None
        The loss. ``None`` means
        :class:`~skweighted.losses.WeightedCrossEntropyLoss`. With
        ``class_weight`` set it must accept a ``weight`` argument (class) or
        hold a ``weight`` buffer (instance); with ``sample_weight`` its
        ``forward`` must accept ``sample_weight``, as every loss in
        :mod:`skweighted.losses` does. A criterion that takes ``class_counts``
        (e.g. :class:`~skweighted.losses.LogitAdjustedLoss`) gets the
        per-class counts of each ``fit``'s ``y`` unless
        ``criterion__class_counts`` is given; one with a ``decision(proba)``
        method (e.g. a cost matrix) picks the class in ``predict``.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        A fused implementation is selected where PyTorch offers one, unless
        ``optimizer__fused`` or ``optimizer__foreach`` is given.
    lr : float, default=0.001
        Learning rate.
    max_epochs : int, default=50
        Number of passes over the training data.
    batch_size : int, default=128
        Training mini-batch size.
    device : str or torch.device, default='cpu'
        Where the module, the criterion (and so its weights) and, when it
        fits, the data live during training.
    train_split : None or callable, default=None
        ``None`` trains on all data, with no hidden validation split (which
        would leak a sampler's oversampled duplicates into validation). Pass
        e.g. ``skorch.dataset.ValidSplit(0.2)`` for a validation loss and
        early stopping.
    callbacks : None, list or 'disable', default=None
        skorch callbacks, e.g. ``[skorch.callbacks.EarlyStopping()]``.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` instead of
        starting again; the class weights are recomputed from the new ``y``.
    verbose : int, default=0
        Print skorch's per-epoch log when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout; two fits with the
        same integer give identical predictions. The caller's global torch
        RNG state is left untouched. ``None`` uses torch's global RNG.
    classes : array-like, default=None
        The full label set. Use it when a training fold can miss a rare
        class: the output layer and the ``predict_proba`` columns then cover
        every class.
    sampler : None, str, dict, WeightingScheme or callable, default=None
        A class-balanced mini-batch sampler: each epoch draws
        ``n_samples`` rows with replacement, row ``i`` with probability
        proportional to the weight of its class under this spec (same forms
        as ``class_weight``; ``'balanced'`` gives every class the same
        expected share, like PyTorch's ``WeightedRandomSampler``).
    **kwargs
        skorch-style prefixed parameters: ``module__*``, ``criterion__*``,
        ``optimizer__*``, ``iterator_train__*``, ``iterator_valid__*``,
        ``callbacks__*``. Returned by ``get_params``, settable by
        ``set_params`` and searchable in ``GridSearchCV``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    class_weight_ : ndarray of shape (n_classes,)
        The class weights used by the last ``fit``, aligned with
        ``classes_``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` was a DataFrame with string column names.
    net_ : skorch.NeuralNet
        The trained skorch net (``net_.module_``, ``net_.criterion_``,
        ``net_.history``).

    Notes
    -----
    The loss of a batch is PyTorch's weighted mean: with per-sample weight
    :math:`v_i = w_{y_i} s_i` (class weight times ``sample_weight``),
    :math:`\\sum_i v_i \\ell_i / \\sum_i v_i`. Multiplying every class weight
    by the same constant therefore changes nothing.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skweighted import WeightedNeuralNetClassifier
    >>> X, y = make_classification(n_samples=300, weights=[0.9], random_state=0)
    >>> clf = WeightedNeuralNetClassifier(
    ...     class_weight="balanced", max_epochs=5, random_state=0
    ... ).fit(X, y)
    >>> clf.class_weight_.round(2)
    array([0.56, 4.84])
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        "module": [None, type, torch.nn.Module],
        "class_weight": _WEIGHT_SPEC,
        "criterion": [None, type, torch.nn.Module],
        "optimizer": [type, callable],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "train_split": [None, callable],
        "callbacks": [None, list, StrOptions({"disable"})],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "classes": [None, "array-like"],
        "sampler": _WEIGHT_SPEC,
    }

    def __init__(
        self,
        module=None,
        *,
        class_weight=None,
        criterion=None,
        optimizer=torch.optim.Adam,
        lr=0.001,
        max_epochs=50,
        batch_size=128,
        device="cpu",
        train_split=None,
        callbacks=None,
        warm_start=False,
        verbose=0,
        random_state=None,
        classes=None,
        sampler=None,
        **kwargs,
    ):
        self.module = module
        self.class_weight = class_weight
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.device = device
        self.train_split = train_split
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.classes = classes
        self.sampler = sampler
        self._kwargs = kwargs

    # -- parameters ----------------------------------------------------------
    def _extra_params(self):
        """The keyword arguments beyond the signature (the prefixed ones)."""
        return dict(getattr(self, "_kwargs", {}))

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._extra_params())
        return params

    def set_params(self, **params):
        named = set(self._get_param_names())
        nested = {}
        extra = self._extra_params()
        for key, value in params.items():
            head, sep, _ = key.partition("__")
            if key in named:
                setattr(self, key, value)
            elif sep and head in named and not key.startswith(PREFIXES):
                nested[key] = value  # e.g. class_weight__beta on a scheme object
            else:
                extra[key] = value  # prefixed; checked at fit
        self._kwargs = extra
        if nested:
            super().set_params(**nested)
        return self

    def _params_for(self, prefix):
        return {
            k[len(prefix) + 2 :]: v
            for k, v in self._extra_params().items()
            if k.startswith(prefix + "__")
        }

    def _check_extra_params(self):
        unknown = sorted(k for k in self._extra_params() if not k.startswith(PREFIXES))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) {unknown}. "
                f"Extra keyword arguments must start with one of {list(PREFIXES)}."
            )

    # -- fit -----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on ``X``, ``y``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data, converted once to float32; never modified.
        y : array-like of shape (n_samples,)
            Labels of any type (strings too). The class weights are resolved
            from these labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, multiplied by the class weight of each sample.

        Returns
        -------
        self : WeightedNeuralNetClassifier
            The fitted estimator.
        """
        self._check_extra_params()
        warm = self.warm_start and hasattr(self, "net_")
        if not warm:  # a fit that fails leaves no stale network behind
            vars(self).pop("net_", None)
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not warm)
        classes, y_enc, counts = self._encode(y, self.classes_ if warm else None)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X)
        plan = _build.make_plan(
            self.class_weight,
            self.sampler,
            classes=classes,
            counts=counts,
            y=y,
            seed=_seed(self.random_state),
        )
        device = _net.resolve_device(self.device)
        if warm:
            net = self.net_
            net.set_params(**self._changed_settings(net))
        else:
            net = self._new_net(len(classes), device)
        session = active_session()  # a search trains many fits at once
        try:
            if session is None or not session.fit(net, plan, X, y_enc, sample_weight):
                _net.train(net, plan, X, y_enc, sample_weight)
        except FloatingPointError:  # diverged: its weights must not predict
            vars(self).pop("net_", None)
            raise
        self.net_ = net
        self.classes_ = classes
        self.class_weight_ = np.array(plan.class_weight)
        return self

    def _encode(self, y, classes=None):
        """Labels -> (classes, codes 0..K-1, counts per class), in one pass.

        ``classes`` is the label set of a warm fit; otherwise the
        ``classes`` parameter, or the labels of ``y``.
        """
        check_classification_targets(y)
        if classes is None and self.classes is None:
            classes, y_enc = np.unique(y, return_inverse=True)
        else:
            if classes is None:
                classes = np.unique(np.asarray(self.classes))
            y_enc = np.searchsorted(classes, y)
            known = np.zeros(len(y), dtype=bool)
            inside = y_enc < len(classes)
            known[inside] = classes[y_enc[inside]] == y[inside]
            if not known.all():
                missing = sorted(set(np.asarray(y)[~known].tolist()), key=str)
                raise ValueError(
                    f"y contains labels {missing!r} that are not in classes="
                    f"{classes.tolist()!r}."
                )
        counts = np.bincount(y_enc, minlength=len(classes))
        if np.count_nonzero(counts) < 2:
            raise ValueError(
                "The training data must contain at least 2 classes, but y contains "
                f"only one class: {np.unique(y).tolist()!r}."
            )
        return classes, y_enc.astype(np.int64), counts

    def _settings(self):
        """The net's settings that a warm fit takes on from the estimator."""
        return {
            "lr": self.lr,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "verbose": self.verbose,
            "criterion": self.criterion,
            **{f"criterion__{k}": v for k, v in self._params_for("criterion").items()},
        }

    def _changed_settings(self, net):
        """The settings that differ from ``net``'s: a warm fit changes only
        those, so an unchanged criterion keeps the optimizer's state (skorch
        re-creates the optimizer with a changed criterion)."""
        return {
            key: value
            for key, value in self._settings().items()
            if not _same(getattr(net, key, _MISSING), value)
        }

    def _new_net(self, n_classes, device):
        module, module_kwargs = _build.module(
            self.module,
            self._params_for("module"),
            self.n_features_in_,
            n_outputs(self.criterion, n_classes),
        )
        routed = {
            f"{prefix}__{k}": v
            for prefix in ("optimizer", "iterator_train", "iterator_valid", "callbacks")
            for k, v in self._params_for(prefix).items()
        }
        routed.setdefault("iterator_train__shuffle", True)
        return _net.WeightedNet(
            module=module,
            optimizer=self.optimizer,
            train_split=self.train_split,
            callbacks=self.callbacks,
            device=str(device),
            **self._settings(),
            **{f"module__{k}": v for k, v in module_kwargs.items()},
            **routed,
        )

    # -- predict -------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        proba = self.net_.predict_proba(X).astype(np.float64)
        # Renormalise in float64: a float32 softmax sums to 1 only within
        # ~1e-7, which scikit-learn's log_loss flags as "not probabilities".
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted labels, in their original form.

        The most probable class, unless the criterion has a
        ``decision(proba)`` method (e.g. the least expected cost of
        :class:`~skweighted.losses.RealWorldWeightCrossEntropyLoss`), which
        then picks the class.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[self.net_.decide(proba)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``.

        Unlike :meth:`sklearn.base.ClassifierMixin.score`, labels that were
        not seen during ``fit`` are an error rather than silently counted as
        wrong: they mean a training split (typically a cross-validation fold)
        missed a class, which ``classes=`` fixes.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels, each of which must be in ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float

        Raises
        ------
        ValueError
            If ``y`` contains a label that is not in ``classes_``.
        """
        check_is_fitted(self)
        known = set(self.classes_.tolist())
        unseen = sorted(set(np.asarray(y).ravel().tolist()) - known, key=str)
        if unseen:
            raise ValueError(
                f"y contains labels {unseen!r} that were not seen during fit "
                f"(classes_={self.classes_.tolist()!r}), so the model can never "
                "predict them. If a training split can miss a class (e.g. a rare "
                "class in a cross-validation fold), pass the full label set as "
                "classes=[...] to the estimator."
            )
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


_MISSING = object()


def _same(a, b):
    """Whether two parameter values are the same (arrays compared by value)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(np.all(a == b))
    except (TypeError, ValueError, RuntimeError):
        return False


def _seed(random_state):
    if random_state is None:
        return None
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

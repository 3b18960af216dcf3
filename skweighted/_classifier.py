"""``WeightedNeuralNetClassifier``: the scikit-learn surface.

Parameters, validation, label encoding, class-weight resolution and tags live
here; how a network is trained lives in :mod:`skweighted._net`.
"""

import difflib
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from . import (
    _build,
    _distributed,
    _early_stopping,
    _fit_rows,
    _inputs,
    _net,
    calibration,
)
from ._compat import HasMethods, Interval, StrOptions
from ._devices import resolve_device
from ._stacking._session import active_session
from .class_weight import SCHEME_NAMES, WeightingScheme, label_counts
from .losses import MultiLabelBCELoss
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

        Resolved at every ``fit`` into ``class_weight_``. For a multi-label
        ``y`` every label is a binary problem of its own: a scheme gives each
        label the positive-class weight (PyTorch's ``pos_weight``) from its
        own counts (``'balanced'``: ``n_negative / n_positive``), and a list
        of ``n_labels`` dicts ``{0: w, 1: w}`` sets both weights per label,
        as scikit-learn's multi-output ``class_weight``; see
        :func:`~skweighted.class_weight.resolve_label_weight` and
        :doc:`/user_guide/multilabel`.
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
        starting again. The next fit is configured exactly as a cold fit
        would be (class weights recomputed from the new ``y``, the new
        ``class_weight``, ``sampler``, ``criterion``, ``criterion__*``,
        ``lr``, ``max_epochs`` and ``batch_size``), while the module, the
        optimizer's state and the epoch count go on: with unchanged settings
        two warm fits train exactly like one fit of twice the epochs
        (:class:`~skweighted.class_weight.Deferred`'s ``start_epoch`` counts
        those epochs too). ``module__*`` and ``optimizer__*`` changes take
        effect at the next cold fit.
    verbose : int, default=0
        Print skorch's per-epoch log when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the sampler and dropout; two
        fits with the same integer give identical predictions, also when
        they run at the same time in threads of one process. Each epoch
        draws its batch order from its own generator. The caller's global
        torch RNG state is left untouched. ``None`` uses torch's global RNG.
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
    correct_proba : bool, default=False
        Whether ``predict_proba`` undoes this estimator's own class weights
        and sampler: a network trained with class weights :math:`w_c`
        estimates :math:`q(c|x) \\propto w_c\\, p(c|x)`, so
        ``predict_proba`` returns :math:`q / w` renormalised, probabilities
        for the class prior of the training data (or ``class_prior``). The
        weights divided by are those of the last epoch trained
        (``Deferred``: uniform before ``start_epoch``) times the sampler's;
        ``PerBatch`` is corrected with ``class_weight_``, approximately (a
        warning says so). ``sample_weight`` is not undone: it defines the
        training distribution. Only the cross-entropy has an exact
        correction; with another loss (focal, cost matrix, logit-adjusted
        training) or class weights set through the criterion, ``fit``
        raises a ``ValueError``. ``predict`` is unchanged: it keeps the
        decision the weighting trained for (the class maximising
        :math:`w_c\\, p(c|x)`), so it is then not the argmax of
        ``predict_proba``. See :func:`skweighted.calibration.unweight_proba`.
    class_prior : None, array-like of shape (n_classes,) or dict, default=None
        With ``correct_proba=True``, the class prior the probabilities are
        for (``None``: the class frequencies of the ``y`` that ``fit``
        receives). Give the prior *before* resampling when an
        imbalanced-learn sampler runs ahead of the estimator in a pipeline:
        the estimator only sees the resampled labels. An array follows the
        order of ``classes_``; a dict maps every label to its prior.
        Normalised to sum 1. Validated, but ignored with
        ``correct_proba=False``, so that a grid can search ``correct_proba``
        with a prior set.
    accumulate_grad_batches : int, default=1
        Mini-batches per optimizer step (gradient accumulation, for a batch
        that does not fit in memory): ``k`` batches of ``batch_size`` train
        exactly as one batch of ``k * batch_size``, the loss of the step
        being normalised by the sum of its weights over all ``k`` batches
        (not the mean of ``k`` per-batch weighted means).
    data_parallel : 'auto' or bool, default='auto'
        Train one model over the processes of a ``torch.distributed``
        process group, through ``DistributedDataParallel``: with ``'auto'``
        whenever a group of more than one process is active (initialised
        by the script, or described by ``torchrun``'s environment);
        ``False`` trains in this process alone; ``True`` requires a group.
        Each process trains on its share of every batch (``batch_size`` is
        per process), the loss is normalised by the global sum of weights,
        and the fitted estimator is an ordinary single-process model. See
        :doc:`/user_guide/distributed`.
    early_stopping : 'auto' or bool, default='auto'
        Whether to hold out ``validation_fraction`` of the rows ``fit``
        receives, score the network on them after every epoch, stop when
        the score has not improved by ``tol`` for ``n_iter_no_change + 1``
        epochs in a row, and restore the weights of the best epoch
        (scikit-learn's ``MLPClassifier`` rule). ``'auto'`` stops early when
        ``fit`` receives at least 1,000 samples (the rule and its
        measurement: :ref:`early-stopping`). The split is stratified (a
        multi-label ``y``: by label set), seeded by ``random_state``, and
        taken before ``resampler`` runs, so validation rows are never
        resampled. ``partial_fit`` never stops early (``True`` is an error
        there). Cannot be combined with ``train_split``.
    validation_fraction : float in (0, 1), default=0.1
        The share of the rows held out for early stopping (rounded up; at
        least one row per class).
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` tolerated before
        stopping (training stops at the ``n_iter_no_change + 1``-th).
    tol : float, default=1e-4
        The smallest improvement of the validation score that counts.
    scoring : str, default='loss'
        The validation score. ``'loss'``: the training criterion on the
        validation rows, class weights (and ``sample_weight``) included, so
        ``class_weight='balanced'`` stops on the balanced loss it minimises
        (its score is the negative loss). Any scikit-learn scorer name
        (``'balanced_accuracy'``, ``'average_precision'``, ...) scores the
        network's predictions on the validation labels instead.
    resampler : imbalanced-learn sampler or None, default=None
        A sampler (``RandomOverSampler``, ``SMOTE``, ...) applied inside
        ``fit`` to the training rows only, after the validation split, on
        every input form (through
        :class:`~skweighted.resampling.RowSampler`): the way to combine
        resampling with early stopping without copies or synthetic
        neighbours of training rows in the validation rows. Cloned and
        seeded by ``random_state`` when its own is unset. Class weights are
        resolved from the resampled labels, as in a pipeline.
    **kwargs
        skorch-style prefixed parameters: ``module__*``, ``criterion__*``,
        ``optimizer__*``, ``iterator_train__*``, ``iterator_valid__*``,
        ``callbacks__*``. Returned by ``get_params``, settable by
        ``set_params`` and searchable in ``GridSearchCV``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (for a multi-label ``y``, the label indices
        ``0 .. n_labels - 1``).
    class_weight_ : ndarray of shape (n_classes,) or (n_labels, 2)
        The class weights used by the last ``fit``, aligned with
        ``classes_``.
    class_prior_ : ndarray of shape (n_classes,)
        The class prior of ``predict_proba`` with ``correct_proba=True``:
        ``class_prior`` normalised, or the class frequencies of the last
        ``fit``'s ``y``.
    n_features_in_ : int
        Number of features seen during ``fit`` (2-D tables only).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` was a DataFrame with string column names.
    input_form_ : str
        The form of ``X`` seen in ``fit``: ``'table'``, ``'array'`` (N-D),
        ``'dict'`` or ``'dataset'`` (see :ref:`inputs`).
    sample_shape_ : tuple, dict or None
        The shape of one sample seen in ``fit``: ``(n_features,)`` for a
        table, e.g. ``(C, H, W)`` for images, ``{key: shape}`` for a dict;
        ``None`` for a Dataset whose items are not arrays. Another shape at
        predict time is a ``ValueError``.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class: of the last ``fit``, or of every chunk
        so far for ``partial_fit``.
    net_ : skorch.NeuralNet
        The trained skorch net (``net_.module_``, ``net_.criterion_``,
        ``net_.history``; with early stopping its ``valid_loss`` column is
        the class-weighted loss, and ``valid_score`` the score stopped on).
    n_iter_ : int
        Epochs the network has trained, warm fits and ``partial_fit`` calls
        included.
    best_iteration_ : int
        The epoch (counted as ``n_iter_``) whose weights the network holds:
        the best one when the last fit stopped early, else the last.
    loss_curve_ : list of float
        The training loss of every epoch (class-weighted, as trained).
    validation_scores_ : list of float or None
        The validation score of every epoch of the last fit (higher is
        better: the negative loss for ``scoring='loss'``); ``None`` when it
        did not stop early.
    best_validation_score_ : float or None
        The best of ``validation_scores_``; ``None`` without early stopping.

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
        "class_weight": [*_WEIGHT_SPEC, list],
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
        "correct_proba": ["boolean"],
        "class_prior": [None, "array-like", dict],
        "accumulate_grad_batches": [Interval(Integral, 1, None, closed="left")],
        "data_parallel": [StrOptions({"auto"}), "boolean"],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "scoring": [StrOptions({"loss"}), str],
        "resampler": [None, HasMethods(["fit_resample"])],
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
        correct_proba=False,
        class_prior=None,
        accumulate_grad_batches=1,
        data_parallel="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        scoring="loss",
        resampler=None,
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
        self.correct_proba = correct_proba
        self.class_prior = class_prior
        self.accumulate_grad_batches = accumulate_grad_batches
        self.data_parallel = data_parallel
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.scoring = scoring
        self.resampler = resampler
        _check_routed(self, kwargs, "__init__")
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
                _check_routed(self, {key: value}, "set_params")
                extra[key] = value  # routed to a part of the net; checked at fit
        self._kwargs = extra
        if nested:
            super().set_params(**nested)
        return self

    def __getstate__(self):
        state = super().__getstate__()
        if "callbacks" in state:  # print sinks by name (see _net.named_sinks)
            state["callbacks"] = _net.named_sinks(state["callbacks"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        _net.restore_sinks(self.__dict__.get("callbacks"))

    def _params_for(self, prefix):
        return {
            k[len(prefix) + 2 :]: v
            for k, v in self._extra_params().items()
            if k.startswith(prefix + "__")
        }

    # -- fit -----------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the network on ``X``, ``y``.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or torch Dataset
            Training data in any form of :ref:`inputs`: a 2-D table, an N-D
            array (images ``(N, C, H, W)``, sequences), an integer array
            (token ids, ``uint8`` images), a dict of arrays (skorch
            ``SliceDict``) for a module whose ``forward`` takes those names,
            or a ``torch.utils.data.Dataset`` (skorch ``SliceDataset``).
            Floating arrays are converted once to float32; integer and
            boolean arrays keep their dtype; never modified.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Labels of any type (strings too), or a multi-label 0/1 indicator
            matrix (scikit-learn's multilabel format; the network then gets
            one output and a binary cross-entropy per label,
            :class:`~skweighted.losses.MultiLabelBCELoss`). The class weights
            are resolved from these labels. ``None`` only for a Dataset whose
            items are ``(X, y)`` pairs: the labels are then read from it once.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, multiplied by the class weight of each sample.

        Returns
        -------
        self : WeightedNeuralNetClassifier
            The fitted estimator.
        """
        warm = self.warm_start and hasattr(self, "net_")
        if not warm:  # a fit that fails leaves no stale network behind
            vars(self).pop("net_", None)
        multilabel = _is_multilabel(y)
        if warm and multilabel != self._multilabel():
            raise ValueError(
                "warm_start=True: the network was trained on a "
                f"{'multi-label' if self._multilabel() else 'single-label'} y, "
                "but this y is "
                f"{'multi-label' if multilabel else 'single-label'}; a warm fit "
                "needs the same kind of target (set warm_start=False)."
            )
        data = self._validate_fit(X, y, warm, multilabel)
        if multilabel:
            classes, y_enc, counts = self._encode_multilabel(data.y, warm)
        else:
            classes, y_enc, counts = self._encode(
                data.y, self.classes_ if warm else None
            )
        return self._train(
            data, classes, y_enc, counts, sample_weight, warm, multilabel=multilabel
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None, sample_weight=None):
        """Train one epoch on a chunk of data, going on from the previous chunks.

        scikit-learn's incremental-learning protocol, for data that arrives
        in chunks or does not fit in memory: the first call builds the
        network, every call trains it for one epoch over its chunk (whatever
        ``max_epochs`` says) and keeps its optimizer state. ``X`` takes every
        form :meth:`fit` takes.

        ``class_weight`` and ``sampler`` are resolved at each call from the
        **running class counts**, the counts of every chunk so far, this one
        included (``class_counts_``): ``'balanced'`` after chunks
        :math:`y_1, \\dots, y_t` gives the weights that ``fit`` on their
        concatenation would give, :math:`n / (K n_c)` over all the samples
        seen (a class not seen yet weighs 1 until it is). So a class that is
        rare overall stays up-weighted in a chunk where it happens to be
        common, and the weights settle as the counts grow. (scikit-learn's
        ``SGDClassifier`` refuses ``'balanced'`` in ``partial_fit``; a dict
        is used as it is, and a callable is called with the chunk's labels.)

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or torch Dataset
            One chunk, in the form of the first chunk.
        y : array-like of shape (n_samples,), default=None
            Its labels, each in ``classes``; ``None`` for a Dataset of
            ``(X, y)`` pairs.
        classes : array-like of shape (n_classes,), default=None
            Every label of the problem. Required on the first call (unless
            the ``classes`` parameter is set); later calls may omit it or
            repeat the same set.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the chunk.

        Returns
        -------
        self : WeightedNeuralNetClassifier
            The estimator, trained on one more chunk.

        Examples
        --------
        >>> import numpy as np
        >>> from skweighted import WeightedNeuralNetClassifier
        >>> rng = np.random.default_rng(0)
        >>> clf = WeightedNeuralNetClassifier(class_weight="balanced", random_state=0)
        >>> for chunk in range(3):
        ...     X = rng.normal(size=(100, 4))
        ...     y = (X[:, 0] > 1).astype(int)
        ...     clf = clf.partial_fit(X, y, classes=[0, 1])
        >>> int(clf.class_counts_.sum()), len(clf.net_.history)
        (300, 3)
        """
        if _is_multilabel(y):
            raise ValueError(
                "partial_fit takes one label per sample; a multi-label y trains "
                "with fit."
            )
        first = not hasattr(self, "net_")
        classes = self._partial_classes(classes, first)
        data = self._validate_fit(X, y, not first)
        classes, y_enc, counts = self._encode(data.y, classes, min_classes=1)
        if not first:
            counts = counts + self.class_counts_
        return self._train(
            data, classes, y_enc, counts, sample_weight, warm=not first, epochs=1
        )

    def _partial_classes(self, classes, first):
        if classes is None and first:
            classes = self.classes
        if classes is None:
            if first:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(every label of the problem, e.g. classes=np.unique(y_all)), "
                    "or set the classes parameter."
                )
            return self.classes_
        classes = np.unique(np.asarray(classes))
        if len(classes) < 2:
            raise ValueError(
                f"classes={classes.tolist()!r}: a classifier needs at least 2 classes."
            )
        if not first and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"classes={classes.tolist()!r} is not the label set of the first "
                f"call to partial_fit ({self.classes_.tolist()!r})."
            )
        return classes

    def _validate_fit(self, X, y, warm, multilabel=False):
        """Validate ``X``, ``y`` (:mod:`skweighted._inputs`); a warm fit must
        see the form and sample shape of the first."""
        data = _inputs.validate_fit(
            self, X, y, reset=not warm, module=self.module, multi_output=multilabel
        )
        if warm and data.form != "table" and data.sample_shape != self.sample_shape_:
            raise ValueError(
                f"X has samples of shape {data.sample_shape}, but the network was "
                f"fitted on samples of shape {self.sample_shape_}; a warm_start "
                "fit or partial_fit needs the same input shape."
            )
        return data

    def _train(
        self,
        data,
        classes,
        y_enc,
        counts,
        sample_weight,
        warm,
        epochs=None,
        multilabel=False,
    ):
        """Split, resample, plan, build or reuse the net, train; set the
        fitted attributes. ``epochs`` is set by ``partial_fit`` only."""
        sample_weight = _inputs.validate_sample_weight(sample_weight, len(y_enc))
        criterion = self._criterion(multilabel)
        seed = _seed(self.random_state)
        group = _distributed.process_group(self.data_parallel, self.device)
        if group is None:
            device = resolve_device(self.device)
        else:  # every process checks its setup; all fail together
            device, seed = _distributed.agree(
                group,
                device=self.device,
                seed=seed,
                labels=(classes, y_enc, sample_weight),
                sampler=self._params_for("iterator_train").get("sampler"),
            )
        rows = self._fit_rows(data, classes, y_enc, sample_weight, seed, epochs)
        if rows.y is not y_enc or rows.train is not None:  # counts of what trains
            y_train = rows.y if rows.train is None else rows.y[rows.train]
            counts = (
                label_counts(y_train)
                if multilabel
                else np.bincount(y_train, minlength=len(classes))
            )
        else:
            y_train = y_enc
        make_plan = _build.make_multilabel_plan if multilabel else _build.make_plan
        plan = make_plan(
            self.class_weight,
            self.sampler,
            classes=classes,
            counts=counts,
            y=y_train if multilabel else classes[y_train],
            seed=seed,
        )
        if rows.train is not None:
            plan = replace(
                plan,
                validation=_early_stopping.Validation(
                    train=rows.train,
                    valid=rows.valid,
                    scoring=self.scoring,
                    n_iter_no_change=self.n_iter_no_change,
                    tol=self.tol,
                ),
            )
        class_prior = self._class_prior(plan, multilabel)
        if warm:
            net = self.net_
            net.set_params(**self._changed_settings(net, criterion))
        else:
            net = self._new_net(len(classes), device, data.sample_shape, criterion)
        X, y, sample_weight = rows.X, rows.y, rows.sample_weight
        _net.initialize(net, plan, X)
        if self.correct_proba:
            net.check_proba_correction()
        session = active_session()  # a search trains many fits at once
        try:
            stacked = (
                session is not None
                and epochs is None
                and group is None
                and self.accumulate_grad_batches == 1
                and session.fit(net, plan, X, y, sample_weight)
            )
            if not stacked:
                _net.train(
                    net,
                    plan,
                    X,
                    y,
                    sample_weight,
                    epochs=epochs,
                    group=group,
                    accumulate=self.accumulate_grad_batches,
                )
        except FloatingPointError:  # diverged: its weights must not predict
            vars(self).pop("net_", None)
            raise
        self.net_ = net
        self.classes_ = classes
        self.class_weight_ = np.array(plan.class_weight)
        self.class_counts_ = np.array(counts)
        self.input_form_ = data.form
        self.sample_shape_ = data.sample_shape
        self.class_prior_ = class_prior
        self._set_curves(net)
        if multilabel:
            self._y_dtype = data.y.dtype.str  # a string: skops files trust those
        return self

    def _fit_rows(self, data, classes, y_enc, sample_weight, seed, epochs):
        """The validation split and the resampler, checked before training
        (see :mod:`skweighted._fit_rows`)."""
        incremental = epochs is not None
        if incremental and self.early_stopping is True:
            raise ValueError(
                "partial_fit does not stop early: each call trains one epoch on "
                "its chunk, with no validation rows. Set early_stopping=False (or "
                "'auto', which partial_fit reads as False), or use fit."
            )
        if incremental and self.resampler is not None:
            raise ValueError(
                "resampler= resamples the rows of a fit; partial_fit trains on "
                "each chunk as given. Resample the chunks yourself, or use fit."
            )
        stop = not incremental and _early_stopping.resolve(
            self.early_stopping, len(y_enc)
        )
        if stop and self.train_split is not None:
            raise ValueError(
                f"early_stopping={self.early_stopping!r} holds out its own "
                "validation rows, and train_split is given as well. Use one: "
                "early_stopping=False to keep train_split (and skorch's "
                "callbacks), or train_split=None."
            )
        if stop and self.scoring != "loss":
            from sklearn.metrics import get_scorer

            get_scorer(self.scoring)  # an unknown name: scikit-learn's ValueError
        train, valid = _fit_rows.split_rows(
            y_enc,
            early_stopping=stop and self.early_stopping,
            fraction=self.validation_fraction,
            seed=seed,
            classes=classes,
        )
        return _fit_rows.fit_rows(
            data.X,
            y_enc,
            sample_weight,
            train=train,
            valid=valid,
            resampler=self.resampler,
            seed=seed,
            classes=classes,
        )

    def _set_curves(self, net):
        """``n_iter_``, ``best_iteration_``, the loss curve and the validation
        scores of the net's last training (:meth:`WeightedNet.curves`)."""
        for name, value in net.curves().items():
            setattr(self, name + "_", value)

    def _multilabel(self):
        """Whether the fitted network predicts a multi-label indicator matrix
        (whose per-label weights ``class_weight_`` have shape (n_labels, 2))."""
        return np.ndim(self.class_weight_) == 2

    def _criterion(self, multilabel):
        """The criterion parameter for this kind of ``y`` (the default is
        :class:`~skweighted.losses.MultiLabelBCELoss` for a multi-label one)."""
        criterion = self.criterion
        if criterion is None:
            return MultiLabelBCELoss if multilabel else None
        if multilabel != bool(getattr(criterion, "multilabel", False)):
            name = getattr(criterion, "__name__", type(criterion).__name__)
            if multilabel:
                raise ValueError(
                    f"y is a multi-label indicator matrix, but criterion={name} "
                    "is a single-label loss. Use criterion=None (MultiLabelBCELoss) "
                    "or a criterion whose `multilabel` attribute is True."
                )
            raise ValueError(
                f"criterion={name} is a multi-label loss, but y holds one label "
                "per sample. Pass a 0/1 indicator matrix of shape "
                "(n_samples, n_labels), or a single-label criterion."
            )
        return criterion

    def _encode_multilabel(self, y, warm):
        """Indicator matrix -> (label indices, int64 matrix, [neg, pos] counts)."""
        if sp.issparse(y):
            y = y.toarray()
        kind = type_of_target(y, input_name="y")
        if kind != "multilabel-indicator":
            raise ValueError(
                f"y is 2-D with {y.shape[1]} columns, so it is read as a "
                "multi-label indicator matrix, but it is not one (scikit-learn's "
                f"type_of_target: {kind!r}). A multi-label y holds only 0 and 1, "
                "1 where the label applies; other multi-output targets are not "
                "supported."
            )
        if self.classes is not None:
            raise ValueError(
                "classes= lists the labels of a single-label y; a multi-label y "
                "names its labels by column (classes_ is 0 .. n_labels - 1)."
            )
        if warm and y.shape[1] != len(self.classes_):
            raise ValueError(
                f"warm_start=True: the network predicts {len(self.classes_)} "
                f"labels, but y has {y.shape[1]} columns."
            )
        return np.arange(y.shape[1]), y.astype(np.int64), label_counts(y)

    def _class_prior(self, plan, multilabel=False):
        """Check ``correct_proba`` / ``class_prior`` for the labels; the prior
        that corrected probabilities are for (None for a multi-label ``y``,
        whose labels are each their own binary problem). Whether the
        criterion can be undone is asked of the net once it is built."""
        if multilabel:
            if self.correct_proba or self.class_prior is not None:
                raise ValueError(
                    "correct_proba and class_prior apply to a single-label y; "
                    "for a multi-label y leave them at their defaults."
                )
            return None
        return calibration._resolve_class_prior(
            self.class_prior, plan.classes, plan.counts
        )

    def _encode(self, y, classes=None, min_classes=2):
        """Labels -> (classes, codes 0..K-1, counts per class), in one pass.

        ``classes`` is the label set of a warm fit (or of ``partial_fit``);
        otherwise the ``classes`` parameter, or the labels of ``y``. ``y``
        must hold at least ``min_classes`` of them (a chunk of
        ``partial_fit`` may hold one).
        """
        if not _small_codes(y):  # 1-D integers are always class labels
            check_classification_targets(y)
        if classes is None and self.classes is None:
            classes, y_enc = _unique_inverse(y)
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
        if np.count_nonzero(counts) < min_classes:
            raise ValueError(
                "The training data must contain at least 2 classes, but y contains "
                f"only one class: {np.unique(y).tolist()!r}."
            )
        return classes, y_enc.astype(np.int64), counts

    def _settings(self, criterion):
        """The net's settings that a warm fit takes on from the estimator."""
        return {
            "lr": self.lr,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "verbose": self.verbose,
            "criterion": criterion,
            **{f"criterion__{k}": v for k, v in self._params_for("criterion").items()},
        }

    def _changed_settings(self, net, criterion):
        """The settings that differ from ``net``'s: a warm fit changes only
        those, so an unchanged criterion keeps the optimizer's state (skorch
        re-creates the optimizer with a changed criterion)."""
        return {
            key: value
            for key, value in self._settings(criterion).items()
            if not _same(getattr(net, key, _MISSING), value)
        }

    def _new_net(self, n_classes, device, sample_shape, criterion):
        module, module_kwargs = _build.module(
            self.module,
            self._params_for("module"),
            sample_shape,
            n_outputs(criterion, n_classes),
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
            **self._settings(criterion),
            **{f"module__{k}": v for k, v in module_kwargs.items()},
            **routed,
        )

    # -- predict -------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities, one column per entry of ``classes_``.

        The network's probabilities; with ``correct_proba=True``, those with
        this fit's class weights and sampler undone, for the class prior
        ``class_prior_``.

        For a multi-label ``y``, the probability of each label (of its
        positive class) on its own, shape ``(n_samples, n_labels)``; the rows
        do not sum to 1. This is the format of scikit-learn's
        ``MLPClassifier`` for multi-label targets.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or torch Dataset
            Samples of the shape seen in ``fit`` (``sample_shape_``); a
            Dataset's labels, if any, are ignored.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
        """
        proba = self._network_proba(X)
        if not self.correct_proba:
            return proba
        weight = self.net_.proba_correction(self.class_prior_)
        return calibration.unweight_proba(proba, weight)

    def _network_proba(self, X):
        """The network's own probabilities (float64, rows summing to 1)."""
        check_is_fitted(self)
        X = _inputs.validate_predict(self, X)
        proba = self.net_.predict_proba(X).astype(np.float64)
        if self._multilabel():  # one probability per label, no sum to 1
            return proba
        # Renormalise in float64: a float32 softmax sums to 1 only within
        # ~1e-7, which scikit-learn's log_loss flags as "not probabilities".
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted labels, in their original form.

        The most probable class under the network's own (weighted)
        probabilities, unless the criterion has a ``decision(proba)`` method
        (e.g. the least expected cost of
        :class:`~skweighted.losses.RealWorldWeightCrossEntropyLoss`), which
        then picks the class. ``correct_proba`` does not change it.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or torch Dataset
            As in :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            For a multi-label ``y``, the indicator matrix (a label is predicted
            where its probability exceeds 0.5), with the dtype of the training
            ``y``.
        """
        proba = self._network_proba(X)
        if self._multilabel():
            return self.net_.decide(proba).astype(self._y_dtype)
        return self.classes_[self.net_.decide(proba)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``.

        Unlike :meth:`sklearn.base.ClassifierMixin.score`, labels that were
        not seen during ``fit`` are an error rather than silently counted as
        wrong: they mean a training split (typically a cross-validation fold)
        missed a class, which ``classes=`` fixes.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or torch Dataset
            As in :meth:`predict_proba`.
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
        if self._multilabel():  # subset accuracy, as scikit-learn's
            return super().score(X, y, sample_weight=sample_weight)
        y = _inputs.labels(y)
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
        tags.classifier_tags.multi_label = True
        return tags


_MISSING = object()


def _check_routed(estimator, kwargs, where):
    """Refuse a keyword that is neither a parameter nor routed by a prefix
    of :data:`PREFIXES`, naming the closest parameters (scikit-learn's
    ``set_params`` refuses one too)."""
    unknown = [k for k in kwargs if not k.startswith(PREFIXES)]
    if not unknown:
        return
    names = estimator._get_param_names()
    close = difflib.get_close_matches(unknown[0].partition("__")[0], names, n=3)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    error = TypeError if where == "__init__" else ValueError
    raise error(
        f"{type(estimator).__name__}.{where}() got an unknown parameter "
        f"{unknown[0]!r}.{hint} Valid parameters: {', '.join(names)}, and the "
        f"prefixed ones routed to the net: {', '.join(p + '*' for p in PREFIXES)}."
    )


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


def _is_multilabel(y):
    """Whether ``y`` has the shape of a multi-label indicator matrix (2-D, more
    than one column); ragged sequences get scikit-learn's explanation."""
    shape = getattr(y, "shape", None)
    if shape is None:
        try:
            shape = np.asarray(y).shape
        except ValueError:
            type_of_target(y, input_name="y")  # "legacy multi-label ..." error
            raise
    return len(shape) == 2 and shape[1] > 1


def _seed(random_state):
    if random_state is None:
        return None
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _small_codes(y):
    """Whether ``y`` is 1-D, of non-negative integers below ``4 * len(y)``:
    labels that :func:`_unique_inverse` encodes by counting."""
    return (
        y.ndim == 1
        and y.dtype.kind in "iu"
        and len(y) > 0
        and y.min() >= 0
        and y.max() < 4 * len(y)
    )


def _unique_inverse(y):
    """``np.unique(y, return_inverse=True)``; for small non-negative integer
    labels through ``np.bincount``, several times faster (a search runs
    this for every fit)."""
    if not _small_codes(y):
        return np.unique(y, return_inverse=True)
    present = np.bincount(y) > 0
    codes = np.cumsum(present) - 1
    return np.flatnonzero(present).astype(y.dtype), codes[y]

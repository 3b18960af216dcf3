r"""Class-balanced samplers for any PyTorch ``DataLoader``, in one or many processes.

A class-balanced sampler draws the rows of an epoch with replacement, row
:math:`i` with probability proportional to :math:`w_{y_i}`, the weight of its
class under a weighting spec (the same forms as the estimator's
``class_weight``, resolved by
:func:`~skweighted.class_weight.resolve_class_weight`). With
``'balanced'`` every class gets the same expected share of each epoch.

- :class:`ClassBalancedSampler` is a :class:`torch.utils.data.Sampler` for one
  process, a drop-in replacement for PyTorch's ``WeightedRandomSampler`` that
  computes the weights itself and gives reproducible epochs.
- :class:`DistributedClassBalancedSampler` has the interface of
  :class:`torch.utils.data.distributed.DistributedSampler` (``num_replicas``,
  ``rank``, ``seed``, ``drop_last``, ``set_epoch``): every process computes
  the same weighted draw of the epoch and takes a disjoint share of it.
- :func:`draw_indices` is the one weighted draw behind both, and behind the
  estimator's ``sampler=``.

Epochs are reproducible on their own: with a seed :math:`s`, epoch :math:`e`
draws from a fresh ``torch.Generator`` seeded by :func:`epoch_seed`
(:math:`s`, :math:`e`), so its order does not depend on what was drawn
before, or in which process.
"""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils.multiclass import type_of_target

from .class_weight import SCHEME_NAMES, Deferred, PerBatch, resolve_from_counts

__all__ = [
    "ClassBalancedSampler",
    "DistributedClassBalancedSampler",
    "draw_indices",
    "epoch_seed",
]

#: ``torch.multinomial`` refuses more categories than this; larger inputs are
#: drawn by inverse transform sampling (with replacement) or exponential keys
#: (without).
_MULTINOMIAL_MAX_ROWS = 2**24


def draw_indices(weights, num_samples, *, replacement=True, generator=None):
    """Draw row indices with probability proportional to ``weights``.

    The one weighted draw of skweighted: the samplers of this module and the
    estimator's ``sampler=`` all call it. Up to :math:`2^{24}` rows it is
    ``torch.multinomial(weights, num_samples, replacement, generator=...)``
    on float64 weights; beyond (where ``torch.multinomial`` refuses) it uses
    inverse transform sampling with replacement and exponential keys
    (Efraimidis & Spirakis, 2006) without, which draw from the same
    distributions.

    Parameters
    ----------
    weights : Tensor or array-like of shape (n_rows,)
        Non-negative, finite weights, not all zero; they need not sum to 1.
    num_samples : int
        How many indices to draw. Without replacement, at most the number of
        rows with a positive weight.
    replacement : bool, default=True
        Draw with replacement (a row can appear several times).
    generator : torch.Generator or None, default=None
        The source of randomness (a CPU generator); ``None`` uses torch's
        global generator.

    Returns
    -------
    indices : LongTensor of shape (num_samples,)
        Row indices in ``[0, n_rows)``.

    Raises
    ------
    ValueError
        For weights that are not 1-D, negative, non-finite or all zero, or a
        ``num_samples`` that is negative or, without replacement, larger than
        the number of rows with a positive weight.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> idx = draw_indices(torch.tensor([0.0, 1.0, 3.0]), 1000, generator=g)
    >>> torch.bincount(idx, minlength=3).tolist()  # about 0 : 250 : 750
    [0, 254, 746]
    """
    w = torch.as_tensor(weights).detach().to("cpu", torch.float64)
    if w.ndim != 1 or len(w) == 0:
        raise ValueError(
            f"weights must be a non-empty 1-D array, got shape {tuple(w.shape)}."
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("weights must be finite and non-negative.")
    n_positive = int(torch.count_nonzero(w))
    if n_positive == 0:
        raise ValueError("weights are zero for every row; one must be positive.")
    if not isinstance(num_samples, Integral) or num_samples < 0:
        raise ValueError(f"num_samples must be an int >= 0, got {num_samples!r}.")
    num_samples = int(num_samples)
    if not replacement and num_samples > n_positive:
        raise ValueError(
            f"num_samples={num_samples} draws without replacement, but only "
            f"{n_positive} rows have a positive weight; pass replacement=True "
            "or a smaller num_samples."
        )
    if num_samples == 0:
        return torch.empty(0, dtype=torch.int64)
    if len(w) <= _MULTINOMIAL_MAX_ROWS:
        return torch.multinomial(w, num_samples, replacement, generator=generator)
    if replacement:  # inverse transform sampling on the cumulative weights
        cdf = torch.cumsum(w, 0)
        u = torch.rand(num_samples, generator=generator, dtype=torch.float64)
        idx = torch.searchsorted(cdf, u * cdf[-1], right=True)
        return idx.clamp_(max=len(w) - 1)
    # exponential keys: the num_samples largest log(u) / w, zero weights never
    u = torch.rand(len(w), generator=generator, dtype=torch.float64)
    keys = torch.log(u) / w
    return torch.topk(keys, num_samples).indices


#: The random streams of one epoch: the row order (what the samplers draw)
#: and, in the estimator, torch's global generator for dropout.
ORDER, GLOBAL = 0, 1


def epoch_seed(seed, epoch, stream=ORDER):
    """The seed of epoch ``epoch`` of a run seeded with ``seed``.

    The samplers here and the estimator's fits derive every epoch's
    generator from this one function: epoch ``e`` of a run with seed ``s``
    draws its order from ``torch.Generator().manual_seed(epoch_seed(s, e))``.
    So ``ClassBalancedSampler(y, spec, seed=s)`` draws, in epoch ``e``, the
    rows the estimator's ``sampler=spec`` draws in epoch ``e`` of a fit whose
    seed is ``s``. Different ``(seed, epoch)`` pairs give unrelated streams
    (unlike ``seed + epoch``, where seed 0's second epoch would repeat seed
    1's first): the numbers go through NumPy's ``SeedSequence``.

    Parameters
    ----------
    seed : int
        The run's seed, ``>= 0``.
    epoch : int
        The epoch, counted from 0.
    stream : int, default=0
        Which of the epoch's random streams: 0 for the row order.

    Returns
    -------
    seed : int
        A seed in ``[0, 2**64)`` for ``torch.Generator.manual_seed``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(epoch_seed(42, 0))
    >>> epoch_seed(42, 0) == epoch_seed(42, 0) != epoch_seed(42, 1)
    True
    """
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)
    return int(state[0])


def _epoch_generator(seed, epoch):
    return torch.Generator().manual_seed(epoch_seed(seed, epoch))


def check_sampling_spec(spec, name):
    """Refuse the weighting specs a sampler cannot use (schedules)."""
    if isinstance(spec, PerBatch | Deferred):
        raise ValueError(
            f"{name}={spec!r}: PerBatch and Deferred schedule the class weights "
            "of the loss; a sampler needs fixed per-class weights (a scheme "
            f"name from {list(SCHEME_NAMES)}, a dict, InversePower, "
            "EffectiveNumber or a callable)."
        )


def _check_int(name, value, low):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def _labels(labels):
    """Labels (array, list, Series or tensor) as a 1-D NumPy array, validated."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(
            "labels must be 1-D, one class label per row, got an array of shape "
            f"{y.shape}. Multi-label targets are not supported by the samplers."
        )
    if len(y) == 0:
        raise ValueError("labels is empty; a sampler needs at least one row.")
    kind = type_of_target(y, input_name="labels")
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"labels must be class labels (binary or multiclass), got {kind!r} targets."
        )
    return y


class _ClassWeightedRows:
    """The part both samplers share: labels + spec -> per-row weights."""

    def _init_weights(self, labels, class_weight):
        y = _labels(labels)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        check_sampling_spec(class_weight, "class_weight")
        counts = np.bincount(y_enc, minlength=len(self.classes_))
        self.class_weight_ = resolve_from_counts(class_weight, counts, self.classes_, y)
        self.weights = torch.from_numpy(self.class_weight_[y_enc])
        self._n_positive = int(torch.count_nonzero(self.weights))

    def set_epoch(self, epoch):
        """Make the next iteration draw epoch ``epoch``.

        Parameters
        ----------
        epoch : int
            The epoch, counted from 0.
        """
        self.epoch = _check_int("epoch", epoch, 0)

    def _next_epoch(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        return epoch


class ClassBalancedSampler(_ClassWeightedRows, torch.utils.data.Sampler):
    """Draw class-balanced epochs for a ``DataLoader`` in one process.

    Row :math:`i` is drawn with probability proportional to :math:`w_{y_i}`,
    the weight of its class under ``class_weight``; class :math:`c` then makes
    up a share :math:`w_c n_c / \\sum_k w_k n_k` of each epoch in expectation
    (:math:`1/K` each with ``'balanced'``). It replaces PyTorch's
    ``WeightedRandomSampler`` without computing per-row weights by hand.

    Each iteration draws one epoch and moves on to the next, so a loop that
    never calls :meth:`set_epoch` gets epochs 0, 1, 2, ...; one that does gets
    the epoch it asks for. With a ``seed``, epoch :math:`e`'s order depends
    only on the seed and :math:`e`.

    Parameters
    ----------
    labels : array-like or Tensor of shape (n_rows,)
        The class label of every row of the dataset, in dataset order.
    class_weight : None, str, dict, WeightingScheme or callable, default="balanced"
        The weight of each class, in any form the estimator's
        ``class_weight`` accepts, resolved on ``labels`` by
        :func:`~skweighted.class_weight.resolve_class_weight` (a dict is keyed
        by the labels themselves). ``None`` draws every row with the same
        probability. :class:`~skweighted.class_weight.PerBatch` and
        :class:`~skweighted.class_weight.Deferred` are refused.
    num_samples : int or None, default=None
        Rows per epoch; ``None`` means ``len(labels)``.
    replacement : bool, default=True
        Draw with replacement. Without, an epoch holds distinct rows and
        ``num_samples`` may not exceed the number of rows whose class weighs
        more than 0.
    generator : torch.Generator or None, default=None
        Draw from this generator, advancing its state, as
        ``WeightedRandomSampler`` does; an epoch's order then depends on the
        epochs drawn before it, and :meth:`set_epoch` does not change it.
        Cannot be combined with ``seed``.
    seed : int or None, default=None
        Seed of the epochs: epoch :math:`e` draws from a generator seeded with
        ``epoch_seed(seed, e)``. ``None`` (and no ``generator``) draws a seed
        from torch's global generator when the sampler is built, so
        ``torch.manual_seed`` makes the run reproducible.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted unique labels.
    class_weight_ : ndarray of shape (n_classes,)
        The resolved weight of each class, aligned with ``classes_``.
    weights : Tensor of shape (n_rows,), dtype float64
        The weight of each row, ``class_weight_`` of its label.
    epoch : int
        The epoch the next iteration draws.

    See Also
    --------
    DistributedClassBalancedSampler : The same draw shared among processes.
    skweighted.WeightedNeuralNetClassifier : Its ``sampler=`` draws the same way.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> y = np.array([0] * 90 + [1] * 10)
    >>> X = torch.randn(100, 3)
    >>> sampler = ClassBalancedSampler(y, "balanced", seed=0)
    >>> sampler.class_weight_
    array([0.55555556, 5.        ])
    >>> loader = DataLoader(TensorDataset(X, torch.from_numpy(y)), batch_size=20,
    ...                     sampler=sampler)
    >>> for epoch in range(3):
    ...     sampler.set_epoch(epoch)
    ...     n_rare = sum(int(yb.sum()) for _, yb in loader)
    ...     print(f"epoch {epoch}: {n_rare} of 100 rows are class 1")
    epoch 0: 47 of 100 rows are class 1
    epoch 1: 51 of 100 rows are class 1
    epoch 2: 44 of 100 rows are class 1
    """

    def __init__(
        self,
        labels,
        class_weight="balanced",
        *,
        num_samples=None,
        replacement=True,
        generator=None,
        seed=None,
    ):
        self._init_weights(labels, class_weight)
        n = len(self.weights)
        self.num_samples = n if num_samples is None else num_samples
        _check_int("num_samples", self.num_samples, 1)
        self.replacement = bool(replacement)
        if not self.replacement and self.num_samples > self._n_positive:
            raise ValueError(
                f"num_samples={self.num_samples} rows without replacement, but "
                f"only {self._n_positive} rows have a class weight above 0."
            )
        if generator is not None and seed is not None:
            raise ValueError(
                "Pass a generator or a seed, not both: the generator's state "
                "advances from epoch to epoch, the seed fixes each epoch."
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {generator!r}."
            )
        if seed is None and generator is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        self.generator = generator
        self.seed = None if seed is None else _check_int("seed", seed, 0)
        self.epoch = 0

    set_epoch = _ClassWeightedRows.set_epoch  # documented on this class's page

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        epoch = self._next_epoch()
        g = self.generator if self.seed is None else _epoch_generator(self.seed, epoch)
        idx = draw_indices(
            self.weights, self.num_samples, replacement=self.replacement, generator=g
        )
        return iter(idx.tolist())


class DistributedClassBalancedSampler(_ClassWeightedRows, torch.utils.data.Sampler):
    """Share each class-balanced epoch among the processes of a distributed run.

    Every process builds the sampler from the same labels, spec and ``seed``,
    so every process computes the same weighted draw of the epoch (see
    :class:`ClassBalancedSampler` for the draw). Process ``rank`` takes the
    positions ``rank, rank + num_replicas, ...`` of it: the shares are
    disjoint, together they are the whole draw, and all have
    ``num_samples`` rows, as with PyTorch's ``DistributedSampler``, whose
    interface this is.

    Equal lengths: with replacement (the default) the epoch simply draws
    ``num_samples * num_replicas`` rows, so nothing is repeated or dropped to
    even out the shares; ``drop_last`` only chooses the default
    ``num_samples``, ``ceil(len(labels) / num_replicas)`` or, with
    ``drop_last=True``, ``floor(len(labels) / num_replicas)``. Without
    replacement the draw holds at most the ``n_pos`` rows whose class weighs
    more than 0; the default ``num_samples`` is ``ceil(n_pos / num_replicas)``
    and the draw is padded to a multiple of ``num_replicas`` by repeating its
    first rows (``DistributedSampler``'s rule), or ``floor(n_pos /
    num_replicas)`` with ``drop_last=True``, which needs no padding.

    As with :class:`ClassBalancedSampler`, each iteration draws one epoch and
    moves on to the next; call :meth:`set_epoch` at the start of every epoch
    (as ``DistributedSampler`` requires) to keep the processes in step even
    when one of them iterates an extra time.

    Parameters
    ----------
    labels : array-like or Tensor of shape (n_rows,)
        The class label of every row of the dataset, in dataset order; the
        same in every process.
    class_weight : None, str, dict, WeightingScheme or callable, default="balanced"
        The weight of each class, as in :class:`ClassBalancedSampler`.
    num_replicas : int or None, default=None
        The number of processes; ``None`` asks the initialised default
        process group (``torch.distributed.get_world_size()``).
    rank : int or None, default=None
        This process's rank in ``[0, num_replicas)``; ``None`` asks the
        process group (``torch.distributed.get_rank()``).
    seed : int, default=0
        Seed of the epochs, the same in every process: epoch :math:`e` draws
        from a generator seeded with ``epoch_seed(seed, e)``.
    drop_last : bool, default=False
        Round the default ``num_samples`` down instead of up (see above).
    num_samples : int or None, default=None
        Rows per process and epoch (``len(sampler)``, like
        ``DistributedSampler.num_samples``); ``None`` chooses it from the
        number of rows as above.
    replacement : bool, default=True
        Draw with replacement.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted unique labels.
    class_weight_ : ndarray of shape (n_classes,)
        The resolved weight of each class, aligned with ``classes_``.
    weights : Tensor of shape (n_rows,), dtype float64
        The weight of each row.
    total_size : int
        Rows in the whole draw of an epoch, ``num_samples * num_replicas``.
    epoch : int
        The epoch the next iteration draws.

    See Also
    --------
    ClassBalancedSampler : The same draw in one process.

    Examples
    --------
    The shares of two processes (given ``num_replicas`` and ``rank`` here;
    in a real run they come from the process group):

    >>> import numpy as np
    >>> y = np.array([0] * 8 + [1] * 2)
    >>> shares = [
    ...     DistributedClassBalancedSampler(y, num_replicas=2, rank=r, seed=0)
    ...     for r in (0, 1)
    ... ]
    >>> [len(s) for s in shares]
    [5, 5]
    >>> shares[0].epoch_draw(0).tolist()  # the same in both processes
    [9, 3, 5, 6, 8, 9, 1, 4, 7, 8]
    >>> [list(s) for s in shares]  # positions 0, 2, 4, ... and 1, 3, 5, ...
    [[9, 5, 8, 1, 7], [3, 6, 9, 4, 8]]

    In a training script, after ``torch.distributed.init_process_group``::

        sampler = DistributedClassBalancedSampler(y_train, "balanced", seed=0)
        loader = DataLoader(dataset, batch_size=64, sampler=sampler)
        for epoch in range(n_epochs):
            sampler.set_epoch(epoch)
            for X, y in loader:
                ...
    """

    def __init__(
        self,
        labels,
        class_weight="balanced",
        *,
        num_replicas=None,
        rank=None,
        seed=0,
        drop_last=False,
        num_samples=None,
        replacement=True,
    ):
        if num_replicas is None or rank is None:
            if not (
                torch.distributed.is_available() and torch.distributed.is_initialized()
            ):
                raise ValueError(
                    "num_replicas and rank default to the torch.distributed "
                    "process group, which is not initialised; call "
                    "torch.distributed.init_process_group first or pass "
                    "num_replicas and rank."
                )
            if num_replicas is None:
                num_replicas = torch.distributed.get_world_size()
            if rank is None:
                rank = torch.distributed.get_rank()
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        if not isinstance(rank, Integral) or isinstance(rank, bool):
            raise ValueError(f"rank must be an int, got {rank!r}.")
        if not 0 <= rank < self.num_replicas:
            raise ValueError(
                f"rank={rank} is out of range: with num_replicas={num_replicas} "
                f"it must be in [0, {self.num_replicas - 1}]."
            )
        self.rank = int(rank)
        self.seed = _check_int("seed", seed, 0)
        self.drop_last = bool(drop_last)
        self.replacement = bool(replacement)
        self._init_weights(labels, class_weight)

        available = len(self.weights) if self.replacement else self._n_positive
        if num_samples is None:
            if self.drop_last:
                num_samples = available // self.num_replicas
            else:
                num_samples = -(-available // self.num_replicas)
            if num_samples == 0:
                raise ValueError(
                    f"{available} rows cannot give each of num_replicas="
                    f"{self.num_replicas} processes a row with drop_last=True."
                )
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.total_size = self.num_samples * self.num_replicas
        # Without replacement, the default may round up past the rows that
        # can be drawn (then the draw is padded); an explicit size may not.
        if not self.replacement and self.total_size >= available + self.num_replicas:
            raise ValueError(
                f"num_samples={self.num_samples} per process is "
                f"{self.total_size} rows without replacement, but only "
                f"{available} rows have a class weight above 0."
            )
        self.epoch = 0

    set_epoch = _ClassWeightedRows.set_epoch  # documented on this class's page

    def __len__(self):
        return self.num_samples

    def epoch_draw(self, epoch):
        """The whole draw of epoch ``epoch``, the same in every process.

        Process ``rank`` iterates over ``epoch_draw(epoch)[rank::num_replicas]``.

        Parameters
        ----------
        epoch : int
            The epoch, counted from 0.

        Returns
        -------
        indices : LongTensor of shape (total_size,)
            Row indices, padded as described in the class docstring.
        """
        g = _epoch_generator(self.seed, _check_int("epoch", epoch, 0))
        size = (
            self.total_size
            if self.replacement
            else min(self.total_size, self._n_positive)
        )
        idx = draw_indices(
            self.weights, size, replacement=self.replacement, generator=g
        )
        if size < self.total_size:  # pad by repeating the draw's first rows
            idx = idx.repeat(-(-self.total_size // size))[: self.total_size]
        return idx

    def __iter__(self):
        idx = self.epoch_draw(self._next_epoch())
        return iter(idx[self.rank : self.total_size : self.num_replicas].tolist())

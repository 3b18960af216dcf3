"""Early stopping: the validation split, the stopping rule, the best weights.

Three parts, each small:

- :func:`validation_split`: the rows held out, stratified and seeded, taken
  from the rows ``fit`` received (never from resampled rows), as
  scikit-learn's ``HistGradientBoostingClassifier`` takes them inside
  ``fit``;
- :class:`Validation`: what a fit validates with (rows, score, patience,
  tolerance), part of its :class:`~skweighted._build.Plan`; numpy only;
- :class:`Stopper`: the rule of scikit-learn's ``MLPClassifier``
  (``_update_no_improvement_count``): an epoch whose score does not beat the
  best by ``tol`` counts as no improvement; training stops after
  ``n_iter_no_change + 1`` such epochs in a row; the weights of the best
  epoch are kept and restored at the end (``_best_coefs``).

The net (:class:`~skweighted._net.WeightedNet`) applies them: the
validation rows become its ``train_split``, and it calls the stopper at the
end of every epoch, after skorch's callbacks.
"""

import math
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

#: The values of the ``early_stopping`` parameter.
EARLY_STOPPING_OPTIONS = ("auto", True, False)
#: ``early_stopping='auto'`` stops early from this many samples on (see
#: :func:`resolve`; measured in ``benchmarks/bench_early_stopping.py``).
AUTO_MIN_SAMPLES = 1000
#: The history key of the per-epoch validation score (higher is better).
SCORE_KEY = "valid_score"
#: The history key marking the best epoch so far.
BEST_KEY = "valid_score_best"


def resolve(early_stopping, n_samples):
    """Whether a fit of ``n_samples`` rows stops early.

    ``'auto'`` stops early when the data has at least
    :data:`AUTO_MIN_SAMPLES` rows: below that, the rows a validation split
    takes from training cost more than stopping gains.
    """
    if early_stopping == "auto":
        return n_samples >= AUTO_MIN_SAMPLES
    return bool(early_stopping)


def _strata(y):
    """One stratum per row: its class, or for a multi-label indicator matrix
    its label set (label sets seen once share one stratum)."""
    if y.ndim == 1:
        return y
    _, strata, counts = np.unique(y, axis=0, return_inverse=True, return_counts=True)
    strata = strata.ravel()
    single = counts[strata] < 2
    if single.sum() == 1:  # a lone rare set joins the most common one
        return np.where(single, np.argmax(counts), strata)
    return np.where(single, len(counts), strata)


def rare_classes(y, fraction):
    """The class codes of ``y`` too rare for a stratified split of
    ``fraction``: fewer than 2 rows (one each side). Multi-label ``y``:
    never (rare label sets share a stratum)."""
    if y.ndim != 1:
        return []
    counts = np.bincount(y)
    return [int(c) for c in np.flatnonzero((counts > 0) & (counts < 2))]


def validation_split(y, fraction, seed):
    """Training and validation rows: stratified, seeded, sorted.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        Class codes ``0..K-1``, or a multi-label 0/1 indicator matrix.
    fraction : float in (0, 1)
        The share of rows held out (rounded up, as ``train_test_split``).
    seed : int or None

    Returns
    -------
    train, valid : ndarray of int64
        Row indices into ``y``; every stratum with at least 2 rows has rows
        on both sides.
    """
    from sklearn.model_selection import train_test_split

    strata = _strata(y)
    n_strata = len(np.unique(strata))
    n_valid = max(math.ceil(fraction * len(strata)), n_strata)
    if len(strata) - n_valid < n_strata:
        raise ValueError(
            f"validation_fraction={fraction} leaves fewer training rows than "
            f"classes ({len(strata)} samples, {n_strata} classes); lower "
            "validation_fraction or set early_stopping=False."
        )
    rows = np.arange(len(strata))
    train, valid = train_test_split(
        rows,
        test_size=n_valid,
        stratify=strata,
        random_state=check_random_state(seed),
    )
    return np.sort(train), np.sort(valid)


@dataclass(frozen=True, eq=False)
class Validation:
    """What one fit validates with; part of its Plan, never modified.

    Attributes
    ----------
    train, valid : ndarray of int64
        Rows of the fit's data the network trains on and is scored on.
    scoring : str
        ``'loss'`` (the training criterion, class weights included, on the
        validation rows) or a scikit-learn scorer name.
    n_iter_no_change : int
    tol : float
    """

    train: np.ndarray
    valid: np.ndarray
    scoring: str
    n_iter_no_change: int
    tol: float


class Patience:
    """scikit-learn's ``MLPClassifier`` rule as a small pure state machine.

    An epoch whose score is not at least the best so far plus ``tol`` counts
    as no improvement; :meth:`update` says stop after ``n_iter_no_change + 1``
    of them in a row. The best score (and epoch) moves whenever a score beats
    it, by any amount. A stack applies the same rule to each of its models.
    """

    def __init__(self, n_iter_no_change, tol):
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.best_score = -np.inf
        self.best_epoch = None  # 1-based, within this fit
        self.no_improvement = 0
        self.epochs = 0

    def update(self, score):
        """Record one epoch's score; ``(improved, stop)``."""
        self.epochs += 1
        if not score >= self.best_score + self.tol:  # NaN: no improvement
            self.no_improvement += 1
        else:
            self.no_improvement = 0
        improved = score > self.best_score
        if improved:
            self.best_score = score
            self.best_epoch = self.epochs
        return improved, self.no_improvement > self.n_iter_no_change


class Stopper(Patience):
    """Scores each epoch of a skorch net on its validation rows, applies the
    :class:`Patience` rule and keeps the best weights.

    Parameters
    ----------
    validation : Validation
    """

    def __init__(self, validation):
        super().__init__(validation.n_iter_no_change, validation.tol)
        self.validation = validation
        self.best_state = None
        self.replayed = None

    def replay(self, scores):
        """Take the score of each epoch from ``scores`` instead of computing
        it: a stack scored the epochs (see :mod:`skweighted._stacking._early`)
        and its result is being written back into the net."""
        self.replayed = list(scores)

    def score(self, net, dataset_valid):
        """The validation score of the epoch that just ended (higher is better)."""
        if self.replayed is not None:
            return self.replayed[self.epochs]
        if self.validation.scoring == "loss":
            batches = net.history[-1, "batches"]
            losses = [b["valid_loss"] for b in batches if "valid_loss" in b]
            sizes = [b["valid_batch_size"] for b in batches if "valid_loss" in b]
            return -float(np.average(losses, weights=sizes))
        from sklearn.metrics import get_scorer

        from ._batching import _labels

        y = _labels(dataset_valid).cpu().numpy()
        return float(get_scorer(self.validation.scoring)(net, dataset_valid, y))

    def epoch_end(self, net, dataset_valid):
        """Score this epoch and keep its weights if best; True to stop."""
        score = self.score(net, dataset_valid)
        improved, stop = self.update(score)
        if improved:
            self.best_state = {
                k: v.detach().clone() for k, v in net.module_.state_dict().items()
            }
        net.history.record(SCORE_KEY, score)
        net.history.record(BEST_KEY, improved)
        return stop

    def restore(self, net):
        """Load the best epoch's weights into ``net.module_`` (and let go of
        the copy)."""
        if self.best_state is not None:
            net.module_.load_state_dict(self.best_state)
            self.best_state = None

"""Search and cross-validation that train many networks at once.

:class:`GridSearchCV`, :class:`RandomizedSearchCV` and :func:`cross_validate`
take scikit-learn's arguments and give scikit-learn's results
(``cv_results_``, ``best_params_``, ``best_estimator_``, refit, scorers,
``error_score``, ``return_train_score``, metadata routing of
``sample_weight``): they *are* scikit-learn's, with one change in how the
fits are trained. Every :class:`~skweighted.WeightedNeuralNetClassifier` fit
of the search (each candidate on each fold, inside pipelines and
meta-estimators too) that shares an architecture with others is trained with
them in one vectorised stack; each comes out as an ordinary fitted
estimator, equal to its separate fit within float32 rounding.

How: the search runs its fits twice. The first pass prepares every fit
exactly as ``fit`` would (validation, labels, class weights, the module
initialised under its seed, every epoch's batch order) and records it; the
stackable ones are then trained together; the second pass is scikit-learn's
own code, in which every fit loads its trained weights and history instead of
training. A fit that cannot be stacked trains separately in the second pass,
and the reason is kept in ``stacking_`` (a callback such as early stopping, a
validation split, AlphaDropout, a module ``torch.func.vmap`` rejects, a
criterion from outside :mod:`skweighted.losses`, an optimizer other than
Adam/AdamW/SGD, a ``Dataset`` input).
"""

from numbers import Integral

import numpy as np
import torch
from joblib import parallel_config
from sklearn import model_selection as _sk
from sklearn.base import clone, is_classifier
from sklearn.utils.validation import indexable

from ._compat import Interval, SearchHooks, routed_fit_params
from ._dask import survive_lost_workers
from ._recording import fit_time_shares, has_network, record_fits
from ._stacking._memory import default_budget
from ._stacking._session import Session, warn_separate

__all__ = ["GridSearchCV", "RandomizedSearchCV", "cross_validate"]

_STACKING_CONSTRAINTS = {
    "stacking": ["boolean"],
    "memory_budget": [None, Interval(Integral, 1, None, closed="left")],
}


def _reason(estimator, X):
    """Why a search over ``estimator`` on ``X`` is not stacked (None: it is)."""
    if isinstance(X, torch.utils.data.Dataset):
        return "a Dataset input: stacking needs in-memory arrays"
    if not has_network(estimator):
        return "no WeightedNeuralNetClassifier to stack"
    return None


class _StackedSearchMixin(SearchHooks):
    """What :class:`GridSearchCV` and :class:`RandomizedSearchCV` add."""

    @survive_lost_workers()  # on Dask, a lost worker's fits run again elsewhere
    def fit(self, X, y=None, **params):
        """Run the search; stackable fits train together.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
        **params : dict
            Passed on as in scikit-learn (``sample_weight``, ``groups``, ...).

        Returns
        -------
        self : object
            The fitted search.
        """
        reason = None if self.stacking else "stacking=False"
        reason = reason or _reason(self.estimator, X)
        session = None if reason else Session(self.memory_budget, self.n_jobs)
        self._session, self._stack_args, self._fit_time_shares = session, None, []
        try:
            if session is None:
                super().fit(X, y, **params)
            else:
                self._stack_args = (X, y, params)
                # pass 2 replays the fits one after the other: scikit-learn's
                # search makes its Parallel(n_jobs) before _run_search, so the
                # sequential backend is set around the whole fit (the session
                # trains its stacks through the caller's backend)
                with session.alone(), parallel_config(backend="sequential"):
                    super().fit(X, y, **params)
        finally:
            for name in ("_session", "_stack_args", "_fit_time_shares"):
                vars(self).pop(name, None)
        self.stacking_ = _report(session, reason, X, self)
        if session is not None:
            warn_separate(
                self.stacking_["separate"],
                self.stacking_["n_fits"],
                type(self).__name__,
            )
        return self

    def _evaluator(self, evaluate_candidates):
        """Candidates are recorded and trained in stacks, then evaluated by
        scikit-learn's code, each fit loading its trained result."""
        if getattr(self, "_session", None) is None:
            return evaluate_candidates

        def stacked(candidate_params, cv=None, more_results=None, **kw):
            candidate_params = list(candidate_params)
            self._prefit(candidate_params, cv)
            with self._session.replaying():
                return evaluate_candidates(candidate_params, cv, more_results, **kw)

        return stacked

    def _prefit(self, candidate_params, cv):
        X, y, params = self._stack_args
        session = self._session
        cv = cv or self._checked_cv_orig
        X_, y_ = indexable(X, y)
        routed = routed_fit_params(self, params)
        splits = list(cv.split(X_, y_, **routed.splitter.split))
        fit_params = routed.estimator.fit
        base = clone(self.estimator)
        for candidate in candidate_params:
            first = len(session.order)
            estimator = clone(base).set_params(**clone(candidate, safe=False))
            marks = record_fits(session, estimator, X_, y_, splits, fit_params)
            self._fit_time_shares.append((first, marks, len(splits)))
        session.train()

    def _search_outputs(self, out):
        """Each stacked fit's ``fit_time`` gains its share of the stacks."""
        session = getattr(self, "_session", None)
        if session is None:
            return out
        shares = [
            s
            for first, marks, n in self._fit_time_shares
            for s in fit_time_shares(session, first, marks, n)
        ]
        if len(shares) != len(out):
            return out
        return [{**o, "fit_time": o["fit_time"] + s} for o, s in zip(out, shares)]


def _report(session, reason, X, search=None):
    if session is None:
        return {
            "n_fits": 0,
            "n_stacked": 0,
            "separate": [reason],
            "chunks": [],
            "estimated_bytes": 0,
            "held_bytes": 0,
            "memory_budget": None,
            "train_time": 0.0,
            "recording_errors": [],
        }
    report = session.report()
    if report["memory_budget"] is None:
        report["memory_budget"] = default_budget("cpu")
    if search is not None and search.verbose:
        print(
            f"[skweighted] {report['n_stacked']} of {report['n_fits']} fits "
            f"trained in stacks {report['chunks']}; separately: "
            f"{sorted(set(report['separate']))}"
        )
    return report


_STACKING_DOC = """
    Parameters
    ----------
    estimator, {search}, scoring, n_jobs, refit, cv, verbose, pre_dispatch, \
error_score, return_train_score
        As in scikit-learn's search. ``n_jobs`` runs stack chunks (and the
        fits that train separately are replayed one after the other).
    stacking : bool, default=True
        Train the stackable fits together. ``False`` is scikit-learn's search
        unchanged.
    memory_budget : int or None, default=None
        Bytes the search may hold for its stacks, all together: the recorded
        fits (each one's initial network, class weights and the seed its
        batch orders are drawn from, not the orders themselves), the
        training rows they share, the trained results kept until each fit
        loads its own, and the stack chunks training at once (stacked
        weights, gradients, optimizer state, one batch of activations, the
        epoch's batch order; with ``n_jobs``, every worker's chunk). Stacks
        are split into chunks to fit in what is left, which gives the same
        results; a chunk holds one network at least, whatever the budget.
        Not counted: the data passed in and what scikit-learn's own code
        makes of it during a fit, and the one-time costs of the first search
        in a process (imports, PyTorch's thread pools). ``None`` is 1 GiB on
        the CPU and half the free memory on a GPU. With ``n_jobs``, chunks
        run in parallel through joblib (a Dask backend spreads them over a
        cluster), and a stack is split into one chunk per worker at least.

    Attributes
    ----------
    cv_results_, best_estimator_, best_score_, best_params_, best_index_, \
scorer_, n_splits_, refit_time_, multimetric_
        As in scikit-learn's search.
    stacking_ : dict
        ``n_fits`` and ``n_stacked`` (networks fitted, of which in stacks;
        the refit counts, trained as a stack of one),
        ``separate`` (for every fit trained on its own, why), ``chunks``
        (models per stack chunk), ``estimated_bytes`` (of the largest chunk),
        ``held_bytes`` (the most the search held besides its chunks: records,
        their rows, results) and ``memory_budget``, ``train_time`` (seconds
        spent in stacks),
        ``recording_errors`` (the errors of fits that failed in the
        recording pass; they train separately and fail as in scikit-learn).
        ``mean_fit_time`` in ``cv_results_`` includes each stacked fit's
        share of that time.
"""


class GridSearchCV(_StackedSearchMixin, _sk.GridSearchCV):
    __doc__ = (
        """scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`,
    training the networks of all candidates and folds together.

    Same parameters, attributes and results as scikit-learn's; see
    :mod:`skweighted.model_selection` for how the fits are stacked.
"""
        + _STACKING_DOC.format(search="param_grid")
        + """
    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skweighted import WeightedNeuralNetClassifier
    >>> from skweighted.model_selection import GridSearchCV
    >>> X, y = make_classification(n_samples=200, weights=[0.8], random_state=0)
    >>> net = WeightedNeuralNetClassifier(max_epochs=3, random_state=0)
    >>> search = GridSearchCV(
    ...     net, {"class_weight": [None, "balanced"], "lr": [1e-3, 1e-2]}, cv=3
    ... ).fit(X, y)
    >>> search.stacking_["n_stacked"], search.stacking_["chunks"]
    (13, [12, 1])
    >>> sorted(search.best_params_)
    ['class_weight', 'lr']
"""
    )

    _parameter_constraints = {
        **_sk.GridSearchCV._parameter_constraints,
        **_STACKING_CONSTRAINTS,
    }

    def __init__(
        self,
        estimator,
        param_grid,
        *,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        error_score=np.nan,
        return_train_score=False,
        stacking=True,
        memory_budget=None,
    ):
        super().__init__(
            estimator,
            param_grid,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.stacking = stacking
        self.memory_budget = memory_budget


class RandomizedSearchCV(_StackedSearchMixin, _sk.RandomizedSearchCV):
    __doc__ = (
        """scikit-learn's :class:`~sklearn.model_selection.RandomizedSearchCV`,
    training the networks of all sampled candidates and folds together.

    Same parameters, attributes and results as scikit-learn's; see
    :mod:`skweighted.model_selection` for how the fits are stacked.
"""
        + _STACKING_DOC.format(search="param_distributions, n_iter, random_state")
        + """
    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import make_classification
    >>> from skweighted import WeightedNeuralNetClassifier
    >>> from skweighted.model_selection import RandomizedSearchCV
    >>> X, y = make_classification(n_samples=200, weights=[0.8], random_state=0)
    >>> net = WeightedNeuralNetClassifier(max_epochs=3, random_state=0)
    >>> search = RandomizedSearchCV(
    ...     net, {"lr": loguniform(1e-4, 1e-1)}, n_iter=4, cv=3, random_state=0
    ... ).fit(X, y)
    >>> search.stacking_["n_stacked"]  # 4 candidates x 3 folds, and the refit
    13
"""
    )

    _parameter_constraints = {
        **_sk.RandomizedSearchCV._parameter_constraints,
        **_STACKING_CONSTRAINTS,
    }

    def __init__(
        self,
        estimator,
        param_distributions,
        *,
        n_iter=10,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        random_state=None,
        error_score=np.nan,
        return_train_score=False,
        stacking=True,
        memory_budget=None,
    ):
        super().__init__(
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            random_state=random_state,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.stacking = stacking
        self.memory_budget = memory_budget


@survive_lost_workers()
def cross_validate(
    estimator,
    X,
    y=None,
    *,
    groups=None,
    scoring=None,
    cv=None,
    n_jobs=None,
    verbose=0,
    params=None,
    pre_dispatch="2*n_jobs",
    return_train_score=False,
    return_estimator=False,
    return_indices=False,
    error_score=np.nan,
    stacking=True,
    memory_budget=None,
    return_stacking=False,
):
    """scikit-learn's :func:`~sklearn.model_selection.cross_validate`,
    training the networks of all folds together.

    Same arguments and result as scikit-learn's (``fit_time`` includes each
    fold's share of the stacked training); see
    :mod:`skweighted.model_selection` for how the fits are stacked.

    Parameters
    ----------
    estimator, X, y, groups, scoring, cv, n_jobs, verbose, params, \
pre_dispatch, return_train_score, return_estimator, return_indices, \
error_score
        As in :func:`sklearn.model_selection.cross_validate`. ``n_jobs``
        runs stack chunks in parallel (the folds train in stacks).
    stacking : bool, default=True
        Train the folds' networks together; ``False`` is scikit-learn's
        function unchanged.
    memory_budget : int or None, default=None
        Bytes the stacks of all folds may hold, with what the function keeps
        for them; see :class:`GridSearchCV`.
    return_stacking : bool, default=False
        Add the key ``"stacking"``: what was stacked and why the other fits
        were not (see ``stacking_`` of :class:`GridSearchCV`).

    Returns
    -------
    scores : dict
        As scikit-learn's (plus ``"stacking"`` when asked for).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skweighted import WeightedNeuralNetClassifier
    >>> from skweighted.model_selection import cross_validate
    >>> X, y = make_classification(n_samples=200, weights=[0.8], random_state=0)
    >>> net = WeightedNeuralNetClassifier(max_epochs=3, random_state=0)
    >>> result = cross_validate(net, X, y, cv=5, return_stacking=True)
    >>> result["test_score"].shape, result["stacking"]["n_stacked"]
    ((5,), 5)
    """
    kwargs = dict(
        groups=groups,
        scoring=scoring,
        verbose=verbose,
        params=params,
        pre_dispatch=pre_dispatch,
        return_train_score=return_train_score,
        return_estimator=return_estimator,
        return_indices=return_indices,
        error_score=error_score,
    )
    reason = None if stacking else "stacking=False"
    reason = reason or _reason(estimator, X)
    if reason is not None:
        result = _sk.cross_validate(estimator, X, y, cv=cv, n_jobs=n_jobs, **kwargs)
        session = None
    else:
        X_, y_ = indexable(X, y)
        checked = _sk.check_cv(cv, y_, classifier=is_classifier(estimator))
        splits = list(checked.split(X_, y_, groups))
        session = Session(memory_budget, n_jobs)
        marks = record_fits(session, clone(estimator), X_, y_, splits, params)
        session.train()
        with session.replaying():
            result = _sk.cross_validate(estimator, X, y, cv=splits, n_jobs=1, **kwargs)
        result["fit_time"] = result["fit_time"] + np.asarray(
            fit_time_shares(session, 0, marks, len(splits))
        )
    if return_stacking:
        result["stacking"] = _report(session, reason, X)
    return result

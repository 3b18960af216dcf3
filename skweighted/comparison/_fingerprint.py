"""What identifies a comparison run, so that a resume never mixes two runs.

The fingerprint is a JSON-ready dict of hashes, with enough readable detail
to say what differs: the data (``X`` and ``y``), the folds (the train and
test rows of every split), every strategy's parameters, the estimator's
parameters, the metrics, the seed, whether the networks train in stacks,
and the versions of the libraries that compute the numbers.
"""

import joblib
import numpy as np

__all__ = ["describe_differences", "fingerprint"]

_REPR_WIDTH = 60


def _hash(value):
    try:
        return joblib.hash(value)
    except Exception:  # unpicklable (a lambda, a lock): hash what it is
        name = getattr(value, "__qualname__", "")
        return joblib.hash(f"{type(value).__module__}.{type(value).__qualname__}{name}")


def _short(value):
    text = repr(value)
    return text if len(text) <= _REPR_WIDTH else text[: _REPR_WIDTH - 3] + "..."


def _holds_estimators(value):
    """An estimator, or a list of steps such as a pipeline's ``steps``."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return True
    if isinstance(value, list | tuple):
        return any(
            _holds_estimators(v) for v in value if isinstance(v, list | tuple)
        ) or any(hasattr(v, "get_params") and not isinstance(v, type) for v in value)
    return False


def _params(estimator):
    """Parameter -> ``[hash, short repr]``, every leaf of ``get_params(deep=True)``."""
    if not hasattr(estimator, "get_params"):
        return {"(object)": [_hash(estimator), _short(estimator)]}
    params = estimator.get_params(deep=True)
    return {
        k: [_hash(v), _short(v)]
        for k, v in sorted(params.items())
        if not _holds_estimators(v)
    } | {"(class)": [_hash(type(estimator)), type(estimator).__qualname__]}


def _versions():
    import sklearn
    import torch

    from .._version import __version__

    return {
        "skweighted": __version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def fingerprint(
    X, y, splits, strategies, estimator, scorers, random_state, stacking=False
):
    """The fingerprint of a run.

    Parameters
    ----------
    X, y : the data
    splits : list of (train, test) index arrays
    strategies : dict
        Name -> the estimator evaluated.
    estimator : estimator
        What the built-in strategies train.
    scorers : dict
        Reported name -> ``(scorer, sign)``.
    random_state : int, None or RandomState
    stacking : bool, default=False
        Whether the networks train in stacks (equal to separate fits within
        float32 rounding, not bit for bit, so a run does not mix the two).

    Returns
    -------
    fingerprint : dict
    """
    shape = list(np.shape(X)) if hasattr(X, "shape") else [len(X)]
    return {
        "data": {"X": _hash(X), "y": _hash(np.asarray(y)), "shape": shape},
        "folds": {
            "hash": _hash([(np.asarray(a), np.asarray(b)) for a, b in splits]),
            "n_folds": len(splits),
        },
        "strategies": {name: _params(s) for name, s in strategies.items()},
        "estimator": _params(estimator),
        "scoring": {
            name: [_hash(scorer), int(sign)] for name, (scorer, sign) in scorers.items()
        },
        "random_state": [_hash(random_state), _short(random_state)],
        "stacking": bool(stacking),
        "versions": _versions(),
    }


def _param_changes(old, new, limit=3):
    keys = list(dict.fromkeys([*old, *new]))
    changed = [k for k in keys if old.get(k, [None])[0] != new.get(k, [None])[0]]
    text = [
        f"{k} {old[k][1] if k in old else '(unset)'} -> "
        f"{new[k][1] if k in new else '(unset)'}"
        for k in changed[:limit]
    ]
    if len(changed) > limit:
        text.append(f"and {len(changed) - limit} more")
    return ", ".join(text)


def describe_differences(old, new):
    """What differs between two fingerprints, one phrase per part; ``[]`` if none."""
    out = []
    if old.get("data") != new.get("data"):
        o, n = old.get("data", {}), new["data"]
        what = [k for k in ("X", "y") if o.get(k) != n[k]]
        shape = (
            f" (X of shape {tuple(o.get('shape', []))} -> {tuple(n['shape'])})"
            if o.get("shape") != n["shape"]
            else ""
        )
        out.append(f"the data differ: {' and '.join(what) or 'X'}{shape}")
    if old.get("folds") != new.get("folds"):
        o, n = old.get("folds", {}).get("n_folds"), new["folds"]["n_folds"]
        out.append(
            f"the folds differ ({o} -> {n} folds)"
            if o != n
            else "the folds differ (same number, other rows)"
        )
    o, n = old.get("strategies", {}), new["strategies"]
    if set(o) != set(n):
        out.append(f"the strategies differ: {sorted(o)} -> {sorted(n)}")
    else:
        changes = {}  # the same change in several strategies is said once
        for name in sorted(n):
            if o[name] != n[name]:
                changes.setdefault(_param_changes(o[name], n[name]), []).append(name)
        for change, names in changes.items():
            which = "strategy" if len(names) == 1 else "strategies"
            out.append(f"{which} {', '.join(map(repr, names))}: {change}")
    if old.get("estimator") != new["estimator"]:
        changes = _param_changes(old.get("estimator", {}), new["estimator"])
        out.append(f"the estimator differs: {changes}")
    if old.get("scoring") != new["scoring"]:
        o, n = old.get("scoring", {}), new["scoring"]
        if sorted(o) != sorted(n):
            out.append(f"the metrics differ: {sorted(o)} -> {sorted(n)}")
        else:  # a scorer of the caller's, or a default metric re-implemented
            other = [name for name in n if o[name] != n[name]]
            out.append(
                f"the scorers of {other} differ (same names; a run recorded by "
                "another version of skweighted's default metrics is not resumed)"
            )
    if old.get("random_state") != new["random_state"]:
        o = old.get("random_state", [None, "?"])[1]
        out.append(f"random_state differs: {o} -> {new['random_state'][1]}")
    # runs recorded before stacking existed trained every fit separately
    if old.get("stacking", False) != new.get("stacking", False):
        out.append(
            f"stacking differs: {old.get('stacking', False)} -> "
            f"{new.get('stacking', False)} (stacked and separate fits agree "
            "within float32 rounding, not bit for bit)"
        )
    if old.get("versions") != new["versions"]:
        o = old.get("versions", {})
        out.append(
            "library versions differ: "
            + ", ".join(
                f"{k} {o.get(k)} -> {v}"
                for k, v in new["versions"].items()
                if o.get(k) != v
            )
        )
    return out

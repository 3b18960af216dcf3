"""Property tests for the weight resolution (``resolve_class_weight``).

Random label vectors (ints or strings, sometimes with extra classes absent
from ``y``) and random specs (names, scheme objects, dicts, callables): the
result is finite, positive where the spec is positive, aligned with
``classes`` and unchanged by permuting the samples. The classifier's label
encoding equals ``np.unique`` for integer labels of every dtype and range.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils.class_weight import compute_class_weight

from skweighted.class_weight import (
    SCHEME_NAMES,
    EffectiveNumber,
    InversePower,
    class_counts,
    resolve_class_weight,
)

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

int_labels = st.integers(min_value=-3, max_value=6)
str_labels = st.text(alphabet="abcxyz", min_size=1, max_size=3)


@st.composite
def labelled(draw):
    """``(y, classes)``: ``classes`` is ``unique(y)`` plus maybe unseen labels."""
    labels = draw(st.sampled_from([int_labels, str_labels]))
    y = draw(st.lists(labels, min_size=1, max_size=60))
    extra = draw(st.lists(labels, max_size=3))
    y = np.array(y, dtype=object if isinstance(y[0], str) else np.int64)
    classes = np.unique(np.concatenate([y, np.array(extra, dtype=y.dtype)]))
    return y, classes


weight_values = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@st.composite
def specs(draw, classes):
    """A valid spec over ``classes``: None, a name, a scheme, a dict, a callable."""
    kind = draw(st.sampled_from(["none", "name", "scheme", "dict", "callable"]))
    if kind == "none":
        return None
    if kind == "name":
        return draw(st.sampled_from(SCHEME_NAMES))
    if kind == "scheme":
        return draw(
            st.one_of(
                st.builds(
                    EffectiveNumber,
                    beta=st.floats(min_value=0.0, max_value=0.9999),
                ),
                st.builds(
                    InversePower,
                    power=st.floats(min_value=0.0, max_value=4.0),
                    smoothing=st.floats(min_value=0.0, max_value=100.0),
                    normalize=st.booleans(),
                ),
            )
        )
    keys = draw(st.lists(st.sampled_from(list(classes.tolist())), unique=True))
    spec = {k: draw(weight_values) for k in keys}
    if kind == "dict":
        return spec

    def from_y(y):  # a callable spec: weights depend on the labels' counts
        labels, counts = np.unique(y, return_counts=True)
        return {lab: 1.0 / c for lab, c in zip(labels.tolist(), counts)}

    return from_y


def _resolve_or_none(spec, y, classes):
    """The weights, or None when every class has weight zero (a ValueError)."""
    try:
        return resolve_class_weight(spec, y, classes)
    except ValueError as exc:
        assert "zero for every class" in str(exc)
        assert isinstance(spec, dict) and not any(spec.get(c, 1.0) for c in classes)
        return None


@SETTINGS
@given(data=st.data())
def test_resolved_weights_are_finite_positive_and_aligned(data):
    y, classes = data.draw(labelled())
    spec = data.draw(specs(classes))
    w = _resolve_or_none(spec, y, classes)
    if w is None:
        return
    assert w.shape == (len(classes),) and w.dtype == np.float64
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    counts = class_counts(y, classes)
    if isinstance(spec, dict):  # exactly the spec, 1 where it says nothing
        expected = [float(spec.get(c, 1.0)) for c in classes.tolist()]
        np.testing.assert_array_equal(w, expected)
        assert np.all((w > 0) == [spec.get(c, 1.0) > 0 for c in classes.tolist()])
    else:  # every other spec is positive for every class
        assert np.all(w > 0)
        np.testing.assert_array_equal(w[counts == 0], 1.0)  # absent classes
    if spec == "balanced":
        present = counts > 0
        np.testing.assert_array_equal(
            w[present], compute_class_weight("balanced", classes=classes[present], y=y)
        )
    if spec == "inverse":
        np.testing.assert_allclose(w[counts > 0], 1.0 / counts[counts > 0])


@SETTINGS
@given(data=st.data())
def test_unchanged_by_permuting_the_samples(data):
    y, classes = data.draw(labelled())
    spec = data.draw(specs(classes))
    perm = data.draw(st.permutations(range(len(y))))
    w = _resolve_or_none(spec, y, classes)
    if w is not None:
        np.testing.assert_array_equal(
            resolve_class_weight(spec, y[np.asarray(perm)], classes), w
        )


@SETTINGS
@given(data=st.data())
def test_weights_follow_their_class_when_labels_are_renamed(data):
    """Renaming the labels (which changes their sorted order) moves each
    weight with its class: the result is aligned with ``classes``."""
    y, classes = data.draw(labelled())
    spec = data.draw(specs(classes))
    names = data.draw(st.permutations([f"L{i:02d}" for i in range(len(classes))]))
    rename = dict(zip(classes.tolist(), names))
    y2 = np.array([rename[v] for v in y.tolist()], dtype=object)
    classes2 = np.array(sorted(names), dtype=object)
    spec2 = {rename[k]: v for k, v in spec.items()} if isinstance(spec, dict) else spec
    w = _resolve_or_none(spec, y, classes)
    if w is None:
        return
    w2 = resolve_class_weight(spec2, y2, classes2)
    position = {c: k for k, c in enumerate(classes2.tolist())}
    for k, c in enumerate(classes.tolist()):
        assert math.isclose(w2[position[rename[c]]], w[k], rel_tol=1e-12)


@SETTINGS
@given(
    data=st.data(),
    bad=st.sampled_from([-1e-3, -5.0, math.nan, math.inf, -math.inf]),
)
def test_any_negative_or_non_finite_dict_value_is_rejected(data, bad):
    y, classes = data.draw(labelled())
    spec = data.draw(specs(classes).filter(lambda s: isinstance(s, dict)))
    spec = {**spec, data.draw(st.sampled_from(classes.tolist())): bad}
    with pytest.raises(ValueError, match="negative|not finite"):
        resolve_class_weight(spec, y, classes)


@SETTINGS
@given(
    y=hnp.arrays(
        st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64]),
        st.integers(1, 50),
        elements=st.integers(0, 120),
    )
    | hnp.arrays(np.int64, st.integers(1, 50), elements=st.integers(-(2**40), 2**40))
)
def test_label_encoding_equals_numpy_unique(y):
    """The counting path for small labels, and the sort for the rest, give
    ``np.unique(y, return_inverse=True)`` exactly, dtype included."""
    from skweighted._classifier import _unique_inverse

    classes, codes = _unique_inverse(y)
    expected_classes, expected_codes = np.unique(y, return_inverse=True)
    assert classes.dtype == expected_classes.dtype
    np.testing.assert_array_equal(classes, expected_classes)
    np.testing.assert_array_equal(codes, expected_codes)

"""The documentation covers the public API, and CI builds it.

The site itself is built by ``make -C docs html`` (run by ``.ci/run`` with
warnings as errors); the ``>>>`` examples of its pages run under pytest
(``--doctest-glob=*.rst``). These tests check what a build cannot: that no
public name is missing from the API reference.
"""

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import skweighted

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.rst"


def _public_modules():
    yield skweighted
    for info in pkgutil.iter_modules(skweighted.__path__):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"skweighted.{info.name}")


def _documented_names():
    """``module.name`` for every autosummary entry and autodata in api.rst."""
    names, module, in_summary = set(), None, False
    for line in API.read_text().splitlines():
        if m := re.match(r"\.\. (?:currentmodule|automodule):: (\S+)", line):
            module, in_summary = m.group(1), False
        elif m := re.match(r"\.\. autodata:: (\S+)", line):
            names.add(f"{module}.{m.group(1)}")
        elif line.startswith(".. autosummary::"):
            in_summary = True
        elif in_summary and (m := re.match(r"   (\w+)$", line)):
            names.add(f"{module}.{m.group(1)}")
        elif in_summary and line and not line.startswith(" "):
            in_summary = False
    return names


def _home(module, name):
    """Where a public name is documented: its defining module if public."""
    defined_in = getattr(getattr(module, name), "__module__", None)
    if defined_in is None or not defined_in.startswith("skweighted"):
        defined_in = module.__name__  # data (tuples, dicts) and re-exports
    public = ".".join(p for p in defined_in.split(".") if not p.startswith("_"))
    return f"{public}.{name}"


PUBLIC = sorted(
    {
        _home(module, name)
        for module in _public_modules()
        for name in getattr(module, "__all__", ())
        if name != "__version__"
    }
)


def test_the_api_page_lists_something():
    assert "skweighted.WeightedNeuralNetClassifier" in _documented_names()


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_in_the_api_reference(name):
    assert name in _documented_names(), (
        f"{name} is public (in an __all__) but docs/api.rst does not list it; "
        "add it to the autosummary of its module."
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_class_and_function_has_examples(name):
    module, _, attr = name.rpartition(".")
    obj = getattr(importlib.import_module(module), attr)
    if not callable(obj):
        pytest.skip(f"{name} is data")
    assert re.search(r"Examples\n\s*-{8}", obj.__doc__ or ""), (
        f"{name} has no numpydoc Examples section (run as a doctest by pytest)."
    )


def test_ci_builds_the_docs_with_warnings_as_errors():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make -C docs html" in ci
    makefile = (ROOT / "docs" / "Makefile").read_text()
    assert re.search(r"SPHINXOPTS\s*\?=.*-W", makefile)

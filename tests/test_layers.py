"""No import runs from a lower layer of the package back up to a higher one.

The layers, bottom up, are those of ``docs/architecture.rst`` ("How it is
built"). Each module of the package belongs to one (a subpackage's modules to
its layer); a module may import its own layer and the layers below. The
imports are read from the source (``ast``), those inside functions included,
so a lazy import cannot hide a back edge. A new module must be given a layer
here, and in the architecture page.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "skweighted"

#: Bottom up. A name stands for the module or the subpackage of that name.
LAYERS = [
    ["_compat", "_docstring", "_version", "_threads", "_dask", "_devices",
     "class_weight", "modules", "datasets"],
    ["losses", "_inputs", "sampling"],
    ["_build", "calibration", "resampling", "_batching", "_distributed", "_dropout",
     "_embedding", "_early_stopping", "_fit_rows", "_module_check"],
    ["_net"],
    ["_stacking"],
    ["_classifier"],
    ["_recording", "persistence"],
    ["model_selection"],
    ["comparison"],
    ["cli", "__main__"],
]  # fmt: skip
LAYER = {name: k for k, names in enumerate(LAYERS) for name in names}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package's public face imports from every layer
        yield path, parts


def _unit(parts):
    """The layer's name of a module given as its parts below ``skweighted``."""
    return parts[0]


def _imports(path, parts):
    """The units of ``skweighted`` that the module at ``path`` imports."""
    package = list(parts[:-1])  # what a relative import starts from
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(_unit(target))
            else:  # from . import a, b at the top of the package
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = node.module.split(".")
            if names[0] == "skweighted":
                if len(names) > 1:
                    found.add(names[1])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == "skweighted" and len(names) > 1:
                    found.add(names[1])
    return found


@pytest.mark.parametrize(
    "path, parts",
    list(_modules()),
    ids=lambda v: "/".join(v) if isinstance(v, tuple) else "",
)
def test_no_import_runs_back_up(path, parts):
    unit = _unit(parts)
    assert unit in LAYER, f"{unit} has no layer: add it to LAYERS and the docs"
    for target in _imports(path, parts):
        assert target in LAYER, (
            f"{'.'.join(parts)} imports {target}, which has no layer"
        )
        assert LAYER[target] <= LAYER[unit], (
            f"skweighted.{'.'.join(parts)} (layer {LAYER[unit]}) imports "
            f"skweighted.{target} (layer {LAYER[target]}): a back edge"
        )


def test_the_check_sees_a_back_edge(tmp_path):
    """The parser finds relative, absolute and function-level imports."""
    path = tmp_path / "m.py"
    path.write_text(
        "from .. import _classifier\n"
        "def f():\n"
        "    from ..comparison import compare\n"
        "    import skweighted.cli\n"
        "from . import _engine\n"
    )
    got = _imports(path, ("_stacking", "_session"))
    assert got == {"_classifier", "comparison", "cli", "_stacking"}


def test_the_architecture_page_names_every_layer():
    text = (PACKAGE.parent / "docs" / "architecture.rst").read_text()
    for name in LAYER:
        assert f"``{name}``" in text, name

"""Start-up: ``import skweighted`` and ``skweighted --help`` stay light.

Run in a fresh interpreter each, since this one has loaded everything.
"""

import subprocess
import sys

import pytest

#: What an estimator user, and ``--help``, never pay for at import.
HEAVY = (
    "torch",
    "skorch",
    "pandas",
    "imblearn",
    "matplotlib",
    "scipy.stats",
    "skweighted._classifier",
    "skweighted.comparison._runner",
)


def _loaded_after(code):
    script = (
        f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return [m for m in out.stdout.rstrip("\n").split("\n")[-1].split(",") if m]


def test_import_loads_nothing_heavy():
    assert _loaded_after("import skweighted") == []
    assert (
        _loaded_after(
            "import skweighted, sys; assert 'skweighted.comparison' not in sys.modules"
        )
        == []
    )


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"]])
def test_help_prints_without_torch(argv):
    code = (
        "import contextlib, io\n"
        "from skweighted.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'usage: skweighted' in out.getvalue()\n"
    )
    assert _loaded_after(code) == []


def test_public_names_load_on_use():
    code = (
        "import skweighted\n"
        "assert skweighted.compare.__module__ == 'skweighted.comparison._runner'\n"
        "assert 'WeightedNeuralNetClassifier' in dir(skweighted)\n"
        "from skweighted import WeightedNeuralNetClassifier\n"
    )
    assert set(_loaded_after(code)) >= {"torch", "skweighted.comparison._runner"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import skweighted

        skweighted.nope  # noqa: B018

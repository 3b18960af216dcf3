"""Each benchmark writes only its own section of docs/benchmarks.md."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _sections():
    spec = importlib.util.spec_from_file_location(
        "_sections", BENCHMARKS / "_sections.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_benchmark_never_erases_another(tmp_path):
    """bench_inputs.py rewrote everything below its marker, including what
    bench_stacking.py had appended there."""
    sections = _sections()
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\nA note by hand.\n")
    sections.write_section(path, "bench_inputs.py", "## Images\n\n1.0 s")
    sections.write_section(path, "bench_stacking.py", "## Stacks\n\n2.0 s")
    sections.write_section(path, "bench_inputs.py", "## Images\n\n3.0 s")
    text = path.read_text()
    assert "A note by hand." in text and "2.0 s" in text and "3.0 s" in text
    assert "1.0 s" not in text
    assert text.index("3.0 s") < text.index("2.0 s")  # rewritten in place


def test_docs_benchmarks_has_a_section_for_every_benchmark_that_writes_one():
    sections = _sections()
    text = (Path(__file__).parents[1] / "docs" / "benchmarks.md").read_text()
    for script in ("bench_fit.py", "bench_stacking.py", "bench_inputs.py"):
        start, end = sections.markers(script)
        assert text.count(start) == text.count(end) == 1, script
        assert text.index(start) < text.index(end), script
    for script in BENCHMARKS.glob("bench_*.py"):  # those that write Markdown
        text = script.read_text()
        if "--markdown" in text:
            assert "write_section(" in text, script.name

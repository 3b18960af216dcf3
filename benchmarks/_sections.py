"""Each benchmark's own section of a shared Markdown file (docs/benchmarks.md).

A benchmark's report sits between two markers that name its script::

    <!-- benchmarks/bench_fit.py: start -->
    ...
    <!-- benchmarks/bench_fit.py: end -->

:func:`write_section` replaces what is between them (or appends the section
when the file has none), so one benchmark's run never erases another's
figures, nor the notes written by hand outside the markers.
"""

import os


def markers(script):
    """The start and end markers of ``script``'s section (a file name)."""
    return (
        f"<!-- benchmarks/{script}: start -->",
        f"<!-- benchmarks/{script}: end -->",
    )


def write_section(path, script, report):
    """Put ``report`` (Markdown) in ``script``'s section of ``path``."""
    start, end = markers(script)
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    section = f"{start}\n{report.strip()}\n\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + section + "\n"
    with open(path, "w") as f:
        f.write(text)

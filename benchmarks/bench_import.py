"""Start-up benchmark: ``import skweighted`` and ``skweighted compare --help``.

Times this checkout against the commit ``--against`` (exported with ``git
archive``) in fresh interpreters, round-robin, so both see the same machine
load; reports the median CPU time (user + system, of the child process: what
a busy machine's wall clock would blur) and wall time of each, and their
ratio. ``python -X importtime`` gives the cumulative import time of
``skweighted`` too (the same median).

Run ``python benchmarks/bench_import.py --against c13eac5`` (about a
minute); ``--repeats`` sets the runs per tree.
"""

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "import skweighted": ["-c", "import skweighted"],
    "skweighted compare --help": ["-m", "skweighted", "compare", "--help"],
}


def _wall(tree, args):
    """``(cpu, wall)`` seconds of one fresh interpreter running ``args``."""
    env = dict(os.environ, PYTHONPATH=tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], env=env, cwd=tree, check=True, capture_output=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, wall


def _importtime(tree):
    """Cumulative microseconds of ``skweighted`` in ``-X importtime``."""
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import skweighted"],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    line = [x for x in out.splitlines() if re.search(r"\|\s*skweighted$", x)][-1]
    return int(line.split("|")[1]) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="HEAD~1", help="commit to compare with")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(
            ["git", "-C", here, "archive", args.against],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        trees = {args.against: old, "this checkout": here}
        rows = [f"{c} ({k})" for c in COMMANDS for k in ("cpu", "wall")]
        rows.append("-X importtime")
        times = {(t, r): [] for t in trees for r in rows}
        for tree in trees.values():  # warm the file cache
            _wall(tree, COMMANDS["import skweighted"])
        for _ in range(args.repeats):
            for name, tree in trees.items():
                for command, argv in COMMANDS.items():
                    cpu, wall = _wall(tree, argv)
                    times[name, f"{command} (cpu)"].append(cpu)
                    times[name, f"{command} (wall)"].append(wall)
                times[name, "-X importtime"].append(_importtime(tree))
    print(f"median of {args.repeats} fresh interpreters, round-robin, seconds\n")
    print(f"| command | {' | '.join(trees)} | ratio |")
    print("|---|" + "---|" * (len(trees) + 1))
    for command in rows:
        medians = [statistics.median(times[t, command]) for t in trees]
        print(
            f"| {command} | "
            + " | ".join(f"{m:.3f}" for m in medians)
            + f" | {medians[1] / medians[0]:.2f} |"
        )


if __name__ == "__main__":
    main()

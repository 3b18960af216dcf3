"""Fit-time and peak-memory benchmark: skweighted against its references.

Contenders, all training the same 20-64-64-3 MLP with Adam (lr=1e-3) and
class-weighted ("balanced") cross-entropy for the same number of epochs at
the same batch size, on the same threads:

- ``skweighted``: :class:`skweighted.WeightedNeuralNetClassifier`;
- ``skorch``: vanilla :class:`skorch.NeuralNetClassifier` (its DataLoader
  fetches and collates one row at a time; ``torch.nn.CrossEntropyLoss`` with
  the same class weights; shuffled; no validation split);
- ``torch loop``: a hand-written PyTorch loop (per-epoch ``randperm``, rows
  gathered per batch, ``torch.optim.Adam()`` defaults, ``loss.item()`` summed
  per batch, as in the PyTorch tutorials);
- ``torch loop (fused Adam)``: the same loop with ``Adam(fused=True)``, for
  reference (not a target);
- ``MLPClassifier``: scikit-learn's, same layers, ``solver="adam"``,
  ``alpha=0``, balanced ``sample_weight``, no early stopping.

Run ``python benchmarks/bench_fit.py`` (about 5-10 minutes on 2 cores);
``--quick`` for a smoke run; ``--markdown docs/benchmarks.md`` writes the
report; ``--device cuda`` adds the GPU section (skipped with a message when
CUDA is absent); ``--profile`` adds where skweighted's fit time goes.

Times are the median wall time of ``--repeats`` fits, taken round-robin
across contenders (so a burst of background load hits them all alike) after
one warm-up fit each; the order rotates with each repeat and each fit starts
after a short pause, so no contender always inherits the busy thread pools
of the one before it. Peak memory is measured per contender and batch size
in a fresh subprocess: ``ru_maxrss`` after one fit minus ``ru_maxrss`` after
the imports and the data creation.
"""

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shlex
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sections import write_section

HIDDEN = (64, 64)
LR = 1e-3
N_FEATURES = 20
N_CLASSES = 3
CLASS_FREQUENCIES = [0.8, 0.15, 0.05]


# -- data -------------------------------------------------------------------
def make_data(n_rows, seed=0):
    from sklearn.datasets import make_classification
    from sklearn.utils.class_weight import compute_class_weight

    X, y = make_classification(
        n_samples=n_rows,
        n_features=N_FEATURES,
        n_informative=10,
        n_redundant=5,
        n_classes=N_CLASSES,
        weights=CLASS_FREQUENCIES,
        random_state=seed,
    )
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    w = compute_class_weight("balanced", classes=np.unique(y), y=y)
    return X, y, w.astype(np.float32)


# -- contenders ---------------------------------------------------------------
def fit_skweighted(X, y, w, batch_size, epochs, seed, device="cpu"):
    from skweighted import WeightedNeuralNetClassifier

    return WeightedNeuralNetClassifier(
        module__hidden_units=HIDDEN,
        class_weight="balanced",
        lr=LR,
        max_epochs=epochs,
        batch_size=batch_size,
        device=device,
        early_stopping=False,  # every epoch timed, as skorch's
        random_state=seed,
    ).fit(X, y)


def fit_skorch(X, y, w, batch_size, epochs, seed, device="cpu"):
    import torch
    from skorch import NeuralNetClassifier

    from skweighted import MLP

    torch.manual_seed(seed)
    return NeuralNetClassifier(
        MLP,
        module__n_features_in=X.shape[1],
        module__n_classes=len(w),
        module__hidden_units=HIDDEN,
        criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=torch.as_tensor(w),
        optimizer=torch.optim.Adam,
        lr=LR,
        max_epochs=epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        device=device,
        verbose=0,
    ).fit(X, y)


def _torch_loop(X, y, w, batch_size, epochs, seed, device="cpu", fused=None):
    import torch

    from skweighted import MLP

    torch.manual_seed(seed)
    model = MLP(X.shape[1], len(w), hidden_units=HIDDEN).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=fused)
    criterion = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(w)).to(device)
    X_t = torch.from_numpy(X).to(device)
    y_t = torch.from_numpy(y).to(device)
    n = len(X_t)
    epoch_losses = []
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            optimizer.zero_grad()
            loss = criterion(model(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
        epoch_losses.append(total)
    return model


def fit_torch_loop(X, y, w, batch_size, epochs, seed, device="cpu"):
    return _torch_loop(X, y, w, batch_size, epochs, seed, device)


def fit_torch_loop_fused(X, y, w, batch_size, epochs, seed, device="cpu"):
    return _torch_loop(X, y, w, batch_size, epochs, seed, device, fused=True)


def fit_mlp(X, y, w, batch_size, epochs, seed, device="cpu"):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(
            HIDDEN,
            solver="adam",
            alpha=0.0,
            learning_rate_init=LR,
            batch_size=batch_size,
            max_iter=epochs,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=epochs + 1,
            random_state=seed,
        ).fit(X, y, sample_weight=w[y])


CONTENDERS = {
    "skweighted": fit_skweighted,
    "skorch": fit_skorch,
    "torch loop": fit_torch_loop,
    "torch loop (fused Adam)": fit_torch_loop_fused,
    "MLPClassifier": fit_mlp,
}
REFERENCE = "skweighted"


# -- measurement ----------------------------------------------------------------
def set_threads(n_threads):
    """The same thread count for torch and for the BLAS numpy uses."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n_threads)
    threadpool_limits(n_threads)


#: seconds between two timed fits (see time_fits)
PAUSE = 0.25


def time_fits(contenders, X, y, w, batch_size, epochs, repeats, seed=0):
    """Median wall time per contender; repeats interleaved round-robin.

    The order rotates with each repeat, so every contender runs after every
    other one equally often, and each fit starts after a short pause: a
    previous contender's idle thread pools (OpenBLAS threads spin-wait after
    a BLAS call) would otherwise slow whichever fit comes next.
    """
    times = {name: [] for name in contenders}
    contenders = list(contenders)
    for r in range(repeats):
        k = r % len(contenders)
        for name in contenders[k:] + contenders[:k]:
            time.sleep(PAUSE)
            start = time.perf_counter()
            CONTENDERS[name](X, y, w, batch_size, epochs, seed)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def warm_up(contenders, epochs=1):
    X, y, w = make_data(2000)
    for name in contenders:
        CONTENDERS[name](X, y, w, 256, epochs, 0)


def _peak_rss_mib():
    """The process's peak resident set size so far (VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def _reset_peak_rss():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False if unsupported.

    Without it the peak reached while importing torch and creating the data can
    hide the fit's own peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_child(name, rows, batch_size, epochs, threads):
    """Run in a fresh process: peak RSS growth of one fit, in MiB."""
    set_threads(threads)
    import torch  # noqa: F401 - every import happens before the baseline
    from sklearn.neural_network import MLPClassifier  # noqa: F401
    from skorch import NeuralNetClassifier  # noqa: F401

    import skweighted  # noqa: F401

    X, y, w = make_data(rows)
    _reset_peak_rss()
    base = _peak_rss_mib()
    CONTENDERS[name](X, y, w, batch_size, epochs, 0)
    print(json.dumps({"peak_mib": _peak_rss_mib() - base}))


def peak_memory(name, rows, batch_size, epochs, threads):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_memory-child",
        name,
        "--rows",
        str(rows),
        "--epochs",
        str(epochs),
        "--threads",
        str(threads),
        "--batch-sizes",
        str(batch_size),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


# -- sections ---------------------------------------------------------------------
def section_contenders(args, contenders, out):
    X, y, w = make_data(args.rows)
    rows = []
    for bs in args.batch_sizes:
        times = time_fits(contenders, X, y, w, bs, args.epochs, args.repeats)
        mems = {
            name: None
            if args.no_memory
            else peak_memory(name, args.rows, bs, args.epochs, args.threads)
            for name in contenders
        }
        for name in contenders:
            rows.append((bs, name, times[name], mems[name]))
        print(f"  batch {bs}: done", file=sys.stderr, flush=True)
    ref = {(bs, "t"): t for bs, name, t, _ in rows if name == REFERENCE}
    ref.update({(bs, "m"): m for bs, name, _, m in rows if name == REFERENCE})
    table = [
        "| batch | contender | wall time (s) | time / skweighted "
        "| peak memory (MiB) | memory / skweighted |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for bs, name, t, m in rows:
        mem = "n/a" if m is None else f"{m:.1f}"
        mem_ratio = (
            "n/a" if m is None or not ref[bs, "m"] else f"{m / ref[bs, 'm']:.2f}"
        )
        t_ratio = t / ref[bs, "t"]
        table.append(
            f"| {bs} | {name} | {t:.3f} | {t_ratio:.2f} | {mem} | {mem_ratio} |"
        )
    out.section(
        f"Fit time and peak memory ({args.rows:,} rows x {N_FEATURES} features, "
        f"{N_CLASSES} classes {CLASS_FREQUENCIES}, {args.epochs} epochs, median of "
        f"{args.repeats})",
        "\n".join(table),
    )
    out.section("Targets", "\n".join(targets(rows, contenders)))


def targets(rows, contenders):
    t = {(bs, name): time for bs, name, time, _ in rows}
    m = {(bs, name): mem for bs, name, _, mem in rows}
    batches = sorted({bs for bs, *_ in rows})
    lines = [
        "| target | batch | value | limit | met |",
        "| --- | ---: | ---: | ---: | --- |",
    ]

    def add(label, bs, value, limit, at_most=True):
        if value is None:
            return
        met = value <= limit if at_most else value >= limit
        sign = "<=" if at_most else ">="
        verdict = "yes" if met else "NO"
        lines.append(f"| {label} | {bs} | {value:.2f} | {sign} {limit} | {verdict} |")

    def ratio(d, a, b, bs):
        if (bs, a) not in d or (bs, b) not in d or d[bs, a] is None or not d[bs, b]:
            return None
        return d[bs, a] / d[bs, b]

    for bs in batches:
        add(
            "skweighted time / torch loop time",
            bs,
            ratio(t, REFERENCE, "torch loop", bs),
            1.0,
        )
    if 256 in batches:
        add(
            "skorch time / skweighted time",
            256,
            ratio(t, "skorch", REFERENCE, 256),
            4.0,
            False,
        )
    for bs in batches:
        add(
            "skweighted time / MLPClassifier time",
            bs,
            ratio(t, REFERENCE, "MLPClassifier", bs),
            1.3 if bs < 256 else 1.0,
        )
    for bs in batches:
        add(
            "skweighted memory / torch loop memory",
            bs,
            ratio(m, REFERENCE, "torch loop", bs),
            1.5,
        )
    return lines


def section_scaling(args, out):
    lines = [
        "| rows | skweighted (s) | torch loop (s) | skweighted us/row/epoch "
        "| us/row/epoch vs first |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    first = None
    for n in args.scaling_rows:
        X, y, w = make_data(n)
        times = time_fits(
            ["skweighted", "torch loop"], X, y, w, 256, args.epochs, args.repeats
        )
        per_row = times["skweighted"] / (n * args.epochs) * 1e6
        first = first or per_row
        lines.append(
            f"| {n:,} | {times['skweighted']:.3f} | {times['torch loop']:.3f} "
            f"| {per_row:.2f} | {per_row / first:.2f} |"
        )
    out.section(
        f"Scaling with the number of rows (batch 256, {args.epochs} epochs, median of "
        f"{args.repeats}): constant time per row means linear cost",
        "\n".join(lines),
    )


class _DeviceProbe:
    """A skorch callback that records where the data and class weights live."""

    def __new__(cls):
        from skorch.callbacks import Callback

        class Probe(Callback):
            def on_train_begin(self, net, X=None, y=None, **kwargs):
                self.data_device = str(X.X.device)
                self.weight_device = str(net.criterion_.weight.device)
                self.module_device = str(next(net.module_.parameters()).device)

        return Probe()


def section_device(args, out):
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = "CUDA is not available on this machine: GPU section skipped."
        print(msg, file=sys.stderr)
        out.section(f"Device section ({args.device})", msg)
        return

    from sklearn.metrics import balanced_accuracy_score

    from skweighted import WeightedNeuralNetClassifier

    X, y, w = make_data(args.rows)
    lines = [
        "| batch | contender | wall time (s) | samples / s |",
        "| ---: | --- | ---: | ---: |",
    ]
    for bs in args.batch_sizes:
        for name in ("skweighted", "torch loop", "skorch"):
            if name == "skorch" and bs < 256:
                continue  # per-row collation: minutes at batch 32, nothing new
            fit = CONTENDERS[name]
            fit(X[:2048], y[:2048], w, bs, 1, 0, device=device)  # warm-up
            ts = []
            for _ in range(args.repeats):
                _sync(device)
                start = time.perf_counter()
                fit(X, y, w, bs, args.epochs, 0, device=device)
                _sync(device)
                ts.append(time.perf_counter() - start)
            t = statistics.median(ts)
            lines.append(
                f"| {bs} | {name} | {t:.3f} | {len(X) * args.epochs / t:,.0f} |"
            )

    probe = _DeviceProbe()
    clf_kw = dict(
        module__hidden_units=HIDDEN,
        class_weight="balanced",
        lr=LR,
        max_epochs=args.epochs,
        batch_size=256,
        device=device,
        early_stopping=False,
        random_state=0,
    )
    clf = WeightedNeuralNetClassifier(callbacks=[probe], **clf_kw).fit(X, y)
    checks = [
        f"- training data on: `{probe.data_device}`",
        f"- criterion class weights on: `{probe.weight_device}` "
        f"(after fit: `{clf.net_.criterion_.weight.device}`)",
        f"- module on: `{probe.module_device}`",
    ]
    on_device = all(
        torch.device(d).type == device.type
        for d in (probe.data_device, probe.weight_device, probe.module_device)
    )
    checks.append(f"- all on {device.type}: **{'yes' if on_device else 'NO'}**")

    with torch.autocast(device.type, dtype=torch.bfloat16):
        start = time.perf_counter()
        amp = WeightedNeuralNetClassifier(**clf_kw).fit(X, y)
        _sync(device)
        t_amp = time.perf_counter() - start
    losses = amp.net_.history[:, "train_loss"]
    checks.append(
        f"- bfloat16 autocast fit with class weights: {t_amp:.2f} s, train loss "
        f"{losses[0]:.4f} -> {losses[-1]:.4f} (finite: "
        f"{'yes' if np.all(np.isfinite(losses)) else 'NO'}), balanced accuracy "
        f"{balanced_accuracy_score(y, amp.predict(X)):.3f} vs float32 "
        f"{balanced_accuracy_score(y, clf.predict(X)):.3f}"
    )
    out.section(
        f"Device section ({device}, {args.rows:,} rows, {args.epochs} epochs)",
        "\n".join(lines) + "\n\n" + "\n".join(checks),
    )


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def section_profile(args, out):
    """Where skweighted's fit time goes: cProfile's top functions by own time."""
    X, y, w = make_data(args.rows)
    parts = []
    for bs in args.batch_sizes:
        fit_skweighted(X, y, w, bs, 1, 0)
        prof = cProfile.Profile()
        prof.runcall(fit_skweighted, X, y, w, bs, args.epochs, 0)
        stream = io.StringIO()
        stats = pstats.Stats(prof, stream=stream)
        stats.sort_stats("tottime").print_stats(12)
        body = stream.getvalue()
        body = body[body.index("ncalls") :].rstrip() if "ncalls" in body else body
        parts.append(f"batch {bs}:\n\n```\n{body}\n```")
    out.section(
        f"Profile of skweighted's fit (cProfile, own time, {args.epochs} epochs)",
        "\n\n".join(parts),
    )


HOW_TO_READ = """\
How to read it: ratios are against skweighted in the same run; the targets
table checks the goals of issue 7. A fit's peak memory is the growth of the
peak resident set size of a fresh process over one fit (after importing
everything and creating the data), so it includes PyTorch's one-time lazy
initialisation of its kernels, which every torch contender pays alike.
Timings on a machine shared with other work are noisy, and with more than one
thread OpenMP waits for descheduled threads at every parallel region: compare
numbers only within one run on a quiet machine.

"""


# -- report ---------------------------------------------------------------------------
class Report:
    def __init__(self):
        self.parts = []

    def section(self, title, body):
        text = f"## {title}\n\n{body}\n"
        print(text, flush=True)
        self.parts.append(text)


def environment(args):
    import sklearn
    import skorch
    import torch

    import skweighted

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            names = [
                ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    return "\n".join(
        [
            f"- machine: {platform.system()} {platform.release()}, {cpu}, "
            f"{os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} usable)",
            f"- threads for every contender: {args.threads} "
            "(torch.set_num_threads and threadpoolctl)",
            f"- python {platform.python_version()}, torch {torch.__version__}, "
            f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}, "
            f"numpy {np.__version__}, skweighted {skweighted.__version__}",
            f"- command: `python benchmarks/bench_fit.py {_command(sys.argv[1:])}`",
        ]
    )


def _command(argv):
    """The command line, without the text of ``--note``."""
    shown = []
    for arg in argv:
        if shown and shown[-1] == "--note":
            arg = "..."
        shown.append(arg)
    return shlex.join(shown)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256, 2048])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--scaling-rows", type=int, nargs="*", default=[10_000, 50_000, 200_000]
    )
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS)
    )
    p.add_argument("--device", help="add the device section, e.g. 'cuda'")
    p.add_argument("--profile", action="store_true", help="add a cProfile section")
    p.add_argument("--no-memory", action="store_true", help="skip peak memory")
    p.add_argument("--markdown", help="also write the report to this file")
    p.add_argument("--note", help="a paragraph put under the report's title")
    p.add_argument(
        "--quick", action="store_true", help="a smoke run: 5,000 rows, 1 repeat"
    )
    p.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 5_000, 1
        args.scaling_rows = [2_000, 5_000, 10_000]
    if REFERENCE not in args.contenders:
        args.contenders.insert(0, REFERENCE)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(
            args.memory_child, args.rows, args.batch_sizes[0], args.epochs, args.threads
        )
        return
    set_threads(args.threads)
    out = Report()
    out.section("Environment", environment(args))
    start = time.perf_counter()
    warm_up(args.contenders)
    section_contenders(args, args.contenders, out)
    if args.scaling_rows:
        section_scaling(args, out)
    if args.profile:
        section_profile(args, out)
    if args.device:
        section_device(args, out)
    print(f"total benchmark time: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.markdown:
        header = (
            "Generated by `benchmarks/bench_fit.py` (see its docstring for what each "
            "contender does); every number below comes from that one run.\n\n"
            + (f"{args.note}\n\n" if args.note else "")
            + HOW_TO_READ
        )
        write_section(
            args.markdown, os.path.basename(__file__), header + "\n".join(out.parts)
        )


if __name__ == "__main__":
    main()

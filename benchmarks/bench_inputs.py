"""Image benchmark: a CNN on imbalanced 1x28x28 images, float32 and uint8 input.

Contenders, all training the same two-convolution CNN (about 55k parameters)
with Adam (lr=1e-3) and class-weighted ("balanced") cross-entropy, batch 128,
for the same number of epochs, on the same threads:

- ``skweighted (float32)``: :class:`skweighted.WeightedNeuralNetClassifier`
  on float32 images in ``[0, 1]``;
- ``skweighted (uint8)``: the same on the same images stored as ``uint8``;
  the module scales each batch by 1/255, so the fit never holds a float32
  copy of the data set (and trains on exactly the same numbers);
- ``skorch``: vanilla :class:`skorch.NeuralNetClassifier`, same module,
  weights and batch, on the float32 images (its DataLoader fetches and
  collates one image at a time);
- ``torch loop``: a hand-written PyTorch loop on the float32 images
  (per-epoch ``randperm``, images gathered per batch, ``loss.item()`` per
  batch, as in the PyTorch tutorials).

Run ``python benchmarks/bench_inputs.py`` (a few minutes on 2 cores);
``--quick`` for a smoke run; ``--markdown FILE`` writes the report in its section;
``--device cuda`` times the contenders on the GPU instead (skipped with a
message when CUDA is absent). Times are the median of ``--repeats`` fits
taken round-robin after one warm-up fit each (see ``bench_fit.py``). Peak
memory is the growth of a fresh process's peak resident set size over one fit
(CPU only), after the imports and the data creation.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sections import write_section
from bench_fit import (
    PAUSE,
    Report,
    _peak_rss_mib,
    _reset_peak_rss,
    environment,
    set_threads,
)

LR = 1e-3
N_CLASSES = 3
CLASS_FREQUENCIES = [0.8, 0.15, 0.05]
SIDE = 28


# -- data and module -------------------------------------------------------------
def make_images(n, seed=0):
    """``(X_float32, X_uint8, y, class_weight)``: the same images twice.

    Noisy 28x28 images, one faint class pattern each (a horizontal bar, a
    vertical bar, a diagonal). ``X_float32 == X_uint8 / 255`` exactly.
    """
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(seed)
    y = rng.choice(N_CLASSES, size=n, p=CLASS_FREQUENCIES).astype(np.int64)
    patterns = np.zeros((N_CLASSES, SIDE, SIDE))
    patterns[0, 12:16, :] = 1
    patterns[1, :, 12:16] = 1
    for k in range(-2, 3):
        patterns[2] += np.eye(SIDE, k=k)
    strength = rng.uniform(0.1, 0.4, (n, 1, 1, 1))
    X = rng.normal(0.3, 0.2, (n, 1, SIDE, SIDE)) + strength * patterns[y][:, None]
    X_uint8 = np.clip(np.rint(X * 255), 0, 255).astype(np.uint8)
    X_float32 = X_uint8.astype(np.float32) / np.float32(255)
    w = compute_class_weight("balanced", classes=np.arange(N_CLASSES), y=y)
    return X_float32, X_uint8, y, w.astype(np.float32)


def cnn_class():
    import torch
    from torch import nn

    from skweighted.modules import as_float

    class BenchCNN(nn.Module):
        """Conv(1->16) -> pool -> Conv(16->32) -> pool -> Linear(1568, 32) -> 3."""

        def __init__(self, n_classes=N_CLASSES):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.head = nn.Sequential(
                nn.Flatten(), nn.Linear(32 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 3)
            )

        def forward(self, X):
            return self.head(self.features(as_float(X)))

    torch.manual_seed(0)
    return BenchCNN


# -- contenders -------------------------------------------------------------------
def _skweighted(X, y, w, epochs, seed, device):
    from skweighted import WeightedNeuralNetClassifier

    return WeightedNeuralNetClassifier(
        module=cnn_class(),
        module__n_classes=N_CLASSES,
        class_weight="balanced",
        lr=LR,
        max_epochs=epochs,
        batch_size=128,
        device=device,
        early_stopping=False,  # every epoch timed, as skorch's
        random_state=seed,
    ).fit(X, y)


def fit_skweighted_float(data, epochs, seed, device="cpu"):
    X, _, y, w = data
    return _skweighted(X, y, w, epochs, seed, device)


def fit_skweighted_uint8(data, epochs, seed, device="cpu"):
    _, X, y, w = data
    return _skweighted(X, y, w, epochs, seed, device)


def fit_skorch(data, epochs, seed, device="cpu"):
    import torch
    from skorch import NeuralNetClassifier

    X, _, y, w = data
    torch.manual_seed(seed)
    return NeuralNetClassifier(
        cnn_class(),
        criterion=torch.nn.CrossEntropyLoss,
        criterion__weight=torch.as_tensor(w),
        optimizer=torch.optim.Adam,
        lr=LR,
        max_epochs=epochs,
        batch_size=128,
        iterator_train__shuffle=True,
        train_split=None,
        device=device,
        verbose=0,
    ).fit(X, y)


def fit_torch_loop(data, epochs, seed, device="cpu"):
    import torch

    X, _, y, w = data
    torch.manual_seed(seed)
    model = cnn_class()().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(w)).to(device)
    X_t = torch.from_numpy(X).to(device)
    y_t = torch.from_numpy(y).to(device)
    n = len(X_t)
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        total = 0.0
        for start in range(0, n, 128):
            idx = perm[start : start + 128]
            optimizer.zero_grad()
            loss = criterion(model(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
    return model


CONTENDERS = {
    "skweighted (float32)": fit_skweighted_float,
    "skweighted (uint8)": fit_skweighted_uint8,
    "skorch": fit_skorch,
    "torch loop": fit_torch_loop,
}
REFERENCE = "skweighted (float32)"


# -- measurement --------------------------------------------------------------------
def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_fits(names, data, epochs, repeats, device):
    times = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            time.sleep(PAUSE)
            _sync(device)
            start = time.perf_counter()
            CONTENDERS[name](data, epochs, 0, device)
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def memory_child(name, rows, epochs, threads):
    """Run in a fresh process: peak RSS growth of one fit, in MiB."""
    set_threads(threads)
    import torch  # noqa: F401 - every import happens before the baseline
    from skorch import NeuralNetClassifier  # noqa: F401

    import skweighted  # noqa: F401

    data = make_images(rows)
    CONTENDERS[name](make_images(256, seed=1), 1, 0, "cpu")  # lazy inits
    _reset_peak_rss()
    base = _peak_rss_mib()
    CONTENDERS[name](data, epochs, 0, "cpu")
    print(json.dumps({"peak_mib": _peak_rss_mib() - base}))


def peak_memory(name, args):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_memory-child",
        name,
        "--rows",
        str(args.rows),
        "--epochs",
        str(args.epochs),
        "--threads",
        str(args.threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def same_predictions(data, epochs):
    """Whether the float32 and uint8 fits predict the same labels."""
    X, X8, _, _ = data
    a = fit_skweighted_float(data, epochs, 0).predict(X[:2000])
    b = fit_skweighted_uint8(data, epochs, 0).predict(X8[:2000])
    return bool(np.array_equal(a, b))


# -- report ---------------------------------------------------------------------------
def section(args, out):
    data = make_images(args.rows)
    names = list(args.contenders)
    warm = make_images(512, seed=1)
    for name in names:
        CONTENDERS[name](warm, 1, 0, args.device)
    times = time_fits(names, data, args.epochs, args.repeats, args.device)
    on_cpu = args.device == "cpu"
    mems = {
        name: peak_memory(name, args) if on_cpu and not args.no_memory else None
        for name in names
    }
    ref = times[REFERENCE]
    lines = [
        "| contender | wall time (s) | time / skweighted (float32) "
        "| peak memory (MiB) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in names:
        mem = "n/a" if mems[name] is None else f"{mems[name]:.1f}"
        ratio = times[name] / ref
        lines.append(f"| {name} | {times[name]:.2f} | {ratio:.2f} | {mem} |")
    data_mib = {
        "float32": data[0].nbytes / 2**20,
        "uint8": data[1].nbytes / 2**20,
    }
    notes = [
        f"- the images themselves: {data_mib['float32']:.1f} MiB as float32, "
        f"{data_mib['uint8']:.1f} MiB as uint8",
    ]
    if args.check_predictions:
        same = same_predictions(data, args.epochs)
        notes.append(
            "- skweighted on uint8 and on float32 images predicts the same labels "
            f"(same seed): {'yes' if same else 'NO'}"
        )
    out.section(
        f"CNN on {args.rows:,} images 1x{SIDE}x{SIDE}, {N_CLASSES} classes "
        f"{CLASS_FREQUENCIES}, batch 128, {args.epochs} epochs, device "
        f"{args.device}, median of {args.repeats}",
        "\n".join(lines) + "\n\n" + "\n".join(notes),
    )
    out.section("Targets", "\n".join(targets(times, mems)))


def targets(times, mems):
    lines = ["| target | value | limit | met |", "| --- | ---: | ---: | --- |"]

    def add(label, a, b, limit, at_most):
        if a not in times or b not in times:
            return
        value = times[a] / times[b]
        met = value <= limit if at_most else value >= limit
        sign = "<=" if at_most else ">="
        lines.append(
            f"| {label} | {value:.2f} | {sign} {limit} | {'yes' if met else 'NO'} |"
        )

    add("skweighted (float32) / torch loop", REFERENCE, "torch loop", 1.05, True)
    uint8 = "skweighted (uint8)"
    add("skweighted (uint8) / torch loop", uint8, "torch loop", 1.05, True)
    add("skorch / skweighted (float32)", "skorch", REFERENCE, 1.1, False)
    m8, m32 = mems.get("skweighted (uint8)"), mems.get(REFERENCE)
    if m8 is not None and m32 is not None:
        lines.append(
            f"| peak memory: skweighted (uint8) / skweighted (float32) "
            f"| {m8 / m32:.2f} | < 1 | {'yes' if m8 < m32 else 'NO'} |"
        )
    return lines


HOW_TO_READ = """\
How to read it: every ratio is between contenders of this one run. The uint8
fit holds the images as uint8 (a quarter of the float32 size) and converts one
batch at a time; the test `tests/test_input_forms.py` checks the dtype and
size of what a fit holds. Timings on a shared machine are noisy: compare
numbers only within one run.

"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS)
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-memory", action="store_true", help="skip peak memory")
    p.add_argument(
        "--check-predictions",
        action="store_true",
        help="also check that uint8 and float32 fits predict alike",
    )
    p.add_argument(
        "--markdown",
        help="also write the report in this benchmark's section of this file "
        "(between its markers), e.g. docs/benchmarks.md",
    )
    p.add_argument("--note", help="a paragraph put under the report's title")
    p.add_argument("--quick", action="store_true", help="2,000 images, 1 repeat")
    p.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 2_000, 1
    if REFERENCE not in args.contenders:
        args.contenders.insert(0, REFERENCE)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.rows, args.epochs, args.threads)
        return
    set_threads(args.threads)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("CUDA is not available on this machine: nothing to time.")
            return
    out = Report()
    out.section(
        "Environment", environment(args).replace("bench_fit.py", "bench_inputs.py")
    )
    start = time.perf_counter()
    section(args, out)
    print(f"total benchmark time: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.markdown:
        write_markdown(args.markdown, out.parts, note=args.note)


def write_markdown(path, parts, note=None):
    """Put the report in this benchmark's section of ``path``."""
    header = (
        "## Image benchmark\n\nGenerated by `benchmarks/bench_inputs.py` (see its "
        "docstring for what each contender does); every number below comes "
        "from that one run.\n\n" + (f"{note}\n\n" if note else "") + HOW_TO_READ
    )
    text = header + "\n".join(part.replace("## ", "### ", 1) for part in parts)
    write_section(path, os.path.basename(__file__), text)


if __name__ == "__main__":
    main()

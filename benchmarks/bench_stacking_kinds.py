"""Which searches stack, and how much faster: issue 23's table, in one run.

Each row is a ``skweighted.model_selection.GridSearchCV`` (3 folds, no
refit) over a kind of network or training that users run, timed with
``stacking=True`` and ``stacking=False`` side by side in this process (both
warm: each search runs once untimed first, then the two alternate, best of
``--repeats``), with the ``stacking_`` report: how many fits stacked and,
for the others, the distinct reasons.

Rows:

- ``dropout+batchnorm``: an MLP ``Linear -> BatchNorm1d -> ReLU -> Dropout``,
  class_weight x lr;
- ``criteria``: WeightedCrossEntropy, Focal, BinaryCrossEntropy and
  LogitAdjusted losses x class_weight (binary data);
- ``multilabel``: a 3-label indicator ``y``, class_weight;
- ``token ids``: integer ``X`` into ``nn.Embedding``, class_weight;
- ``lr schedule``: skorch ``LRScheduler(CosineAnnealingLR)``, class_weight;
- ``cnn digits``: the default CNN on ``load_digits`` as ``(N, 1, 8, 8)``
  images, class_weight x lr;
- ``dict inputs``: a dict ``X`` (float features ``(N, 5)`` and int64 token
  ids ``(N, 12)``) into a module whose ``forward`` takes them by name,
  class_weight x lr;
- ``cnn 28x28``: the default CNN on the digits upsampled to ``(N, 1, 28,
  28)`` (bilinear), class_weight x lr;
- ``deep cnn 28x28``: a user module of two ``Conv2d(bias=False) ->
  BatchNorm2d -> ReLU -> MaxPool2d`` blocks and a Linear output layer
  (:class:`DeepCNN`), on the same 28 x 28 images, class_weight x lr.

Run ``python benchmarks/bench_stacking_kinds.py`` (a few minutes on 2 cores;
``--quick`` for a smoke run); ``--markdown FILE`` replaces this benchmark's
section of FILE (between its markers) with the report.
"""

import argparse
import os
import platform
import shlex
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import (
    load_digits,
    make_classification,
    make_multilabel_classification,
)
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _sections import write_section


class NormDropoutMLP(nn.Module):
    """``Linear -> BatchNorm1d -> ReLU -> Dropout`` then the output layer."""

    def __init__(self, n_features_in, n_classes, hidden=32, p=0.2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features_in, hidden, bias=False),  # BatchNorm has one
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(p),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.net(X)


class TokenBag(nn.Module):
    """Token ids -> ``nn.Embedding`` -> mean over the sequence -> Linear."""

    def __init__(self, n_classes, vocab=50, dim=16):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, n_classes)

    def forward(self, X):
        return self.out(self.embedding(X).mean(1))


class NumAndTokens(nn.Module):
    """A dict ``X`` by keyword: float features through a Linear layer, token
    ids through ``nn.Embedding`` (mean over the sequence), then Linear."""

    def __init__(self, n_classes, n_num=5, vocab=50, dim=16):
        super().__init__()
        self.num = nn.Linear(n_num, dim)
        self.embedding = nn.Embedding(vocab, dim)
        self.out = nn.Linear(2 * dim, n_classes)

    def forward(self, num, tok):
        h = torch.cat([self.num(num), self.embedding(tok).mean(1)], dim=1)
        return self.out(torch.relu(h))


class DeepCNN(nn.Module):
    """Two ``Conv2d(bias=False) -> BatchNorm2d -> ReLU -> MaxPool2d`` blocks,
    then ``Flatten -> Linear``, for 1 x 28 x 28 images."""

    def __init__(self, n_classes, channels=(16, 32)):
        super().__init__()
        blocks, c = [], 1
        for out in channels:  # no bias before BatchNorm: it has one
            blocks += [nn.Conv2d(c, out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]  # fmt: skip
            c = out
        side = 28 // 2 ** len(channels)
        self.net = nn.Sequential(
            *blocks, nn.Flatten(), nn.Linear(c * side * side, n_classes)
        )

    def forward(self, X):
        return self.net(X)


def _digits_28(images):
    """The 8 x 8 digit images upsampled (bilinear) to 28 x 28."""
    big = torch.nn.functional.interpolate(
        torch.from_numpy(images), size=(28, 28), mode="bilinear", align_corners=False
    )
    return big.numpy()


def _rows(quick):
    from skorch.callbacks import LRScheduler
    from skorch.helper import SliceDict

    from skweighted import WeightedNeuralNetClassifier as Net
    from skweighted.losses import (
        BinaryCrossEntropyLoss,
        FocalLoss,
        LogitAdjustedLoss,
        WeightedCrossEntropyLoss,
    )

    n = 600 if quick else 3000
    epochs = 2 if quick else 5
    common = dict(max_epochs=epochs, batch_size=64, random_state=0)
    cw = {"class_weight": [None, "balanced"]}
    X3, y3 = make_classification(
        n, 20, n_informative=8, n_classes=3, weights=[0.8, 0.15], random_state=0
    )
    X3 = X3.astype(np.float32)
    X2, y2 = make_classification(n, 20, weights=[0.9], random_state=0)
    X2 = X2.astype(np.float32)
    Xm, Ym = make_multilabel_classification(n, 20, n_classes=3, random_state=0)
    Xm = Xm.astype(np.float32)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=(n, 12))
    y_tok = (tokens[:, :3].sum(1) > 90).astype(int) + (tokens[:, 0] > 45)
    # the token row's labels, with a float signal: both inputs matter
    mixed = SliceDict(num=X3[:, :5], tok=tokens)
    y_mixed = (y_tok + (X3[:, 0] > 1)) % 3
    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    if quick:
        images, y_dig = images[:600], digits.target[:600]
    else:
        y_dig = digits.target
    images_28 = _digits_28(images)
    return [
        (
            "dropout+batchnorm",
            Net(NormDropoutMLP, **common),
            {**cw, "lr": [0.01, 0.03]},
            X3,
            y3,
        ),
        (
            "criteria",
            Net(**common),
            {
                **cw,
                "criterion": [
                    WeightedCrossEntropyLoss,
                    FocalLoss,
                    BinaryCrossEntropyLoss,
                    LogitAdjustedLoss,
                ],
            },
            X2,
            y2,
        ),
        ("multilabel", Net(**common), cw, Xm, Ym),
        ("token ids", Net(TokenBag, **common), cw, tokens, y_tok),
        (
            "lr schedule",
            Net(
                **common,
                callbacks=[
                    LRScheduler(
                        torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs
                    )
                ],
            ),
            cw,
            X3,
            y3,
        ),
        ("cnn digits", Net(**common), {**cw, "lr": [0.01, 0.03]}, images, y_dig),
        (
            "dict inputs",
            Net(NumAndTokens, **common),
            {**cw, "lr": [0.01, 0.03]},
            mixed,
            y_mixed,
        ),
        ("cnn 28x28", Net(**common), {**cw, "lr": [0.01, 0.03]}, images_28, y_dig),
        (
            "deep cnn 28x28",
            Net(DeepCNN, **common),
            {**cw, "lr": [0.01, 0.03]},
            images_28,
            y_dig,
        ),
    ]


def _search(est, grid, X, y, stacking):
    from skweighted import model_selection as ms

    search = ms.GridSearchCV(est, grid, cv=3, refit=False, stacking=stacking)
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start, search.stacking_


def bench(quick, repeats, only=None):
    out = []
    for name, est, grid, X, y in _rows(quick):
        if only and name not in only:
            continue
        _search(est, grid, X, y, True)  # warm-up: imports, first allocations
        times = {True: [], False: []}
        for _ in range(repeats):
            for stacking in (False, True):
                seconds, report = _search(est, grid, X, y, stacking)
                times[stacking].append(seconds)
                if stacking:
                    stacked = report
        on, off = min(times[True]), min(times[False])
        reasons = sorted(set(stacked["separate"]))
        out.append(
            {
                "name": name,
                "stacked": f"{stacked['n_stacked']}/{stacked['n_fits']}",
                "on_s": on,
                "off_s": off,
                "speedup": off / on,
                "reasons": reasons,
            }
        )
        print(out[-1], flush=True)
    return out


def markdown(results, command):
    lines = [
        "## Which searches stack (issue 23's table)",
        "",
        "Generated by `benchmarks/bench_stacking_kinds.py` (see its docstring); "
        "every number below comes from that one run.",
        "",
        f"- command: `{command}`",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}, torch {torch.__version__}",
        "",
        "| search (3 folds) | stacked | stacking on (s) | off (s) | off / on | "
        "why not stacked |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        why = "; ".join(r["reasons"]) or "-"
        lines.append(
            f"| {r['name']} | {r['stacked']} | {r['on_s']:.2f} | {r['off_s']:.2f} "
            f"| {r['speedup']:.2f}x | {why.replace('|', '/')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--rows", nargs="+", default=None, help="only these rows")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    results = bench(args.quick, args.repeats, args.rows)
    report = markdown(
        results,
        "python " + shlex.join(["benchmarks/bench_stacking_kinds.py", *sys.argv[1:]]),
    )
    print(report)
    if args.markdown:
        write_section(args.markdown, os.path.basename(__file__), report)


if __name__ == "__main__":
    main()

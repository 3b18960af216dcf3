"""A comparison on a deployed Dask cluster survives the loss of a worker.

The cluster is deployed as a user deploys it: a ``dask scheduler`` process
and two ``dask worker --nworkers 1 --nthreads 1`` processes (each a nanny
that restarts its worker when it dies), on 127.0.0.1 only, started by this
module and ended by it. ``python -m skweighted compare --scheduler`` runs in
a subprocess, and a worker process is killed from outside with SIGKILL: right
after the command connects, while it runs its fits, while it trains a stack
chunk. Each run must finish (exit status 0) with the numbers of a local run.
Last, with every worker gone for good, the run must stop after
``--worker-timeout`` with a partial report and the command to resume.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config
from sklearn.datasets import make_classification

from skweighted import WeightedNeuralNetClassifier
from skweighted.cli import main
from skweighted.model_selection import GridSearchCV

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: A small comparison: 2 strategies x 2 folds, 100 epochs.
ARGS = ["compare", "--strategies", "none,balanced", "--folds", "2", "--seed", "0"]
# fits long enough to be seen: 100 epochs, every one trained
ARGS += ["--epochs", "100", "--no-early-stopping", "--no-progress"]
#: Seconds any one step may take before the test fails.
LIMIT = 120


def _env():
    """This checkout's skweighted on every process of the cluster."""
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _wait(condition, what, limit=LIMIT, every=0.05):
    end = time.monotonic() + limit
    while not (value := condition()):
        assert time.monotonic() < end, f"waited {limit} s for {what}"
        time.sleep(every)
    return value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A client of a scheduler with two nanny-managed workers, in processes
    started here; ``client.nannies`` holds the worker commands' processes."""
    where = tmp_path_factory.mktemp("cluster")
    file = where / "scheduler.json"
    processes = []

    def start(module, *args):
        log = (where / f"{len(processes)}.log").open("w")
        command = [sys.executable, "-m", f"distributed.cli.{module}", *args]
        processes.append(
            subprocess.Popen(command, cwd=where, env=_env(), stdout=log, stderr=log)
        )

    try:
        start(
            "dask_scheduler",
            *("--host", "127.0.0.1", "--port", "0", "--no-dashboard"),
            *("--scheduler-file", str(file)),
        )
        _wait(file.exists, "the scheduler", every=0.1)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            start(
                "dask_worker",
                *(address, "--host", "127.0.0.1", "--nworkers", "1"),
                *("--nthreads", "1", "--no-dashboard"),
                *("--local-directory", str(where)),
            )
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=LIMIT)
            client.nannies = processes[1:]
            yield client
    finally:
        for process in reversed(processes):  # only what this fixture started
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """``results.csv`` of the local runs, stacked and not."""

    def run(*extra):
        out = tmp_path_factory.mktemp("local")
        assert main([*ARGS, *extra, "--quiet", "--out", str(out)]) == 0
        return _results(out)

    # a stack in as many chunks as the cluster has workers, as there: the
    # same chunks give the same float32 rounding
    return {"stacked": run("--n-jobs", "2"), "unstacked": run("--no-stacking")}


def _results(out):
    frame = pd.read_csv(Path(out) / "results.csv")
    return frame.drop(columns=["fit_time", "score_time"])


def _run(client, out, extra, victim):
    """Run the command on ``client``'s cluster and SIGKILL the worker process
    at the address ``victim(line)`` returns, for a line of the command's
    stderr or, polled, for ``None``. The exit status and stderr."""
    client.wait_for_workers(2, timeout=LIMIT)  # a killed worker is back
    pids = client.run(os.getpid)
    command = [sys.executable, "-m", "skweighted", *ARGS, *extra]
    command += ["--scheduler", client.scheduler.address, "--out", str(out)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True
    )
    lines, killed, once = [], [], threading.Lock()

    def kill(address):
        with once:  # the reader thread and this one: one kill in all
            if address and not killed:
                with contextlib.suppress(ProcessLookupError):  # gone already
                    os.kill(pids[address], signal.SIGKILL)
                killed.append(address)

    def read():
        for line in process.stderr:
            lines.append(line)
            kill(victim(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        end = time.monotonic() + LIMIT
        while not killed:
            assert process.poll() is None, "the run ended before the kill"
            assert time.monotonic() < end, "no moment to kill a worker came"
            kill(victim(None))
            time.sleep(0.05)
        process.wait(timeout=LIMIT)
    finally:
        if process.poll() is None:
            process.kill()  # only this test's own process
            process.wait()
    reader.join(timeout=10)
    return process.returncode, "".join(lines)


def _running(client, function):
    """A watcher for ``_run``: the worker running a call of ``function``."""

    def when(line):
        if line is not None:
            return None
        for address, keys in client.processing().items():
            if any(str(k).startswith(f"batch_of_{function}_") for k in keys):
                return address
        return None

    return when


def test_a_worker_killed_right_after_connecting(cluster, local, tmp_path):
    first = sorted(cluster.run(os.getpid))[0]
    rc, stderr = _run(
        cluster,
        tmp_path,
        ["--no-stacking"],
        lambda line: first if line and line.startswith("Dask:") else None,
    )
    assert rc == 0, stderr
    pd.testing.assert_frame_equal(_results(tmp_path), local["unstacked"])


def test_a_worker_killed_during_the_fits(cluster, local, tmp_path):
    rc, stderr = _run(
        cluster, tmp_path, ["--no-stacking"], _running(cluster, "run_task")
    )
    assert rc == 0, stderr
    assert re.search(r"\(\d+ fits?\) runs again on the other workers", stderr)
    pd.testing.assert_frame_equal(_results(tmp_path), local["unstacked"])


def test_a_worker_killed_during_a_stack_chunk(cluster, local, tmp_path):
    rc, stderr = _run(cluster, tmp_path, [], _running(cluster, "train_chunk"))
    assert rc == 0, stderr
    assert re.search(r"\(\d+ stack chunks?\) runs again on the other workers", stderr)
    pd.testing.assert_frame_equal(_results(tmp_path), local["stacked"])


@pytest.mark.parametrize(
    "stacking, function", [(False, "_fit_and_score"), (True, "train_chunk")]
)
def test_a_search_survives_a_worker_killed_during_its_fits(cluster, stacking, function):
    """A search under ``parallel_config(backend="dask")``, stacked (its stack
    chunks on the workers) or not (its fits): the same ``cv_results_``."""
    X, y = make_classification(n_samples=200, weights=[0.8], random_state=0)
    X = X.astype(np.float32)

    def search():
        return GridSearchCV(
            # long enough that the killer sees a fit or chunk running (with
            # 20 epochs a stack chunk could end between two looks)
            WeightedNeuralNetClassifier(max_epochs=100, random_state=0),
            {"class_weight": [None, "balanced"]},
            cv=2,
            n_jobs=-1,
            stacking=stacking,
        ).fit(X, y)

    with parallel_config(backend="sequential"):  # no process pool to start
        local = search().cv_results_
    cluster.wait_for_workers(2, timeout=LIMIT)
    pids, killed = cluster.run(os.getpid), []

    def kill():
        end = time.monotonic() + LIMIT
        while not killed and time.monotonic() < end:
            if victim := _running(cluster, function)(None):
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.05)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    with parallel_config(backend="dask"):
        remote = search().cv_results_
    killer.join(timeout=LIMIT)
    assert killed, "no worker was killed"
    for key in ["mean_test_score", "split0_test_score", "split1_test_score"]:
        np.testing.assert_array_equal(remote[key], local[key])


def test_no_worker_left_stops_with_a_partial_report(cluster, tmp_path):
    """Every worker gone for good (its nanny too), once a fit has finished:
    the run stops after ``--worker-timeout`` and says how to resume. It ends
    the cluster's workers, so it comes last."""

    def gone(line):
        fits = tmp_path / "fits.jsonl"
        if line is None and fits.exists() and fits.read_text().count("\n") >= 2:
            address = sorted(cluster.scheduler_info()["workers"])[0]
            for nanny in cluster.nannies:
                nanny.kill()  # its worker process ends with it
            return address
        return None

    rc, stderr = _run(
        cluster, tmp_path, ["--no-stacking", "--worker-timeout", "2"], gone
    )
    assert rc == 1, stderr
    assert "no worker for 2 s (--worker-timeout)" in stderr
    assert "Partial report: " in stderr
    assert "resume with: skweighted compare" in stderr

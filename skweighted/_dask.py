"""Running through joblib on a Dask cluster that can lose workers.

Under ``joblib.parallel_config(backend="dask")``, :func:`survive_lost_workers`
(around :func:`~skweighted.compare` and the searches of
:mod:`skweighted.model_selection`) makes a lost worker cost only the work it
was running:

- the data joblib sends to the workers is data Dask can compute again
  (:func:`skweighted._compat.resilient_dask_backend`), so Dask reschedules
  the lost worker's tasks on the others instead of cancelling them;
- a watcher says which worker was lost and how many of the run's tasks were
  running there (they run again elsewhere);
- when no worker is left for ``wait_for_workers_timeout`` seconds (joblib's
  own setting of its Dask backend: 10 by default, ``--worker-timeout`` of
  the command line), every pending call ends in :class:`NoWorkerError`,
  so a comparison stops through its partial report and ``resume``.

Outside a Dask backend it does nothing.
"""

import contextlib
import logging
import re
import threading
import time

from ._compat import active_backend, resilient_dask_backend

__all__ = ["NoWorkerError", "survive_lost_workers"]

logger = logging.getLogger("skweighted")

#: How often the watcher asks the scheduler for its workers (seconds).
POLL = 1.0

#: What one call of these functions is, for the messages.
_WHAT = {"run_task": "fit", "_fit_and_score": "fit", "train_chunk": "stack chunk"}


class NoWorkerError(TimeoutError):
    """The Dask cluster had no worker for longer than the run waits."""


@contextlib.contextmanager
def survive_lost_workers(notify=None):
    """Run the block so that a lost Dask worker costs only its running work.

    Parameters
    ----------
    notify : callable, default=None
        Called with one line of text when a worker is lost or none is left
        (default: a warning of the ``skweighted`` logger). It is called from
        another thread.
    """
    backend = active_backend()
    active, n_jobs = backend["backend"], backend["n_jobs"]
    backend = resilient_dask_backend(active)
    if backend is None or backend is active:
        yield  # not Dask, or already inside this block
        return
    from joblib import parallel_config

    watch = _Watch(backend, notify or logger.warning)
    thread = threading.Thread(target=watch.run, name="skweighted-dask", daemon=True)
    thread.start()
    try:
        with parallel_config(backend=backend, n_jobs=n_jobs):
            yield
    finally:
        watch.stop.set()
        thread.join()


class _Watch:
    """Polls the scheduler: reports lost workers, gives up without any."""

    def __init__(self, backend, notify):
        self.backend, self.client, self.notify = backend, backend.client, notify
        self.timeout = backend.wait_for_workers_timeout  # None: for ever
        self.stop = threading.Event()

    def _workers(self):
        """The workers' addresses; none when the scheduler cannot be reached."""
        try:
            return set(self.client.nthreads())
        except Exception:  # a lost scheduler is no worker for the run
            return set()

    def run(self):
        before = self._workers()
        since = None  # when the last worker went
        while True:
            stopping = self.stop.wait(POLL)
            now = self._workers()
            for address in sorted(before - now):
                self.notify(self._lost(address))
            before = now
            if stopping:
                return
            if now:
                since = None
                continue
            if since is None:
                since = time.monotonic()
                wait = "for ever" if self.timeout is None else f"{self.timeout:g} s"
                self.notify(f"Dask: no worker left; waiting {wait} for one to join")
            if self.timeout is not None and time.monotonic() - since >= self.timeout:
                error = NoWorkerError(
                    f"the Dask cluster had no worker for {self.timeout:g} s "
                    "(wait_for_workers_timeout)"
                )
                self.client.loop.add_callback(self.backend.give_up, error)
                return

    def _lost(self, address):
        """What to say of the worker at ``address``, gone: the scheduler's
        ``remove-worker`` event lists what it was running (or held queued)."""
        keys = set()
        with contextlib.suppress(Exception):  # no event log: say less
            for _, event in self.client.get_events(address):
                if isinstance(event, dict) and event.get("action") == "remove-worker":
                    keys.update(event.get("processing-tasks", ()))
        counts = {}
        for key in keys:
            match = re.match(r"(?:mixed_)?batch_of_(.+)_(\d+)_calls-", str(key))
            if match and key in self.client.futures:  # this client's calls
                what = _WHAT.get(match[1], "task")
                counts[what] = counts.get(what, 0) + int(match[2])
        if not counts:
            return f"Dask: worker {address} lost; none of this run's work was on it"
        work = ", ".join(f"{n} {what}{'s' * (n > 1)}" for what, n in counts.items())
        return (
            f"Dask: worker {address} lost; its running work ({work}) runs again "
            "on the other workers"
        )

"""Progress of a comparison: fits done, failed, and the time left.

On a terminal (or in a notebook) a tqdm bar; elsewhere (a CI log, a file)
one plain line per finished fit, so the log reads top to bottom without
carriage returns.
"""

import os
import sys
import time
from datetime import timedelta

from tqdm.auto import tqdm

__all__ = ["Progress"]


def _interactive(stream):
    """A notebook, or a terminal with a width (a bar needs one)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return False


def _clock(seconds):
    return str(timedelta(seconds=round(seconds)))


class Progress:
    """Report each finished fit of ``total``, ``done`` of which were recorded.

    Parameters
    ----------
    total : int
        Fits in the run.
    done : int
        Fits already finished before this session (resumed).
    failed : int
        How many of those failed.
    enabled : bool
        False shows nothing.
    stream : file, default=None
        Where to write (default: ``sys.stderr``).
    """

    def __init__(self, total, done=0, failed=0, *, enabled=True, stream=None):
        self.total, self.done, self.failed = total, done, failed
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self._start, self._session = time.monotonic(), 0
        self._bar = None
        if enabled and _interactive(self.stream):
            self._bar = tqdm(
                total=total,
                initial=done,
                unit="fit",
                file=self.stream,
                dynamic_ncols=True,
            )
            self._bar.set_postfix_str(f"failed={failed}", refresh=True)
        elif enabled and done:
            self._line(f"resuming: {done} of {total} fits already done")

    def _line(self, text):
        print(text, file=self.stream, flush=True)

    def eta(self):
        """Seconds left, from this session's pace; ``None`` before the first fit."""
        if not self._session:
            return None
        pace = (time.monotonic() - self._start) / self._session
        return pace * (self.total - self.done)

    def stage(self, text):
        """A step of the run before the fits finish one by one (the stacked
        training): show ``text`` (``None`` clears it); the time left is
        estimated from the fits that finish from now on."""
        self._start, self._session = time.monotonic(), 0
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_description_str(text or "", refresh=True)
        elif text is not None:
            self._line(text)

    def training(self, stack, n_stacks, n_fits, epoch, n_epochs):
        """The stacked training reached ``epoch`` of ``n_epochs`` in stack
        ``stack`` of ``n_stacks`` (``n_fits`` networks): shown on the bar,
        or as a line at each fifth of the epochs on a log."""
        if not self.enabled:
            return
        text = (
            f"stacking: stack {stack}/{n_stacks} ({n_fits} fits), "
            f"epoch {epoch}/{n_epochs}"
        )
        if self._bar is not None:
            self._bar.set_description_str(text, refresh=True)
            return
        step = max(1, n_epochs // 5)
        shown = getattr(self, "_shown", None)
        if (epoch % step == 0 or epoch == n_epochs) and shown != (stack, epoch):
            self._shown = stack, epoch
            self._line(text)

    def note(self, text):
        """Show one line of news (a lost Dask worker) between the fits."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self._line(text)

    def update(self, record):
        """Count one finished :class:`~._store.FitRecord`."""
        self.done += 1
        self._session += 1
        self.failed += record.failed
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"failed={self.failed}, last={record.strategy}", refresh=False
            )
            self._bar.update()
            return
        width = len(str(self.total))
        outcome = f"failed ({record.error_type})" if record.failed else "ok"
        eta = self.eta()
        self._line(
            f"[{self.done:>{width}}/{self.total}] {record.strategy} fold "
            f"{record.fold}: {outcome} | {self.failed} failed | "
            f"ETA {_clock(eta) if eta is not None else '?'}"
        )

    def close(self):
        if self._bar is not None:
            self._bar.close()

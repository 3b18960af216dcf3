"""Process-wide thread counts lowered for a block, safely across threads.

PyTorch's intra-op thread count and the BLAS libraries' thread pools are
process-wide settings. A block that saves the setting, lowers it and restores
it on exit races with the same block in another thread: when two overlap,
the one leaving last restores the value the other had lowered, and the
process keeps one thread for good. For torch, every block shares a count of
the blocks inside: the first to enter saves the caller's value and lowers
it, the last to leave restores it; blocks in other threads run at the same
time. For BLAS, blocks take turns (see :func:`single_blas_thread`).
"""

import threading
from contextlib import contextmanager
from functools import cache

import torch


class _SharedLimit:
    """A process-wide setting lowered while any thread is inside :meth:`block`.

    Parameters
    ----------
    lower : callable
        Lowers the setting; returns what :func:`restore` needs to undo it.
    restore : callable
        Takes what ``lower`` returned and puts the caller's setting back.
    """

    def __init__(self, lower, restore):
        self._lower = lower
        self._restore = restore
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = None

    @contextmanager
    def block(self):
        with self._lock:
            if self._inside == 0:
                self._saved = self._lower()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    self._restore(self._saved)
                    self._saved = None


def _lower_torch():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    return before


_TORCH = _SharedLimit(_lower_torch, torch.set_num_threads)


def one_torch_thread():
    """Run the block on one PyTorch intra-op thread, then restore the caller's.

    The networks of a comparison are small: PyTorch's intra-op threads cost
    more in synchronisation than they save (ten times more on a busy machine),
    and parallelism comes from running fits side by side (``n_jobs``).
    """
    return _TORCH.block()


@cache
def _threadpools():
    # threadpoolctl comes with scikit-learn (a requirement of it); finding
    # the loaded BLAS libraries takes ~10 ms, so it is done once
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


#: Held inside :func:`single_blas_thread`.
_BLAS_LIMIT = threading.Lock()


@contextmanager
def single_blas_thread():
    """Run the block with the BLAS libraries (OpenBLAS, MKL) on one thread.

    SciPy's L-BFGS-B, rewritten in C in SciPy 1.15, calls BLAS on tiny
    matrices at every iteration, and a multi-threaded OpenBLAS spends far more
    waking its threads than computing (scipy/scipy#23191): a logistic
    regression on one feature and 400 rows takes 15 ms on 2 cores instead of
    4 ms on one. The numbers are the same; the caller's setting is restored.

    Unlike torch's count, an OpenMP build's BLAS limit belongs to the thread
    that sets it, so a shared count would leave the other threads' BLAS
    unlimited: here threads take turns in the block (a lock) instead; the
    blocks are short.
    """
    with _BLAS_LIMIT, _threadpools().limit(limits=1, user_api="blas"):
        yield

"""Process-wide thread counts lowered for a block, safely across threads.

PyTorch's intra-op thread count and the BLAS libraries' thread pools are
process-wide settings. A block that saves the setting, lowers it and restores
it on exit races with the same block in another thread: when two overlap,
the one leaving last restores the value the other had lowered, and the
process keeps one thread for good. For torch, the first block to enter
saves the caller's count and every block restores it in its own thread on
leaving; blocks in other threads run at the same time. For BLAS, blocks take
turns (see :func:`single_blas_thread`).
"""

import threading
from contextlib import contextmanager
from functools import cache

import torch

#: Guards the count of torch blocks inside and the count they restore.
_TORCH_LOCK = threading.Lock()
_torch = {"inside": 0, "saved": None}


@contextmanager
def one_torch_thread():
    """Run the block on one PyTorch intra-op thread, then restore the caller's.

    The networks of a comparison are small: PyTorch's intra-op threads cost
    more in synchronisation than they save (ten times more on a busy machine),
    and parallelism comes from running fits side by side (``n_jobs``).

    PyTorch's count is partly process-wide and partly per thread (OpenMP's
    setting belongs to the thread that makes it; the main thread's is the
    default of the others). So the first block to enter saves the count, and
    every block, on leaving, sets that saved count again in its own thread:
    no thread keeps one thread for good, whichever order blocks in several
    threads overlap in.
    """
    with _TORCH_LOCK:
        if _torch["inside"] == 0:
            _torch["saved"] = torch.get_num_threads()
        _torch["inside"] += 1
        saved = _torch["saved"]
    torch.set_num_threads(1)
    try:
        yield
    finally:
        with _TORCH_LOCK:
            _torch["inside"] -= 1
        torch.set_num_threads(saved)


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

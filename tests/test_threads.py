"""Process-wide thread counts lowered for a block (skweighted._threads)."""

import threading

import pytest
import torch
from threadpoolctl import threadpool_info

from skweighted._threads import one_torch_thread, single_blas_thread


def _overlap(block, inside):
    """Two threads in ``block``, the first leaving while the second is still
    inside; what ``inside()`` reads in the second thread after the first left."""
    first_in, first_out, second_in = (threading.Event() for _ in range(3))
    seen = []

    def first():
        with block():
            first_in.set()
            second_in.wait(0.5)  # a block that takes turns lets it in later
        first_out.set()

    def second():
        first_in.wait(5)
        with block():
            second_in.set()
            first_out.wait(5)
            seen.append(inside())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return seen


def test_one_torch_thread_restores_the_count_when_blocks_overlap():
    """The save-and-restore of torch's thread count raced: two overlapping
    blocks left the process (a Dask worker's threads) on one thread for good."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _overlap(one_torch_thread, torch.get_num_threads)
        # the caller's count comes back (once the first block left, the one
        # still running may use it too: PyTorch's count is partly shared)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_one_torch_thread_restores_the_main_threads_count_too():
    """The main thread enters first and leaves while a block in another
    thread runs: the main thread's count (OpenMP's, per thread) comes back.
    A shared count restored by the last block to leave, in its own thread,
    left the main thread on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside, leave = threading.Event(), threading.Event()

    def other():
        with one_torch_thread():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other)
    try:
        with one_torch_thread():
            thread.start()
            inside.wait(5)
            assert torch.get_num_threads() == 1
        leave.set()
        thread.join(10)
        assert torch.get_num_threads() == 2
    finally:
        leave.set()
        torch.set_num_threads(before)


def _blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_single_blas_thread_restores_the_limit_when_blocks_overlap():
    before = _blas_threads()
    if not before or max(before) < 2:
        pytest.skip("BLAS runs on one thread already: nothing to restore")
    _overlap(single_blas_thread, _blas_threads)  # blocks take turns: no deadlock
    assert _blas_threads() == before

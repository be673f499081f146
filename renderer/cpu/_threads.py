"""Parallel launch of the CPU kernels: serial numba kernels (``nogil``) fanned out over a thread pool.

Each kernel takes ``(job, n_jobs, ...)`` and picks its share of the work (a contiguous block or every
``n_jobs``-th tile). Compared with numba's ``parallel=True`` this compiles faster, is fork-safe (no
OpenMP runtime), allows concurrent calls from several Python threads, and lets jobs be scheduled
dynamically for load balance. The thread count follows ``torch.get_num_threads()``, so one knob (and
pytest-xdist's one-thread-per-worker setting) governs both torch and the rasterizer.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import torch

#: Keyword arguments shared by every kernel: on-disk cache, no GIL, numpy float semantics (x/0 = inf).
NJIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def num_threads() -> int:
    """Worker threads the rasterizer uses now: ``torch.get_num_threads()``, at most the CPU count."""
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _forget_pool_after_fork() -> None:
    """A forked child inherits the pool object but not its threads: start a fresh one when needed."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="renderer")
        return _pool


def launch(kernel: Callable[..., None], n_jobs: int, *args: object) -> None:
    """Run ``kernel(job, n_jobs, *args)`` for ``job in range(n_jobs)`` on up to :func:`num_threads` threads.

    Jobs are handed out one at a time from a shared counter (dynamic balance). With one thread or one job
    everything runs in the calling thread. Exceptions propagate.
    """
    n_jobs = max(1, int(n_jobs))
    threads = min(num_threads(), n_jobs)
    if threads == 1:
        for job in range(n_jobs):
            kernel(job, n_jobs, *args)
        return
    counter = itertools.count()  # next() is atomic under the GIL

    def worker() -> None:
        for job in iter(counter.__next__, None):
            if job >= n_jobs:
                return
            kernel(job, n_jobs, *args)

    futures = [_get_pool().submit(worker) for _ in range(threads)]
    for f in futures:
        f.result()


@numba.njit(**NJIT_OPTIONS)
def block(job: int, n_jobs: int, n_items: int) -> tuple[int, int]:
    """The contiguous share ``[lo, hi)`` of ``n_items`` that job ``job`` of ``n_jobs`` handles."""
    return n_items * job // n_jobs, n_items * (job + 1) // n_jobs


def jobs_for(n_items: int, per_thread: int = 4) -> int:
    """A job count for ``n_items`` independent items: a few jobs per thread for dynamic balance."""
    return max(1, min(n_items, num_threads() * per_thread))

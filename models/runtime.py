"""Process-wide CPU runtime setting for inference and training: glibc's malloc, tuned for big tensors.

PyTorch's CPU tensors come from ``malloc``. In a thread other than the main one (the service's model runs in
one) glibc serves them from a per-thread arena made of 64 MiB heaps, and unmaps a heap as soon as it is
entirely free; it also serves large blocks with a fresh ``mmap`` that ``free`` unmaps. Either way every
forward pass faults its activations' pages in again, and the kernel zero-fills each 4 KiB page (expensive
in a virtual machine). So: one arena for all threads (the main one, which grows and shrinks only at its
top), the mmap threshold fixed high (large blocks stay in the heap) and a high trim threshold (freed
memory is not handed back), so the next pass reuses pages that are already mapped. A handful of threads
allocate here (a worker per device, two I/O threads), a few thousand times per forward pass. The shared
arena's lock: two model threads reconstructing 16 scenes at once took 3.44 s with it vs 3.35 s with one
arena per thread (medians of 5 runs, within this VM's run-to-run spread of ±10 %); one thread, 6.62 vs
6.64 s.

Measured on this project's 2-core VM (``tiny``, 4-view 224×224 scenes, 1 torch thread, called from a
worker thread): minor page faults over three calls ~16,000 → ~1,000; without the single arena, how many
faults remained depended on where blocks happened to land (~850 to ~8,000 after small changes to the
Gaussian code). Re-measured on 2026-12-03 the model-level counts were 0–1,800 tuned against 900–6,400
untuned: through PyTorch they also depend on heap fragmentation (small allocations landing between the
big ones), so ``tests/models/test_runtime.py`` checks the mechanism itself with malloc called directly in
a worker thread (0 vs ~44,500 faults over three calls of 58 MiB, every run). Time per scene (before the
single arena) 384–392 → 352–353 ms for one scene per call, and 446 → 377 ms for 16 scenes per call.
The cost: a process's resident memory no longer shrinks after a peak (it is reused by the next call
instead) until :func:`trim_malloc` hands it back, which the service does once it has been idle a while.

Call :func:`tune_malloc` once, early (before threads start); the ``onepass`` command line does for every
command. ``ONEPASS_MALLOC_TUNING=0`` turns it off. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

__all__ = [
    "tune_malloc", "trim_malloc", "rss_bytes", "cpu_bf16_native",
    "ARENA_MAX", "MMAP_THRESHOLD", "TRIM_THRESHOLD",
]  # fmt: skip

#: blocks below this come from malloc's heap, not a fresh mmap (glibc's ``M_MMAP_THRESHOLD``)
MMAP_THRESHOLD = 1 << 30
#: free heap above this much is handed back to the kernel (glibc's ``M_TRIM_THRESHOLD``)
TRIM_THRESHOLD = 1 << 30
#: every thread allocates from the main arena (glibc's ``M_ARENA_MAX``): a worker thread's own arena is
#: made of 64 MiB heaps that glibc unmaps whenever one is entirely free, whatever the thresholds say
ARENA_MAX = 1
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt parameter numbers (malloc.h)

_applied: bool | None = None


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl and macOS have neither these mallopt knobs nor malloc_trim)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError outside glibc
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc(enable: bool | None = None) -> bool:
    """Apply the thresholds above with glibc's ``mallopt`` (once per process); True if they are in force.

    ``enable=None`` follows ``ONEPASS_MALLOC_TUNING`` (default on; ``0``/``false``/``no``/``off``: off).
    """
    global _applied
    if enable is None:
        enable = os.environ.get("ONEPASS_MALLOC_TUNING", "1").strip().lower() not in (
            "0",
            "false",
            "no",
            "off",
        )
    if not enable:
        return bool(_applied)
    if _applied is not None:
        return _applied
    _applied = False
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    ok = libc.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1 and ok
    _applied = ok
    return ok


def rss_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trim_malloc() -> int:
    """Hand malloc's free memory back to the kernel (glibc's ``malloc_trim``); bytes of RSS released.

    The counterpart of :func:`tune_malloc` for idle times: with the tuning, a process keeps its peak
    resident memory for the next call; this returns it once nothing is running (the service calls it
    after ``ONEPASS_IDLE_TRIM_S`` seconds without a job). The next forward pass then faults its pages in
    again, once. A no-op (0) where the C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        return 0
    before = rss_bytes()
    libc.malloc_trim(0)
    return max(0, before - rss_bytes())


@functools.cache
def cpu_bf16_native() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX); without it a bf16 autocast
    (``VGGT.cpu_bf16``) still gives correct results, emulated and slower than float32."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN or without this query
        return False

"""Process-wide CPU runtime setting for inference and training: glibc's malloc, tuned for big tensors.

PyTorch's CPU tensors come from ``malloc``. In a thread other than the main one (the service's model runs in
one) glibc serves them from a per-thread arena whose heaps it trims, and it serves large blocks with a
fresh ``mmap`` that ``free`` unmaps: so every forward pass faults its activations' pages in again, and the
kernel zero-fills each 4 KiB page (expensive in a virtual machine). Fixing the mmap threshold high keeps
large blocks in malloc's heaps, and a high trim threshold stops it handing freed memory back, so the next
pass reuses pages that are already mapped.

Measured on this project's 2-core VM (``tiny``, 4-view 224×224 scenes, 1 torch thread, called from a
worker thread): minor page faults over three calls ~7,000–7,900 → ~850 (``tests/models/test_runtime.py``);
time per scene 384–392 → 352–353 ms for one scene per call, and 446 → 377 ms for 16 scenes per call. The
cost: a process's resident memory no longer shrinks after a peak (it is reused by the next call instead).

Call :func:`tune_malloc` once, early (before threads start); the ``onepass`` command line does for every
command. ``ONEPASS_MALLOC_TUNING=0`` turns it off. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["tune_malloc", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: blocks below this come from malloc's heap, not a fresh mmap (glibc's ``M_MMAP_THRESHOLD``)
MMAP_THRESHOLD = 1 << 30
#: free heap above this much is handed back to the kernel (glibc's ``M_TRIM_THRESHOLD``)
TRIM_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers in glibc's malloc.h

_applied: bool | None = None


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
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl and macOS have no such mallopt knobs)
    except (OSError, AttributeError):
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _applied = ok
    return ok

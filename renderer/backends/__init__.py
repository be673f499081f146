"""Backend choice for :func:`renderer.rasterize`.

* ``"gsplat"``: gsplat's CUDA kernels (needs CUDA tensors and a working gsplat install).
* ``"cpu"``: our numba rasterizer (any device; CUDA inputs are rendered on the CPU and moved back).
* ``"torch"``: the plain-PyTorch twin in ``renderer._torch_ref`` (slow; for checking the others).
* ``"auto"``: gsplat when the inputs are on CUDA and gsplat works, otherwise the CPU, logging why once.
"""

from __future__ import annotations

import logging

import torch

from renderer.backends.gsplat_cuda import gsplat_status
from renderer.options import BACKENDS

log = logging.getLogger("renderer")
_warned: set[str] = set()


def resolve_backend(requested: str, device: torch.device) -> tuple[str, str]:
    """Pick the backend for tensors on ``device``: returns ``(name, reason)``.

    Raises:
        ValueError: unknown ``backend`` name, or ``"gsplat"`` asked for CPU tensors.
        RuntimeError: ``"gsplat"`` asked for but not usable here (the message says why).
    """
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {requested!r}")
    if requested == "gsplat":
        if device.type != "cuda":
            raise ValueError(f"backend='gsplat' needs CUDA tensors, got tensors on {device}")
        ok, reason = gsplat_status()
        if not ok:
            raise RuntimeError(f"backend='gsplat' is unavailable: {reason}")
        return "gsplat", reason
    if requested != "auto":
        return requested, f"backend={requested!r} requested"
    if device.type != "cuda":
        return "cpu", f"inputs are on {device.type}"
    ok, reason = gsplat_status()
    if ok:
        return "gsplat", reason
    if reason not in _warned:
        _warned.add(reason)
        log.warning("renderer: falling back to the CPU rasterizer for CUDA inputs: %s", reason)
    return "cpu", reason

"""Tensor ⇄ numpy conversion for the kernels, done in numpy on purpose.

Kernels run in float64 on C-contiguous arrays. Converting with numpy (single-threaded, no autograd)
instead of ``tensor.to(...)`` keeps torch's OpenMP pool out of the glue code: on a small machine those
threads spin after every parallel op and compete with the rasterizer's own threads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def f64(t: Tensor) -> np.ndarray:
    """A C-contiguous float64 numpy array with the values of ``t`` (no copy when already so)."""
    a = t.detach().cpu()
    a = a.numpy() if a.dtype in _NP_DTYPES else a.to(torch.float64).numpy()
    return np.ascontiguousarray(a, dtype=np.float64)


def native(t: Tensor) -> np.ndarray:
    """``t`` as a C-contiguous float32 or float64 array (other float dtypes become float64)."""
    a = t.detach().cpu()
    a = a.numpy() if a.dtype in _NP_DTYPES else a.to(torch.float64).numpy()
    return np.ascontiguousarray(a)


def to_tensor(a: np.ndarray, dtype: torch.dtype) -> Tensor:
    """A torch tensor of ``dtype`` from a float64 array (cast in numpy when it is float32)."""
    if dtype in _NP_DTYPES:
        return torch.from_numpy(a.astype(_NP_DTYPES[dtype], copy=False))
    return torch.from_numpy(a).to(dtype)


def all_finite(t: Tensor) -> bool:
    """Whether every entry of ``t`` is finite (numpy reduction)."""
    return bool(np.isfinite(native(t)).all())

"""Validation of caller-given cameras (intrinsics, world→camera poses) at the public entry points."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _as_tensor(x: np.ndarray | Tensor, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().cpu().double()
    if isinstance(x, (np.ndarray, list, tuple)):
        try:
            return torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be numeric, got {type(x).__name__} ({e})") from e
    raise TypeError(f"{name} must be a numpy array or tensor, got {type(x).__name__}")


def check_intrinsics(K: np.ndarray | Tensor, num_views: int) -> Tensor:
    """``[3, 3]`` (shared) or ``[S, 3, 3]`` → ``[S, 3, 3]`` float64; finite, positive focal lengths."""
    t = _as_tensor(K, "intrinsics")
    if t.shape == (3, 3):
        t = t.expand(num_views, 3, 3).clone()
    if t.shape != (num_views, 3, 3):
        raise ValueError(f"intrinsics must be [3, 3] or [{num_views}, 3, 3], got {list(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("intrinsics contain NaN or Inf")
    if (t[:, 0, 0] <= 0).any() or (t[:, 1, 1] <= 0).any():
        raise ValueError("intrinsics must have positive focal lengths K[0,0] and K[1,1]")
    return t


def check_poses(poses: np.ndarray | Tensor, num_views: int) -> Tensor:
    """``[S, 4, 4]`` world→camera, finite, with proper rotations (RᵀR = I, det R = +1 within 1e-3)."""
    t = _as_tensor(poses, "poses")
    if t.shape == (num_views, 3, 4):
        t = torch.cat([t, torch.tensor([[[0.0, 0, 0, 1]]], dtype=t.dtype).expand(num_views, 1, 4)], 1)
    if t.shape != (num_views, 4, 4):
        raise ValueError(
            f"poses must be [{num_views}, 4, 4] (or [{num_views}, 3, 4]) world_to_camera, got {list(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError("poses contain NaN or Inf")
    R = t[:, :3, :3]
    ortho = (R.transpose(1, 2) @ R - torch.eye(3, dtype=t.dtype)).abs().amax(dim=(1, 2))
    bad = torch.nonzero((ortho > 1e-3) | ((torch.linalg.det(R) - 1).abs() > 1e-3)).flatten().tolist()
    if bad:
        raise ValueError(f"poses: views {bad[:10]} do not have a proper rotation in world_to_camera[:3, :3]")
    return t

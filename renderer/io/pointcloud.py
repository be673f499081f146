"""Coloured point clouds as binary PLY (``x y z`` float32, ``red green blue`` uchar).

The layout every point-cloud tool reads (Open3D, MeshLab, CloudCompare, COLMAP's viewers). Colours are
0–255 integers; readers such as Open3D divide by 255.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from renderer.io.scene_layout import atomic_write_bytes


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def point_ply_bytes(points: np.ndarray | torch.Tensor, colors_uint8: np.ndarray | torch.Tensor) -> bytes:
    """Encode ``points [N, 3]`` and ``colors_uint8 [N, 3]`` as a binary PLY; non-finite points are dropped.

    Raises:
        ValueError: shapes differ from ``[N, 3]`` or colours are outside 0–255.
    """
    pts, cols = _as_numpy(points), _as_numpy(colors_uint8)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3], got {list(pts.shape)}")
    if cols.shape != pts.shape:
        raise ValueError(
            f"colors_uint8 must have shape {list(pts.shape)} like points, got {list(cols.shape)}"
        )
    if cols.size and (cols.min() < 0 or cols.max() > 255):
        raise ValueError(f"colors_uint8 must be in [0, 255], got values in [{cols.min()}, {cols.max()}]")
    keep = np.isfinite(pts).all(1)
    rec = np.empty(int(keep.sum()), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    rec["xyz"] = pts[keep]
    rec["rgb"] = cols[keep].astype(np.uint8)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(rec)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    return header.encode("ascii") + rec.tobytes()


def save_point_ply(
    points: np.ndarray | torch.Tensor, colors_uint8: np.ndarray | torch.Tensor, path: str | os.PathLike
) -> Path:
    """Write :func:`point_ply_bytes` to ``path`` atomically."""
    atomic_write_bytes(path, point_ply_bytes(points, colors_uint8))
    return Path(path)

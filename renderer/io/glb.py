"""A glTF binary (GLB) preview: coloured points plus one frustum per camera, via trimesh.

glTF is y-up with cameras looking down -z (OpenGL); our world follows the OpenCV convention of its
reference camera (y down, z forward). Everything is mapped with ``OPENCV_TO_OPENGL`` (flip y and z, a
180° turn about x), so a viewer opening the file sees the scene upright, as the first camera saw it.
Frustums are open four-sided pyramids from each camera centre to its image corners, sized to the scene.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import trimesh

from renderer.io.scene_layout import atomic_write_bytes

_FLIP = np.diag([1.0, -1.0, -1.0])
_PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
     [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128]], np.uint8,
)  # fmt: skip


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)


def frustum_corners(
    world_to_camera: np.ndarray, K: np.ndarray, image_hw: tuple[int, int], depth: float
) -> np.ndarray:
    """``[5, 3]`` world points: the camera centre, then the image corners unprojected to z = ``depth``."""
    h, w = image_hw
    pix = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], np.float64)
    cam = (np.linalg.inv(K) @ pix.T).T * depth
    R, t = world_to_camera[:3, :3], world_to_camera[:3, 3]
    centre = -R.T @ t
    return np.vstack([centre, (cam - t) @ R])


def scene_glb_bytes(
    points: np.ndarray | torch.Tensor,  # [N, 3]
    colors_uint8: np.ndarray | torch.Tensor,  # [N, 3]
    world_to_camera: np.ndarray | torch.Tensor,  # [S, 4, 4]
    K: np.ndarray | torch.Tensor,  # [S, 3, 3]
    image_hw: Sequence[tuple[int, int]],
) -> bytes:
    """GLB bytes with a point cloud (non-finite points dropped) and ``S`` coloured camera frustums."""
    pts, cols = _as_numpy(points), _as_numpy(colors_uint8)
    w2c, Ks = _as_numpy(world_to_camera), _as_numpy(K)
    if pts.ndim != 2 or pts.shape[1] != 3 or cols.shape != pts.shape:
        raise ValueError(
            f"points and colors_uint8 must both be [N, 3], got {list(pts.shape)}, {list(cols.shape)}"
        )
    S = w2c.shape[0]
    if w2c.shape != (S, 4, 4) or Ks.shape != (S, 3, 3) or len(image_hw) != S:
        raise ValueError(
            f"world_to_camera [S, 4, 4], K [S, 3, 3] and image_hw (S entries) must agree, got "
            f"{list(w2c.shape)}, {list(Ks.shape)}, {len(image_hw)}"
        )
    keep = np.isfinite(pts).all(1)
    pts, cols = pts[keep], cols[keep].astype(np.uint8)
    centres = np.stack([-w2c[i, :3, :3].T @ w2c[i, :3, 3] for i in range(S)]) if S else np.zeros((0, 3))
    extent_pts = pts if len(pts) >= 2 else np.vstack([pts, centres])
    if len(extent_pts) >= 2:
        lo, hi = np.percentile(extent_pts, 5, 0), np.percentile(extent_pts, 95, 0)
        extent = float(np.linalg.norm(hi - lo))
    else:
        extent = 1.0
    depth = 0.08 * (extent if extent > 0 else 1.0)

    scene = trimesh.Scene()
    if len(pts):
        rgba = np.concatenate([cols, np.full((len(cols), 1), 255, np.uint8)], 1)
        scene.add_geometry(trimesh.PointCloud(pts @ _FLIP.T, colors=rgba), geom_name="points")
    sides = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    for i in range(S):
        corners = frustum_corners(w2c[i], Ks[i], tuple(image_hw[i]), depth) @ _FLIP.T
        faces = np.vstack([sides, sides[:, ::-1]])  # both windings: visible from inside and outside
        mesh = trimesh.Trimesh(corners, faces, process=False)
        mesh.visual.face_colors = np.append(_PALETTE[i % len(_PALETTE)], 255)
        scene.add_geometry(mesh, geom_name=f"camera_{i:03d}")
    buffer = io.BytesIO()
    scene.export(buffer, file_type="glb")
    return buffer.getvalue()


def save_scene_glb(
    points: np.ndarray | torch.Tensor,
    colors_uint8: np.ndarray | torch.Tensor,
    world_to_camera: np.ndarray | torch.Tensor,
    K: np.ndarray | torch.Tensor,
    image_hw: Sequence[tuple[int, int]],
    path: str | os.PathLike,
) -> Path:
    """Write :func:`scene_glb_bytes` to ``path`` atomically."""
    atomic_write_bytes(path, scene_glb_bytes(points, colors_uint8, world_to_camera, K, image_hw))
    return Path(path)

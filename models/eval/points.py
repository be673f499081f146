"""Point-cloud metrics: Sim(3) alignment (Umeyama, via :func:`renderer.conventions.umeyama_sim3`) and Chamfer.

Predicted points live in the method's own frame and scale; ground truth in the scene's. Points are matched
pixel-to-pixel (same view, same pixel), a similarity ``gt ≈ s·R·pred + t`` is fitted by least squares, and the
Chamfer distance is measured after applying it. Distances are reported in ground-truth units divided by
``gt_scale`` (callers pass the mean distance of GT points from the first camera, VGGT's normalisation, so the
number is comparable across scenes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from renderer.conventions import umeyama_sim3

__all__ = ["Sim3", "align_points_sim3", "chamfer_distance", "apply_sim3", "voxel_downsample"]


@dataclass
class Sim3:
    """``x ↦ scale · R @ x + t``."""

    scale: float
    R: np.ndarray  # [3, 3]
    t: np.ndarray  # [3]

    def apply(self, points: np.ndarray) -> np.ndarray:
        return apply_sim3(self, points)

    def world_to_camera_into_source(self, world_to_camera_dst: np.ndarray) -> np.ndarray:
        """Express world→camera matrices of the *destination* frame in the *source* frame (``[..., 4, 4]``).

        A camera ``T_dst`` (dst-world → camera) becomes ``T_src`` with the same image: a src point ``x`` maps
        to dst ``s·R·x + t``, so ``T_src = diag(1/s)·T_dst·[sR | t]`` rescaled to a rigid transform, i.e.
        rotation ``R_dst·R`` and translation ``(R_dst·t + t_dst)/s``.
        """
        T = np.asarray(world_to_camera_dst, dtype=np.float64)
        out = np.zeros_like(T)
        out[..., :3, :3] = T[..., :3, :3] @ self.R
        out[..., :3, 3] = ((T[..., :3, :3] @ self.t) + T[..., :3, 3]) / self.scale
        out[..., 3, 3] = 1
        return out


def apply_sim3(sim: Sim3, points: np.ndarray) -> np.ndarray:
    """``[..., 3]`` points mapped by ``sim``."""
    return sim.scale * np.asarray(points, dtype=np.float64) @ sim.R.T + sim.t


def align_points_sim3(
    pred: np.ndarray,
    gt: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_points: int = 200_000,
    seed: int = 0,
) -> Sim3:
    """Least-squares Sim(3) taking corresponding ``pred`` points ``[N, 3]`` onto ``gt`` points ``[N, 3]``.

    Non-finite rows are dropped; above ``max_points`` a fixed random subset is used (the fit is an average, so
    a subset changes it negligibly and keeps it fast).
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 3)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must be corresponding [N, 3] points, got {pred.shape} and {gt.shape}")
    keep = np.isfinite(pred).all(1) & np.isfinite(gt).all(1)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != pred.shape[0]:
            raise ValueError(f"weights must be [N] = [{pred.shape[0]}], got {w.shape}")
        keep &= np.isfinite(w) & (w > 0)
    idx = np.flatnonzero(keep)
    if idx.size < 3:
        raise ValueError(f"align_points_sim3 needs at least 3 finite correspondences, got {idx.size}")
    if idx.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    s, R, t = umeyama_sim3(
        torch.from_numpy(pred[idx]),
        torch.from_numpy(gt[idx]),
        None if w is None else torch.from_numpy(w[idx]),
    )
    return Sim3(scale=float(s), R=R.numpy(), t=t.numpy())


def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Mean point per occupied cube of side ``voxel`` (``[N, 3]`` → ``[M, 3]``, M ≤ N)."""
    cells = np.floor(points / voxel).astype(np.int64)
    cells -= cells.min(0)
    dims = cells.max(0) + 1
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]  # one int64 per cube: fast unique
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size, 3))
    np.add.at(sums, inverse.reshape(-1), points)
    return sums / counts[:, None]


def chamfer_distance(
    a: np.ndarray,
    b: np.ndarray,
    *,
    max_points: int = 50_000,
    voxel: float | None = None,
    cap: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Symmetric Chamfer distance between point sets ``a [N, 3]`` and ``b [M, 3]``.

    Returns ``{"accuracy": mean_a min_b |a−b|, "completeness": mean_b min_a |b−a|, "chamfer": their mean}``
    (DTU's Acc/Comp/Overall).

    Args:
        max_points: each mean runs over at most this many query points (a fixed random subset); nearest
            neighbours are searched in the whole other set, so subsampling queries adds no bias.
        voxel: if given, both sets are first reduced to one mean point per ``voxel``-sized cube (as DTU's
            evaluation down-samples); identical sets stay identical.
        cap: if given, a distance above ``cap`` counts as ``cap`` (DTU's outlier cap); it also bounds the
            tree search, which keeps far-off (bad) predictions from making the query slow.
    """
    rng = np.random.default_rng(seed)
    sets = []
    for name, x in (("a", a), ("b", b)):
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        x = x[np.isfinite(x).all(1)]
        if x.shape[0] == 0:
            raise ValueError(f"chamfer_distance: point set {name} has no finite points")
        sets.append(voxel_downsample(x, voxel) if voxel else x)
    pa, pb = sets

    def queries(x: np.ndarray) -> np.ndarray:
        return x if x.shape[0] <= max_points else x[rng.choice(x.shape[0], max_points, replace=False)]

    def mean_nn(tree_points: np.ndarray, query: np.ndarray) -> float:
        bound = np.inf if cap is None else cap
        d = cKDTree(tree_points).query(queries(query), k=1, distance_upper_bound=bound)[0]
        return float(np.minimum(d, bound).mean())

    acc, comp = mean_nn(pb, pa), mean_nn(pa, pb)
    return {"accuracy": acc, "completeness": comp, "chamfer": 0.5 * (acc + comp)}

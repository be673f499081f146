"""Score one :class:`~models.reconstruct.Reconstruction` against its :class:`GroundTruth`.

Steps (all in float64):

1. **Cameras**: relative rotation / translation-direction errors over all view pairs (frame-free).
2. **Correspondences**: each model-resolution pixel ``(u, v)`` is mapped to the original image through the
   preprocessing transform (read off ``K`` vs ``K_model``: a scale and an offset), and the ground-truth depth
   and world point are taken at the nearest original pixel.
3. **Sim(3)**: Umeyama fit of predicted world points onto ground-truth points over valid correspondences;
   its scale is the "global" depth scale, and it carries ground-truth cameras into the predicted frame.
4. **Depth** AbsRel / δ<1.25 with per-view median scaling and with that one global scale.
5. **Chamfer** of aligned predicted points (valid pixels) against all ground-truth points, in units of the
   ground truth's mean point distance from the first camera (VGGT's normalisation), so scenes of any size
   are comparable; both clouds are voxel-averaged at 0.005 units and distances are capped at 1 unit.
6. **Novel views**: ground-truth target cameras moved into the predicted frame; the predicted Gaussians are
   rendered there and compared (PSNR, SSIM) with the target images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.eval.camera import relative_pose_errors
from models.eval.depth import depth_metrics
from models.eval.ground_truth import GroundTruth
from models.eval.image import psnr, ssim
from models.eval.points import Sim3, align_points_sim3, chamfer_distance
from renderer.conventions import camera_centers, unproject_depth

__all__ = ["gt_world_points", "sample_ground_truth", "score_reconstruction", "render_targets"]

#: Chamfer down-sampling cube, in units of the scene scale (mean GT distance from the first camera).
CHAMFER_VOXEL = 0.005


def gt_world_points(gt: GroundTruth) -> np.ndarray:
    """``[S, H, W, 3]`` world points of the ground-truth depth (NaN where invalid)."""
    pts = unproject_depth(
        torch.from_numpy(gt.depth.astype(np.float64)),
        torch.from_numpy(gt.K),
        torch.from_numpy(gt.world_to_camera),
    ).numpy()
    return np.where(gt.valid[..., None], pts, np.nan)


def sample_ground_truth(recon: Any, gt: GroundTruth, points: np.ndarray) -> tuple[np.ndarray, ...]:
    """Ground truth at the reconstruction's pixels: ``depth [S, h, w]``, ``points [S, h, w, 3]``, valid."""
    S, h, w = recon.depth.shape
    H, W = gt.depth.shape[1:]
    us = np.arange(w) + 0.5
    vs = np.arange(h) + 0.5
    depth = np.zeros((S, h, w))
    pts = np.full((S, h, w, 3), np.nan)
    valid = np.zeros((S, h, w), dtype=bool)
    for s in range(S):
        K, Km = recon.K[s], recon.K_model[s]
        x = (us - Km[0, 2]) * (K[0, 0] / Km[0, 0]) + K[0, 2]  # original continuous coords
        y = (vs - Km[1, 2]) * (K[1, 1] / Km[1, 1]) + K[1, 2]
        col = np.floor(x).astype(int)
        row = np.floor(y).astype(int)
        inside = (col >= 0) & (col < W)
        inside_r = (row >= 0) & (row < H)
        rr, cc = np.meshgrid(np.clip(row, 0, H - 1), np.clip(col, 0, W - 1), indexing="ij")
        ok = inside_r[:, None] & inside[None, :] & gt.valid[s][rr, cc] & recon.valid[s]
        depth[s] = np.where(ok, gt.depth[s][rr, cc], 0.0)
        pts[s] = np.where(ok[..., None], points[s][rr, cc], np.nan)
        valid[s] = ok
    return depth, pts, valid


def render_targets(recon: Any, gt: GroundTruth, sim: Sim3) -> np.ndarray:
    """``[T, H, W, 3]`` renders of the predicted Gaussians at the ground-truth target cameras."""
    from renderer import render_gaussians

    w2c = sim.world_to_camera_into_source(gt.target_world_to_camera)
    H, W = gt.target_images.shape[1:3]
    with torch.no_grad():
        res = render_gaussians(
            recon.gaussians.to(torch.float32),
            torch.from_numpy(w2c).float(),
            torch.from_numpy(gt.target_K).float(),
            W,
            H,
        )
    return res.rgb.clamp(0, 1).numpy()


def score_reconstruction(recon: Any, gt: GroundTruth, *, given_cameras: bool = False) -> dict[str, Any]:
    """All metrics of one scene as a flat dict of floats (NaN where a metric does not apply).

    ``given_cameras``: the reconstruction was given the true cameras, so its depth is in their units and
    is also scored as it is, with no rescaling (``abs_rel_given``, ``delta1_given``).
    """
    if recon.num_views != gt.num_views:
        raise ValueError(f"reconstruction has {recon.num_views} views, ground truth {gt.num_views}")
    out: dict[str, Any] = {"views": gt.num_views}
    if gt.num_views >= 2:
        out.update(relative_pose_errors(recon.world_to_camera, gt.world_to_camera).summary())
    pts_gt_full = gt_world_points(gt)
    gt_depth, gt_pts, valid = sample_ground_truth(recon, gt, pts_gt_full)
    pred_pts = recon.world_points.astype(np.float64)
    ok = valid & np.isfinite(pred_pts).all(-1)
    out["gt_pixels"] = int(ok.sum())
    if ok.sum() < 16:
        out.update({"abs_rel_median": np.nan, "delta1_median": np.nan, "abs_rel_global": np.nan})
        out.update({"delta1_global": np.nan, "chamfer": np.nan, "psnr": np.nan, "ssim": np.nan})
        return out
    sim = align_points_sim3(pred_pts[ok], gt_pts[ok])
    dm = depth_metrics(recon.depth, gt_depth, ok, scaling="median")
    dg = depth_metrics(recon.depth, gt_depth, ok, scaling="global", scale=sim.scale)
    out.update({"abs_rel_median": dm["abs_rel"], "delta1_median": dm["delta1"]})
    out.update({"abs_rel_global": dg["abs_rel"], "delta1_global": dg["delta1"]})
    if given_cameras:
        dn = depth_metrics(recon.depth, gt_depth, ok, scaling="none")
        out.update({"abs_rel_given": dn["abs_rel"], "delta1_given": dn["delta1"]})
    c0 = camera_centers(torch.from_numpy(gt.world_to_camera[0])).numpy()
    all_gt = pts_gt_full[gt.valid]
    gt_scale = float(np.linalg.norm(all_gt - c0, axis=-1).mean())
    # In units of the scene scale: one voxel ≈ a pixel's footprint at 224 px, distances capped at 1 unit.
    ch = chamfer_distance(sim.apply(pred_pts[ok]) / gt_scale, all_gt / gt_scale, voxel=CHAMFER_VOXEL, cap=1.0)
    out.update({f"chamfer_{k}" if k != "chamfer" else k: v for k, v in ch.items()})
    out["sim3_scale"] = sim.scale
    if gt.has_targets:
        rendered = render_targets(recon, gt, sim)
        out["psnr"] = float(np.mean([psnr(r, t) for r, t in zip(rendered, gt.target_images, strict=True)]))
        out["ssim"] = float(np.mean([ssim(r, t) for r, t in zip(rendered, gt.target_images, strict=True)]))
    else:
        out["psnr"], out["ssim"] = np.nan, np.nan
    return out

"""Ground-truth normalisation as VGGT trains: the first camera is the world frame and scale is set so the
mean distance of valid ground-truth points from its centre is 1.

Shapes: ``B`` batch, ``S`` views, ``H×W`` pixels. Extrinsics are world→camera ``[B, S, 4, 4]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from renderer.conventions import extrinsics_intrinsics_to_pose_encoding, invert_rigid, unproject_depth

__all__ = ["NormalizedTargets", "normalize_targets", "express_in_first_camera"]


@dataclass
class NormalizedTargets:
    """Ground truth in the normalised frame.

    Attributes:
        world_to_camera: ``[B, S, 4, 4]``, view 0 is the identity.
        K: ``[B, S, 3, 3]``.
        depth: ``[B, S, H, W]`` z-depth divided by ``scale``.
        world_points: ``[B, S, H, W, 3]``.
        valid: ``[B, S, H, W]`` bool.
        pose_encoding: ``[B, S, 9]`` VGGT ``absT_quaR_FoV``.
        scale: ``[B]`` the factor ground truth was divided by (original units per normalised unit).
        first_camera: ``[B, 4, 4]`` the original world→camera of view 0 (to map extra cameras in).
    """

    world_to_camera: Tensor
    K: Tensor
    depth: Tensor
    world_points: Tensor
    valid: Tensor
    pose_encoding: Tensor
    scale: Tensor
    first_camera: Tensor


def express_in_first_camera(world_to_camera: Tensor, first_camera: Tensor, scale: Tensor) -> Tensor:
    """Map world→camera matrices ``[B, T, 4, 4]`` into the normalised frame of :func:`normalize_targets`."""
    rel = world_to_camera @ invert_rigid(first_camera)[:, None]
    rel = rel.clone()
    rel[..., :3, 3] = rel[..., :3, 3] / scale[:, None, None]
    return rel


def normalize_targets(
    world_to_camera: Tensor, K: Tensor, depth: Tensor, valid: Tensor, *, min_valid: int = 16
) -> NormalizedTargets:
    """Express ground truth relative to view 0 and rescale to unit mean point distance.

    Args:
        world_to_camera: ``[B, S, 4, 4]``.
        K: ``[B, S, 3, 3]`` at ``H×W``.
        depth: ``[B, S, H, W]``.
        valid: ``[B, S, H, W]`` bool.
        min_valid: a scene with fewer valid pixels keeps scale 1 (avoids dividing by noise).
    """
    if world_to_camera.dim() != 4 or world_to_camera.shape[-2:] != (4, 4):
        raise ValueError(f"world_to_camera must be [B, S, 4, 4], got {tuple(world_to_camera.shape)}")
    B, S, H, W = depth.shape
    if K.shape != (B, S, 3, 3) or valid.shape != (B, S, H, W) or world_to_camera.shape[:2] != (B, S):
        raise ValueError(
            f"shapes disagree: world_to_camera {tuple(world_to_camera.shape)}, K {tuple(K.shape)}, "
            f"depth {tuple(depth.shape)}, valid {tuple(valid.shape)}"
        )
    first = world_to_camera[:, 0]
    ones = torch.ones(B, dtype=depth.dtype, device=depth.device)
    rel = express_in_first_camera(world_to_camera, first, ones)
    valid = valid & torch.isfinite(depth) & (depth > 0)
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    points = unproject_depth(depth, K, rel)  # [B, S, H, W, 3], world = first camera
    dist = points.norm(dim=-1)
    count = valid.sum((1, 2, 3))
    mean_dist = (dist * valid).sum((1, 2, 3)) / count.clamp_min(1)
    scale = torch.where(count >= min_valid, mean_dist.clamp_min(1e-6), ones)
    rel = express_in_first_camera(world_to_camera, first, scale)
    s = scale[:, None, None, None]
    return NormalizedTargets(
        world_to_camera=rel,
        K=K,
        depth=depth / s,
        world_points=points / s[..., None],
        valid=valid,
        pose_encoding=extrinsics_intrinsics_to_pose_encoding(rel, K, (H, W)),
        scale=scale,
        first_camera=first,
    )

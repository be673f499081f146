"""Pixel-aligned 3D Gaussians from anchor views: the Gaussian-head path and the training-free path.

Both place one Gaussian per kept pixel on its camera ray (pixel centres at +0.5, OpenCV axes, see
``renderer.conventions``), so they follow whatever cameras are used (predicted, or given by the caller):

* **head** (:func:`head_gaussians` via :func:`pixel_gaussians` with ``raw``): depth ``d·exp(0.5·tanh(δ))``,
  opacity ``sigmoid``, scales ``footprint · exp(s)`` (footprint = depth / focal, the pixel's size at that
  depth), rotation = camera-to-world ∘ normalised camera-frame quaternion, colour = SH DC of the pixel's
  colour plus a predicted residual (higher SH bands predicted as is). Differentiable.
* **training-free** (``raw=None``, for checkpoints without a head, e.g. VGGT-1B): depth as predicted,
  isotropic scale = ``scale_factor · footprint``, opacity ``1 − 1/conf`` (VGGT's confidence is > 1), the
  pixel's colour as SH DC.

Pixels outside the valid image area, non-finite ones, and the lowest-confidence ``drop_fraction`` of each
scene are dropped. Shapes: ``A`` anchor views, ``H×W`` pixels, ``G`` raw channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from renderer.conventions import rotmat_to_quat
from renderer.types import SH_C0, Gaussians


@dataclass(frozen=True)
class GaussianOptions:
    drop_fraction: float = 0.2  # lowest-confidence share of valid pixels dropped
    scale_factor: float = 1.0  # training-free std in pixel footprints
    min_opacity: float = 0.005

    def __post_init__(self) -> None:
        if not 0 <= self.drop_fraction < 1:
            raise ValueError(f"drop_fraction must be in [0, 1), got {self.drop_fraction}")
        if self.scale_factor <= 0:
            raise ValueError(f"scale_factor must be > 0, got {self.scale_factor}")


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product of wxyz quaternions ``[..., 4]`` (rotation ``a`` after ``b``)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def pixel_gaussians(
    depth: Tensor,
    conf: Tensor,
    colors: Tensor,
    K: Tensor,
    world_to_camera: Tensor,
    valid: Tensor,
    raw: Tensor | None = None,
    *,
    sh_degree: int = 0,
    options: GaussianOptions | None = None,
) -> Gaussians:
    """One Gaussian per kept pixel of the anchor views.

    Args:
        depth: ``[A, H, W]`` z-depth.
        conf: ``[A, H, W]`` depth confidence (> 1 where meaningful).
        colors: ``[A, H, W, 3]`` in [0, 1].
        K: ``[A, 3, 3]`` intrinsics of the ``H×W`` maps (pixel centres at +0.5).
        world_to_camera: ``[A, 4, 4]``.
        valid: ``[A, H, W]`` bool, False for padding.
        raw: ``[A, H, W, G]`` Gaussian-head output, or ``None`` for the training-free path.
        sh_degree: SH degree of ``raw`` (ignored without ``raw``).
        options: dropping and scale knobs.

    Returns:
        :class:`~renderer.types.Gaussians` in world coordinates (float32).
    """
    opt = options or GaussianOptions()
    A, H, W = depth.shape
    dtype = torch.float32
    depth, conf, colors = depth.to(dtype), conf.to(dtype), colors.to(dtype)
    K, w2c = K.to(dtype), world_to_camera.to(dtype)
    ys = torch.arange(H, device=depth.device, dtype=dtype) + 0.5
    xs = torch.arange(W, device=depth.device, dtype=dtype) + 0.5
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    rx = ((xs[None, None, :] - cx) / fx).expand(A, H, W)
    ry = ((ys[None, :, None] - cy) / fy).expand(A, H, W)
    footprint_per_depth = 1.0 / torch.sqrt(fx * fy)  # [A, 1, 1]

    R = w2c[:, :3, :3]
    t = w2c[:, :3, 3]
    c2w_quat = rotmat_to_quat(R.transpose(1, 2))  # [A, 4] wxyz

    if raw is None:
        d = depth
        opacity = (1 - 1 / conf.clamp_min(1.0)).clamp(0, 1)
        scales = (opt.scale_factor * d * footprint_per_depth)[..., None].expand(A, H, W, 3)
        quats = c2w_quat[:, None, None, :].expand(A, H, W, 4)
        sh = ((colors - 0.5) / SH_C0)[..., None, :]  # [A, H, W, 1, 3]
    else:
        n_sh = (sh_degree + 1) ** 2
        if raw.shape[-1] != 9 + 3 * n_sh:
            raise ValueError(
                f"raw must have {9 + 3 * n_sh} channels for sh_degree={sh_degree}, got {raw.shape[-1]}"
            )
        raw = raw.to(dtype)
        d = depth * torch.exp(0.5 * torch.tanh(raw[..., 0]))
        opacity = torch.sigmoid(raw[..., 1])
        scales = (d * footprint_per_depth)[..., None] * torch.exp(raw[..., 2:5].clamp(-8.0, 4.0))
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype, device=raw.device)
        q_cam = torch.nn.functional.normalize(raw[..., 5:9] + identity, dim=-1)
        quats = quat_multiply(c2w_quat[:, None, None, :].expand_as(q_cam), q_cam)
        coeffs = raw[..., 9:].reshape(A, H, W, n_sh, 3)
        dc = (colors - 0.5) / SH_C0 + coeffs[..., 0, :]
        sh = torch.cat([dc[..., None, :], coeffs[..., 1:, :]], -2)

    cam = torch.stack([rx * d, ry * d, d], -1)  # [A, H, W, 3]
    means = torch.einsum("aji,ahwj->ahwi", R, cam - t[:, None, None, :])  # Rᵀ (X_cam − t)

    keep = valid & torch.isfinite(d) & (d > 0) & torch.isfinite(conf) & (opacity >= opt.min_opacity)
    keep &= torch.isfinite(means).all(-1) & torch.isfinite(scales).all(-1)
    if opt.drop_fraction > 0 and bool(keep.any()):
        vals = conf[keep]
        k = int(opt.drop_fraction * vals.numel())
        if k > 0:
            threshold = torch.kthvalue(vals.detach().float().cpu(), k).values.to(conf.device)
            keep &= conf > threshold
    n_sh_out = sh.shape[-2]
    return Gaussians(
        means=means[keep],
        quats=quats[keep],
        scales=scales[keep],
        opacities=opacity[keep],
        sh=sh[keep].reshape(-1, n_sh_out, 3),
    )

"""Training losses, following VGGT's released trainer, plus a Gaussian rendering loss.

* **Camera**: L1 between predicted and ground-truth pose encodings (``[t(3), q(4), fov(2)]``) for every
  refinement iteration ``k`` of the camera head, weighted ``γ^(K−1−k)`` with ``γ = 0.6`` and averaged;
  translation, rotation and field of view weighted 1, 1, 0.5; the total is multiplied by 5.
  Optionally (``direction_weight > 0``, ours, not VGGT's) a **translation-direction** term: for every pair
  of views, the distance between the unit vectors of the predicted and true relative translation (in the
  first view's camera frame, as the pose AUC measures it). Being invariant to baseline length, it keeps
  its pull on rigs whose cameras sit close together, where the L1 on absolute translations is already as
  small as the baselines themselves.
  Optionally (``sign_invariant_rotation``, ours) the quaternion L1 is taken against whichever of ``q`` and
  ``−q`` is nearer, as both are the same rotation. The target is stored with ``w ≥ 0``, so for a view
  turned ~180° from the first one it flips between ``(n, +ε)`` and ``(−n, +ε)`` as the angle crosses
  180°: a discontinuous target that orbit rigs hit often (27 % of their non-first views lie beyond 150°).
* **Depth / points** (:func:`aleatoric_regression`): per valid pixel ``e = ‖pred − gt‖``; loss
  ``mean(c·e − α·log c) + mean(e) + gradient term`` with ``α = 0.2`` and ``c > 1`` the predicted confidence.
  The gradient term compares finite differences of the error map (L1, 3 scales), so it penalises wrong
  *shape* even where an offset is right.
* **Rendering** (:func:`render_loss`): MSE + (1 − SSIM)·0.2 of held-out target views rendered from the
  predicted Gaussians through the differentiable renderer.

Shapes: ``B`` batch, ``S`` views, ``H×W`` pixels, ``D`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from renderer.conventions import quat_to_rotmat, quat_xyzw_to_wxyz

__all__ = [
    "CAMERA_LOSS_WEIGHT",
    "camera_loss",
    "relative_translations",
    "translation_direction_loss",
    "aleatoric_regression",
    "gradient_loss",
    "render_loss",
    "ssim_torch",
]

CAMERA_LOSS_WEIGHT = 5.0
CAMERA_ITERATION_GAMMA = 0.6
CONF_ALPHA = 0.2
#: VGGT clamps the per-element translation error at 100 to survive outliers.
TRANSLATION_CLAMP = 100.0


def relative_translations(pose_encoding: Tensor) -> Tensor:
    """Relative translations of all view pairs ``i < j`` from pose encodings ``[B, S, 9]`` → ``[B, P, 3]``.

    ``t_ij = t_i − R_i R_jᵀ t_j`` is the translation of ``T_i T_j⁻¹`` (world→camera ``T``): where camera
    ``j``'s centre lies, seen from camera ``i``. Pairs are in :func:`torch.triu_indices` order.
    """
    S = pose_encoding.shape[-2]
    i, j = torch.triu_indices(S, S, 1, device=pose_encoding.device)
    t = pose_encoding[..., :3]
    R = quat_to_rotmat(quat_xyzw_to_wxyz(pose_encoding[..., 3:7]))
    R_ij = R[..., i, :, :] @ R[..., j, :, :].transpose(-1, -2)
    return t[..., i, :] - (R_ij @ t[..., j, :, None])[..., 0]


def translation_direction_loss(pred: Tensor, gt: Tensor, *, min_baseline: float = 1e-6) -> Tensor:
    """Mean distance between unit relative-translation directions of every view pair (0 when right, ≤ 2).

    Args:
        pred: ``[B, S, 9]`` predicted pose encodings.
        gt: ``[B, S, 9]`` ground truth.
        min_baseline: pairs whose true cameras are closer than this have no direction and are skipped.
    """
    if pred.shape[-2] < 2:
        return pred.new_zeros(())
    rel_gt = relative_translations(gt)
    rel_pred = relative_translations(pred)
    keep = rel_gt.norm(dim=-1) > min_baseline
    if not bool(keep.any()):
        return pred.new_zeros(())
    chord = (F.normalize(rel_pred, dim=-1, eps=1e-6) - F.normalize(rel_gt, dim=-1)).norm(dim=-1)
    return chord[keep].mean()


def camera_loss(
    pose_enc_list: list[Tensor],
    gt_pose_encoding: Tensor,
    *,
    direction_weight: float = 0.0,
    sign_invariant_rotation: bool = False,
) -> dict[str, Tensor]:
    """Pose-encoding L1 over refinement iterations, with the two optional changes of the module doc.

    Args:
        pose_enc_list: ``K`` tensors ``[B, S, 9]`` (the camera head's iterations, last = final).
        gt_pose_encoding: ``[B, S, 9]``.
        direction_weight: weight of :func:`translation_direction_loss` next to the L1 terms (0: VGGT's
            loss exactly, and the term is not computed).
        sign_invariant_rotation: compare the predicted quaternion with the nearer of ``±`` the true one
            (False: VGGT's plain L1 against the ``w ≥ 0`` target).

    Returns:
        ``{"loss_camera": weighted total (×5 applied), "loss_T", "loss_R", "loss_FL", "loss_Tdir"}``.
    """
    if not pose_enc_list:
        raise ValueError("pose_enc_list must hold at least one [B, S, 9] prediction")
    if direction_weight < 0:
        raise ValueError(f"direction_weight must be >= 0, got {direction_weight}")
    n = len(pose_enc_list)
    total_t = total_r = total_f = total_d = gt_pose_encoding.new_zeros(())
    for k, pred in enumerate(pose_enc_list):
        w = CAMERA_ITERATION_GAMMA ** (n - 1 - k)
        diff = (pred - gt_pose_encoding).abs()
        total_t = total_t + w * diff[..., :3].clamp(max=TRANSLATION_CLAMP).mean()
        if sign_invariant_rotation:
            flipped = (pred[..., 3:7] + gt_pose_encoding[..., 3:7]).abs().sum(-1)
            total_r = total_r + w * torch.minimum(diff[..., 3:7].sum(-1), flipped).mean() / 4
        else:
            total_r = total_r + w * diff[..., 3:7].mean()
        total_f = total_f + w * diff[..., 7:].mean()
        if direction_weight > 0:
            total_d = total_d + w * translation_direction_loss(pred, gt_pose_encoding)
    lt, lr, lf, ld = total_t / n, total_r / n, total_f / n, total_d / n
    return {
        "loss_camera": CAMERA_LOSS_WEIGHT * (lt + lr + 0.5 * lf + direction_weight * ld),
        "loss_T": lt,
        "loss_R": lr,
        "loss_FL": lf,
        "loss_Tdir": ld,
    }


def gradient_loss(pred: Tensor, gt: Tensor, mask: Tensor, scales: int = 3) -> Tensor:
    """Multi-scale L1 of finite differences of the error ``pred − gt`` over valid neighbour pairs.

    Args:
        pred, gt: ``[N, H, W, D]``.
        mask: ``[N, H, W]`` bool.
        scales: strides ``1, 2, 4, …`` (subsampling, as VGGT does).
    """
    total = pred.new_zeros(())
    for level in range(scales):
        step = 2**level
        p, g, m = pred[:, ::step, ::step], gt[:, ::step, ::step], mask[:, ::step, ::step]
        m = m[..., None].to(p.dtype)
        diff = (p - g) * m
        gx = (diff[:, :, 1:] - diff[:, :, :-1]).abs() * (m[:, :, 1:] * m[:, :, :-1])
        gy = (diff[:, 1:] - diff[:, :-1]).abs() * (m[:, 1:] * m[:, :-1])
        denom = (m.sum() * p.shape[-1]).clamp_min(1.0)
        total = total + (gx.clamp(max=100).sum() + gy.clamp(max=100).sum()) / denom
    return total / scales


def aleatoric_regression(
    pred: Tensor, gt: Tensor, conf: Tensor, mask: Tensor, *, alpha: float = CONF_ALPHA
) -> dict[str, Tensor]:
    """VGGT's confidence-weighted regression for dense maps.

    Args:
        pred, gt: ``[B, S, H, W, D]`` (``D = 1`` depth, ``3`` points).
        conf: ``[B, S, H, W]`` predicted confidence (> 1 with VGGT's ``1 + exp`` activation).
        mask: ``[B, S, H, W]`` bool, valid ground truth.

    Returns:
        ``{"conf": mean(c·e − α·log c), "reg": mean(e), "grad": gradient term, "total": their sum}``; zeros
        (still attached to the graph) when fewer than 100 pixels are valid, as VGGT does.
    """
    if pred.shape != gt.shape or pred.shape[:-1] != mask.shape or conf.shape != mask.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must be [B, S, H, W, D] with conf and mask "
            f"[B, S, H, W], got conf {tuple(conf.shape)}, mask {tuple(mask.shape)}"
        )
    if int(mask.sum()) < 100:
        zero = (pred * 0).sum() + (conf * 0).sum()
        return {"conf": zero, "reg": zero, "grad": zero, "total": zero}
    err = (pred[mask] - gt[mask]).norm(dim=-1)
    c = conf[mask]
    loss_conf = (c * err - alpha * torch.log(c)).mean()
    loss_reg = err.mean()
    B, S, H, W, D = pred.shape
    loss_grad = gradient_loss(
        pred.reshape(B * S, H, W, D), gt.reshape(B * S, H, W, D), mask.reshape(B * S, H, W)
    )
    return {"conf": loss_conf, "reg": loss_reg, "grad": loss_grad, "total": loss_conf + loss_reg + loss_grad}


def _gaussian_window(size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_torch(pred: Tensor, gt: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Differentiable mean SSIM of ``[N, 3, H, W]`` images in [0, 1] ('valid' windows, σ = 1.5)."""
    c1, c2 = 0.01**2, 0.03**2
    w = _gaussian_window(window, sigma, pred.shape[1], pred)
    groups = pred.shape[1]
    mu_x = F.conv2d(pred, w, groups=groups)
    mu_y = F.conv2d(gt, w, groups=groups)
    sxx = F.conv2d(pred * pred, w, groups=groups) - mu_x**2
    syy = F.conv2d(gt * gt, w, groups=groups) - mu_y**2
    sxy = F.conv2d(pred * gt, w, groups=groups) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


def render_loss(rendered: Tensor, target: Tensor, *, ssim_weight: float = 0.2) -> dict[str, Tensor]:
    """Photometric loss of rendered target views ``[N, H, W, 3]`` against ground truth ``[N, H, W, 3]``."""
    if rendered.shape != target.shape or rendered.shape[-1] != 3:
        raise ValueError(
            f"rendered and target must both be [N, H, W, 3], "
            f"got {tuple(rendered.shape)} and {tuple(target.shape)}"
        )
    mse = F.mse_loss(rendered, target)
    out = {"mse": mse, "total": mse}
    if ssim_weight > 0 and min(rendered.shape[1:3]) >= 11:
        s = ssim_torch(rendered.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2))
        out["ssim"] = s
        out["total"] = mse + ssim_weight * (1 - s)
    return out

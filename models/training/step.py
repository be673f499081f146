"""One training step's forward pass and losses (no optimizer): batch → normalised targets → model → losses.

The Gaussian rendering loss places the predicted Gaussians with the *ground-truth* input cameras
(normalised frame) and renders the held-out target views with their ground-truth cameras. Depth, Gaussian
parameters and colours get the photometric gradient; cameras are learned from the camera loss alone
(teacher forcing keeps early training stable; at inference the predicted cameras are used).

Shapes: ``B`` batch, ``S`` input views, ``T`` target views, ``H×W`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.gaussians import GaussianOptions, pixel_gaussians
from models.training.curriculum import StepPlan
from models.training.losses import aleatoric_regression, camera_loss, render_loss
from models.training.targets import express_in_first_camera, normalize_targets

__all__ = ["LossWeights", "split_views", "compute_losses"]

#: Keep every pixel's Gaussian during training (dropping is an inference-time choice).
_TRAIN_GAUSSIANS = GaussianOptions(drop_fraction=0.0, min_opacity=0.0)


@dataclass(frozen=True)
class LossWeights:
    camera: float = 1.0  # on top of the ×5 inside camera_loss (VGGT's weight)
    #: translation-direction term inside the camera loss (``losses.translation_direction_loss``; 0 = off)
    camera_direction: float = 0.0
    #: quaternion L1 against the nearer of ±q (``losses.camera_loss``); False = VGGT's plain L1
    sign_invariant_rotation: bool = False
    depth: float = 1.0
    points: float = 1.0
    render: float = 1.0


def split_views(batch: dict[str, Tensor], plan: StepPlan) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Split a rendered batch of ``S + T`` views into inputs and held-out targets (``plan.target_index``)."""
    total = batch["images"].shape[1]
    if total != plan.views + plan.targets:
        raise ValueError(
            f"batch has {total} views, plan expects {plan.views} inputs + {plan.targets} targets"
        )
    tgt = list(plan.target_index)
    inp = [i for i in range(total) if i not in set(tgt)]
    keys = ("images", "depth", "valid", "K", "world_to_camera")
    return {k: batch[k][:, inp] for k in keys}, {k: batch[k][:, tgt] for k in keys}


def _render_targets(
    model: nn.Module,
    raw: Tensor,
    depth: Tensor,
    conf: Tensor,
    images: Tensor,
    K: Tensor,
    w2c: Tensor,
    tgt_K: Tensor,
    tgt_w2c: Tensor,
) -> Tensor:
    """Render target views ``[B, T, H, W, 3]`` from per-pixel Gaussians of views ``[B, A, ...]``."""
    from renderer import render_gaussians

    B, A, H, W = depth.shape
    sh_degree = model.cfg.gaussian_head.sh_degree
    out = []
    for b in range(B):
        g = pixel_gaussians(
            depth[b], conf[b], images[b].permute(0, 2, 3, 1), K[b], w2c[b],
            torch.ones(A, H, W, dtype=torch.bool, device=depth.device), raw[b],
            sh_degree=sh_degree, options=_TRAIN_GAUSSIANS,
        )  # fmt: skip
        out.append(render_gaussians(g, tgt_w2c[b].float(), tgt_K[b].float(), W, H).rgb)
    return torch.stack(out)


def compute_losses(
    model: nn.Module, batch: dict[str, Tensor], plan: StepPlan, weights: LossWeights
) -> dict[str, Tensor]:
    """Forward ``model`` on the plan's input views and return every loss term plus ``"total"``.

    Args:
        model: a :class:`models.vggt.VGGT` in training mode.
        batch: :func:`models.data.procedural.make_batch` output with ``S + T`` views.
        plan: the step plan (which views are targets; reference or ZPressor path).
        weights: multipliers of the four loss groups.
    """
    inputs, targets = split_views(batch, plan)
    gt = normalize_targets(
        inputs["world_to_camera"].double(), inputs["K"].double(), inputs["depth"].double(), inputs["valid"]
    )
    images = inputs["images"]
    B, S, _, H, W = images.shape

    if plan.max_anchors is None:
        out = model(images)
        pose_list = out["pose_enc_list"]
        depth, depth_conf = out["depth"][..., 0], out["depth_conf"]
        points, points_conf = out.get("world_points"), out.get("world_points_conf")
        raw = out.get("gaussians")
        anchors = torch.arange(S, device=images.device).expand(B, S)
    else:
        res = model.infer(images, max_anchors=plan.max_anchors, chunk=S, registration=plan.registration)
        pose_list = [res.pose_enc]
        depth, depth_conf = res.depth, res.depth_conf
        points, points_conf = res.world_points, res.world_points_conf
        raw, anchors = res.gaussian_raw, res.anchors

    losses: dict[str, Tensor] = {}
    cam = camera_loss(
        pose_list,
        gt.pose_encoding.float(),
        direction_weight=weights.camera_direction,
        sign_invariant_rotation=weights.sign_invariant_rotation,
    )
    losses.update(cam)
    total = weights.camera * cam["loss_camera"]
    d = aleatoric_regression(depth[..., None], gt.depth.float()[..., None], depth_conf, gt.valid)
    losses.update({f"loss_depth_{k}": v for k, v in d.items()})
    total = total + weights.depth * d["total"]
    if points is not None and weights.points > 0:
        p = aleatoric_regression(points, gt.world_points.float(), points_conf, gt.valid)
        losses.update({f"loss_points_{k}": v for k, v in p.items()})
        total = total + weights.points * p["total"]
    if raw is not None and weights.render > 0 and plan.targets > 0:
        b_idx = torch.arange(B, device=images.device)[:, None]
        tgt_w2c = express_in_first_camera(targets["world_to_camera"].double(), gt.first_camera, gt.scale)
        rendered = _render_targets(
            model, raw, depth[b_idx, anchors], depth_conf[b_idx, anchors], images[b_idx, anchors],
            gt.K[b_idx, anchors], gt.world_to_camera[b_idx, anchors], targets["K"], tgt_w2c,
        )  # fmt: skip
        r = render_loss(
            rendered.reshape(-1, H, W, 3), targets["images"].permute(0, 1, 3, 4, 2).reshape(-1, H, W, 3)
        )
        losses.update({f"loss_render_{k}": v for k, v in r.items()})
        total = total + weights.render * r["total"]
    losses["total"] = total
    return losses

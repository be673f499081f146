"""VGGT's camera head: iterative refinement of the 9-d ``absT_quaR_FoV`` pose encoding.

Input: the last trunk layer's camera tokens ``[B, S, 2C]`` (token 0 of each view), normed by ``token_norm``.
Each of ``iterations`` steps embeds the current (un-activated) prediction, or a learned empty pose first,
modulates the normed tokens AdaLN-style, runs a small transformer whose sequence is the ``S`` camera tokens
(attention across views), and adds a 9-d delta. Activation: translation and quaternion linear, FoV ReLU.

Names (``empty_pose_tokens``, ``trunk``, ``token_norm``, ``trunk_norm``, ``embed_pose``,
``poseLN_modulation``, ``pose_branch``) are fixed by the VGGT-1B checkpoint (strict load): do not rename.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import CameraHeadConfig
from models.layers.block import Block, Mlp


class CameraHead(nn.Module):
    def __init__(self, dim_in: int, cfg: CameraHeadConfig) -> None:
        super().__init__()
        self.iterations = cfg.iterations
        # names fixed by the VGGT-1B checkpoint (strict load): do not rename
        self.trunk = nn.Sequential(
            *[
                Block(dim_in, cfg.num_heads, mlp_ratio=4.0, layerscale_init=0.01)
                for _ in range(cfg.trunk_depth)
            ]
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, 9))
        self.embed_pose = nn.Linear(9, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, 9)

    def forward(self, camera_tokens: Tensor, anchor_index: Tensor | None = None) -> list[Tensor]:
        """Refine poses.

        Args:
            camera_tokens: ``[B, S, 2C]`` last-layer camera tokens (token 0 of each view).
            anchor_index: optional ``[B, N]`` view positions whose tokens serve as keys/values in the trunk's
                attention; every view (anchor or support) then attends to the anchors only, so the anchors'
                poses equal those of a run on the anchors alone. ``None``: all views attend to all.

        Returns:
            ``iterations`` activated pose encodings, each ``[B, S, 9]``; the last is the prediction.
        """
        tokens = self.token_norm(camera_tokens)
        B, S, _ = tokens.shape
        normed = self.adaln_norm(tokens)
        pred: Tensor | None = None
        out: list[Tensor] = []
        for _ in range(self.iterations):
            cond_in = self.empty_pose_tokens.expand(B, S, -1) if pred is None else pred.detach()
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(cond_in)).chunk(3, dim=-1)
            x = gate * (normed * (1 + scale) + shift) + tokens
            for blk in self.trunk:
                x = blk(x, None, kv_index=anchor_index) if anchor_index is not None else blk(x)
            delta = self.pose_branch(self.trunk_norm(x))
            pred = delta if pred is None else pred + delta
            out.append(activate_pose(pred))
        return out


def activate_pose(pred: Tensor) -> Tensor:
    """``[..., 9]``: translation and quaternion linear, the two FoVs through ReLU."""
    return torch.cat([pred[..., :7], F.relu(pred[..., 7:])], -1)

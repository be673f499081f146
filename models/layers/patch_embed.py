"""DINOv2 ViT with registers, used as VGGT's per-view patch embedding.

Token preparation: 14×14 conv → flatten row-major → prepend ``cls`` → add the learned pos-embed (its patch
grid bicubically resized, antialiased, to the input's ``h×w``) → insert the register tokens right after
``cls`` (registers get no pos-embed) → blocks → final LayerNorm → keep the patch tokens only.

Names (``cls_token``, ``pos_embed``, ``register_tokens``, ``mask_token``, ``patch_embed.proj``, ``blocks.i``,
``norm``) are fixed by the VGGT-1B checkpoint (strict load): do not rename.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig
from models.layers.block import Block


class _ConvProj(nn.Module):
    """Holds ``proj`` so the checkpoint key reads ``patch_embed.patch_embed.proj``."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)


class DinoPatchEmbed(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        pe, dim = cfg.patch_embed, cfg.embed_dim
        self.patch_size = cfg.patch_size
        grid = cfg.num_patch_grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, pe.num_registers, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # only used in DINO pre-training
        self.patch_embed = _ConvProj(cfg.patch_size, dim)
        self.blocks = nn.ModuleList(
            Block(dim, pe.num_heads, mlp_ratio=pe.mlp_ratio, layerscale_init=1.0, ln_eps=pe.ln_eps)
            for _ in range(pe.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=pe.ln_eps)

    def interpolated_pos_embed(self, h: int, w: int, dtype: torch.dtype) -> Tensor:
        """``[1, 1 + h·w, C]``: cls pos-embed plus the patch grid resized (bicubic, antialias) to ``h×w``."""
        pos = self.pos_embed
        n = pos.shape[1] - 1
        g = int(round(n**0.5))
        if n == h * w and h == w:
            return pos.to(dtype)
        grid = pos[:, 1:].float().reshape(1, g, g, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat([pos[:, :1].float(), grid], 1).to(dtype)

    def forward(self, images: Tensor) -> Tensor:
        """ImageNet-normalised images ``[N, 3, H, W]`` → patch tokens ``[N, h·w, C]``."""
        N, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        x = self.patch_embed.proj(images).flatten(2).transpose(1, 2)  # [N, h·w, C]
        x = torch.cat([self.cls_token.expand(N, -1, -1).to(x.dtype), x], 1)
        x = x + self.interpolated_pos_embed(h, w, x.dtype)
        regs = self.register_tokens.expand(N, -1, -1).to(x.dtype)
        x = torch.cat([x[:, :1], regs, x[:, 1:]], 1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 1 + regs.shape[1] :]

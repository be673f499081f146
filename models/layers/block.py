"""Pre-norm transformer block with LayerScale, as used by DINOv2, VGGT's trunk and its camera head.

``x = x + ls1(attn(norm1(x)))``; ``x = x + ls2(mlp(norm2(x)))``. GELU is the exact (erf) one.
Names (``norm1``, ``attn``, ``ls1.gamma``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``, ``ls2.gamma``) are fixed
by the VGGT-1B checkpoint (strict load): do not rename.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.layers.attention import Attention


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel learned scale ``x · gamma``."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        qk_norm: bool = False,
        layerscale_init: float = 1.0,
        ln_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None, **attn_kwargs):
        """``x [B, N, C]`` → ``[B, N, C]`` (and ``(k, v)`` if ``return_kv``, see :class:`Attention`)."""
        a = self.attn(self.norm1(x), rope, **attn_kwargs)
        kv = None
        if isinstance(a, tuple):
            a, kv = a
        x = x + self.ls1(a)
        x = x + self.ls2(self.mlp(self.norm2(x)))
        return (x, kv) if kv is not None else x

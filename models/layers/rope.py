"""2D rotary position embedding of VGGT's trunk (parameter-free).

Each token has a position ``(y, x)``: patch ``(row r, col c)`` gets ``(r + 1, c + 1)`` and the special tokens
(camera, registers) get ``(0, 0)``, i.e. no rotation. Every view uses the same grid; global attention just
concatenates views, so there is no frame index.

The head dimension ``d`` is split in halves: ``[0, d/2)`` is rotated by ``y``, ``[d/2, d)`` by ``x``.
Within a half of size ``m = d/2`` the frequencies are ``base^(-2k/m)``, ``k < m/2``, duplicated
(``cat(f, f)``), and the rotation is NeoX "rotate half": ``t·cos + cat(-t[m/2:], t[:m/2])·sin``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def token_positions(h: int, w: int, num_special: int, *, device=None) -> Tensor:
    """``[num_special + h·w, 2]`` integer ``(y, x)`` positions, row-major patches after the special tokens."""
    ys = torch.arange(1, h + 1, device=device).repeat_interleave(w)
    xs = torch.arange(1, w + 1, device=device).repeat(h)
    patches = torch.stack([ys, xs], -1)
    return torch.cat([torch.zeros(num_special, 2, dtype=patches.dtype, device=device), patches], 0)


def rope_tables(
    positions: Tensor, head_dim: int, base: float = 100.0, *, dtype=torch.float32
) -> tuple[Tensor, Tensor]:
    """cos and sin tables ``[P, head_dim]`` for ``positions [P, 2]`` (y, x)."""
    if head_dim % 4:
        raise ValueError(f"head_dim must be a multiple of 4 for 2D RoPE, got {head_dim}")
    half = head_dim // 2
    inv_freq = 1.0 / (base ** (torch.arange(0, half, 2, dtype=torch.float64, device=positions.device) / half))
    angles = []
    for axis in (0, 1):  # y rotates the first half, x the second
        a = positions[:, axis, None].to(torch.float64) * inv_freq[None]  # [P, half/2]
        angles.append(torch.cat([a, a], -1))  # [P, half]
    angle = torch.cat(angles, -1)  # [P, head_dim]
    return angle.cos().to(dtype), angle.sin().to(dtype)


def _rotate_half(t: Tensor) -> Tensor:
    a, b = t.chunk(2, dim=-1)
    return torch.cat([-b, a], -1)


def apply_rope(t: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``t [..., N, d]`` where ``N`` is a multiple of the table length ``P`` (views concatenated).

    Args:
        t: queries or keys ``[..., N, d]``, ``N = F·P`` for ``F`` concatenated views.
        cos, sin: ``[P, d]`` from :func:`rope_tables`.
    """
    P, d = cos.shape
    N = t.shape[-2]
    if N % P:
        raise ValueError(f"token count {N} is not a multiple of the RoPE table length {P}")
    tv = t.reshape(t.shape[:-2] + (N // P, P, d))
    y_half, x_half = tv.chunk(2, dim=-1)
    cy, cx = cos.chunk(2, dim=-1)
    sy, sx = sin.chunk(2, dim=-1)
    out = torch.cat([y_half * cy + _rotate_half(y_half) * sy, x_half * cx + _rotate_half(x_half) * sx], -1)
    return out.reshape(t.shape)


class RoPE2D:
    """Caches RoPE tables per ``(h, w, specials, head_dim, device, dtype)``; holds no parameters."""

    def __init__(self, base: float = 100.0) -> None:
        self.base = base
        self._cache: dict[tuple, tuple[Tensor, Tensor]] = {}

    def tables(self, h: int, w: int, num_special: int, head_dim: int, device, dtype) -> tuple[Tensor, Tensor]:
        key = (h, w, num_special, head_dim, str(device), dtype)
        if key not in self._cache:
            # An ordinary constant, even when first asked for under inference mode (validation during
            # training): an inference tensor would make the next training step's backward fail.
            with torch.inference_mode(False), torch.no_grad():
                pos = token_positions(h, w, num_special, device=device)
                self._cache[key] = rope_tables(pos, head_dim, self.base, dtype=dtype)
        return self._cache[key]

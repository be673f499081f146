"""Multi-head self-attention with optional qk-norm, 2D RoPE and external keys/values (SDPA everywhere).

The names ``qkv``, ``q_norm``, ``k_norm``, ``proj`` are fixed by the VGGT-1B checkpoint (strict load): do not
rename.

Besides plain self-attention, :meth:`Attention.forward` supports the two variants ZPressor's registration
pass needs, without changing a weight:

* ``kv=(k, v)``: queries from ``x``, keys/values given (already normed and rotated), e.g. the anchors' tokens
  recorded during the anchor pass. Only the query third of ``qkv`` is computed.
* ``kv_index``: keys/values restricted to a subset of the sequence (camera-head trunk: every view attends to
  the anchors only).

Shapes: ``x [B, N, C]``; heads ``[B, nh, N, d]`` with ``d = C / nh``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from models.layers.rope import apply_rope


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, *, qk_norm: bool = False, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        # names fixed by the VGGT-1B checkpoint (strict load): do not rename
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def _split(self, t: Tensor) -> Tensor:  # [B, N, C] -> [B, nh, N, d]
        B, N, _ = t.shape
        return t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)

    def queries(self, x: Tensor, rope: tuple[Tensor, Tensor] | None) -> Tensor:
        """Normed, rotated queries ``[B, nh, N, d]`` (computes only the query third of ``qkv``)."""
        C = x.shape[-1]
        bias = None if self.qkv.bias is None else self.qkv.bias[:C]
        q = self.q_norm(self._split(F.linear(x, self.qkv.weight[:C], bias)))
        return q if rope is None else _rope(q, rope)

    def qkv_heads(self, x: Tensor, rope: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor, Tensor]:
        """Normed, rotated ``q, k, v``, each ``[B, nh, N, d]``."""
        B, N, C = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = _rope(q, rope), _rope(k, rope)
        return q, k, v

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor] | None = None,
        *,
        kv: tuple[Tensor, Tensor] | None = None,
        kv_index: Tensor | None = None,
        return_kv: bool = False,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        """Attend and project.

        Args:
            x: ``[B, N, C]`` (already normed by the block).
            rope: RoPE ``(cos, sin)`` tables ``[P, d]`` with ``N`` a multiple of ``P``, or ``None``.
            kv: external ``(k, v)``, each ``[B, nh, M, d]``; queries come from ``x``.
            kv_index: ``[B, M]`` long: keys/values are the tokens of ``x`` at these positions.
            return_kv: also return this call's ``(k, v)`` (for recording the anchors' context).

        Returns:
            ``[B, N, C]``, and ``(k, v)`` when ``return_kv``.
        """
        B, N, C = x.shape
        if kv is not None:
            q = self.queries(x, rope)
            k, v = kv
        else:
            q, k, v = self.qkv_heads(x, rope)
            if kv_index is not None:
                idx = kv_index[:, None, :, None].expand(B, self.num_heads, kv_index.shape[1], self.head_dim)
                k, v = k.gather(2, idx), v.gather(2, idx)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, nh, N, d]
        out = self.proj(out.transpose(1, 2).reshape(B, N, C))
        return (out, (k, v)) if return_kv else out


def _rope(t: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
    cos, sin = rope
    return apply_rope(t, cos.to(t.dtype), sin.to(t.dtype))

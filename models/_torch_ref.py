"""Slow, obvious twins of the batched ZPressor code and of SDPA, for tests.

Each mirrors a fast function with Python loops over batch elements and clusters and plain softmax attention,
so the batched, padded, masked versions can be checked against something that is easy to read.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.zpressor import FusionBlock, ZPressor


def _attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax attention ``[..., L, d] × [..., M, d] → [..., L, d]`` with scale ``d^-0.5``."""
    return torch.softmax((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5, -1) @ v


def _farthest_point_anchors(points: Tensor, num: int) -> list[list[int]]:
    """FPS from view 0, one batch element and one step at a time; sorted per element."""
    out = []
    for pts in points.double():
        chosen = [0]
        while len(chosen) < num:
            best, best_d = -1, -1.0
            for j in range(pts.shape[0]):
                d = min(float(((pts[j] - pts[c]) ** 2).sum()) for c in chosen)
                if d > best_d:
                    best, best_d = j, d
            chosen.append(best)
        out.append(sorted(chosen))
    return out


def _assign_to_anchors(points: Tensor, anchors: list[list[int]]) -> list[list[int]]:
    """Nearest anchor slot per view (anchors to their own slot)."""
    out = []
    for pts, anc in zip(points.double(), anchors, strict=True):
        labels = []
        for j in range(pts.shape[0]):
            if j in anc:
                labels.append(anc.index(j))
            else:
                d = [float(((pts[j] - pts[a]) ** 2).sum()) for a in anc]
                labels.append(min(range(len(anc)), key=lambda i, d=d: d[i]))
        out.append(labels)
    return out


def _fusion_block(
    blk: FusionBlock, anchors: Tensor, supports: Tensor, clusters: list[list[list[int]]]
) -> Tensor:
    """:class:`FusionBlock` with loops: ``clusters[b][n]`` lists positions into ``supports[b]``."""
    B, N, p, C = anchors.shape
    nh = blk.num_heads
    out = torch.empty_like(anchors)
    for b in range(B):
        for n in range(N):
            x = anchors[b, n]  # [p, C]
            members = clusters[b][n]
            if members:
                ctx = torch.cat([supports[b, j] for j in members], 0)  # [n_i·p, C]
                q = blk.to_q(blk.norm_query(x))
                k, v = blk.to_kv(blk.norm_context(ctx)).chunk(2, -1)
                d = C // nh
                heads = [
                    _attention(q.view(p, nh, d)[:, h], k.view(-1, nh, d)[:, h], v.view(-1, nh, d)[:, h])
                    for h in range(nh)
                ]
                x = x + blk.cross_proj(torch.cat(heads, -1))
            q, k, v = blk.self_qkv(blk.norm_self(x)).chunk(3, -1)
            heads = [
                _attention(q.view(p, nh, -1)[:, h], k.view(p, nh, -1)[:, h], v.view(p, nh, -1)[:, h])
                for h in range(nh)
            ]
            x = x + blk.self_proj(torch.cat(heads, -1))
            out[b, n] = x + blk.mlp(blk.norm_mlp(x))
    return out


def _zpressor(model: ZPressor, anchors: Tensor, supports: Tensor, clusters: list[list[list[int]]]) -> Tensor:
    """:class:`ZPressor` with loops over batch elements and clusters."""
    for blk in model.blocks:
        anchors = _fusion_block(blk, anchors, supports, clusters)
    return anchors

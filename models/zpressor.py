"""ZPressor view compression: anchor selection, support assignment, batched fusion blocks.

When a scene has more views than ``max_anchors``:

1. **Anchors** by farthest point sampling (:func:`farthest_point_anchors`) on camera centres when the caller
   gives poses, otherwise on per-view descriptors (mean-pooled, L2-normalised patch-embed tokens,
   :func:`view_descriptors`). Frame 0 is always the first anchor (it defines the world frame).
2. **Assignment**: every other view ("support") goes to its nearest anchor (:func:`assign_to_anchors`).
3. **Fusion** (:class:`ZPressor`, only when the checkpoint has its weights): ``L`` blocks of
   [cross-attention (anchor queries; keys/values = all tokens of that anchor's support views) → anchor
   self-attention → MLP], pre-norm with residuals. Keys/values always come from the original support tokens.
   Clusters are padded and padded keys are masked (:func:`cluster_table`); anchors run in groups of about
   16 padded support views (each group padded to its own largest cluster), which bounds the memory of the
   gathered keys/values; there is no Python loop over clusters.

The trunk then runs on the anchors only; support views get cameras and depth through the registration pass
(``models.vggt``). Shapes: ``B`` batch, ``S`` views, ``N`` anchors, ``M`` largest cluster, ``p`` patch tokens
per view, ``C`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ZPressorConfig
from models.layers.block import Mlp


# ------------------------------------------------------------------------------------------- selection
def view_descriptors(patch_tokens: Tensor) -> Tensor:
    """``[B, S, p, C]`` → ``[B, S, C]``: mean over patches, L2-normalised (the pose-free anchor metric)."""
    return F.normalize(patch_tokens.float().mean(2), dim=-1)


def farthest_point_anchors(points: Tensor, num: int) -> Tensor:
    """Farthest point sampling that always starts at view 0.

    Args:
        points: ``[B, S, D]`` one point per view (camera centre or descriptor).
        num: anchors to pick, ``1 ≤ num ≤ S``.

    Returns:
        ``[B, num]`` long, sorted ascending (so view 0 comes first). Ties go to the lowest index.
    """
    B, S, _ = points.shape
    if not 1 <= num <= S:
        raise ValueError(f"num anchors must be in [1, {S}], got {num}")
    pts = points.double()
    chosen = torch.zeros(B, num, dtype=torch.long, device=points.device)
    min_d = ((pts - pts[:, :1]) ** 2).sum(-1)  # [B, S] squared distance to the chosen set
    for k in range(1, num):
        nxt = min_d.argmax(1)  # argmax returns the first maximum: deterministic ties
        chosen[:, k] = nxt
        d = ((pts - pts.gather(1, nxt[:, None, None].expand(B, 1, pts.shape[2]))) ** 2).sum(-1)
        min_d = torch.minimum(min_d, d)
    return chosen.sort(1).values


def assign_to_anchors(points: Tensor, anchors: Tensor) -> Tensor:
    """Nearest anchor slot per view: ``points [B, S, D]``, ``anchors [B, N]`` → ``[B, S]`` in ``[0, N)``.

    An anchor is assigned to its own slot (even if another anchor coincides with it).
    """
    B, S, D = points.shape
    pts = points.double()
    anchor_pts = pts.gather(1, anchors[..., None].expand(B, anchors.shape[1], D))
    labels = torch.cdist(pts, anchor_pts).argmin(-1)
    slots = torch.arange(anchors.shape[1], device=anchors.device).expand_as(anchors)
    return labels.scatter(1, anchors, slots)


def partner_anchors(points: Tensor, anchors: Tensor) -> Tensor:
    """Nearest anchor slot other than the reference (slot 0) per view: ``[B, S]`` in ``[1, N)``.

    The registration pass lets a support view attend to the reference anchor (view 0, which fixes the
    world frame) and this partner only. Needs ``N >= 2`` anchors.
    """
    B, S, D = points.shape
    if anchors.shape[1] < 2:
        raise ValueError("partner_anchors needs at least 2 anchors")
    pts = points.double()
    others = pts.gather(1, anchors[:, 1:, None].expand(B, anchors.shape[1] - 1, D))
    return torch.cdist(pts, others).argmin(-1) + 1


def support_views(anchors: Tensor, num_views: int) -> Tensor:
    """``[B, S − N]`` long: the non-anchor views of each batch element, ascending."""
    B, N = anchors.shape
    is_anchor = torch.zeros(B, num_views, dtype=torch.bool, device=anchors.device)
    is_anchor.scatter_(1, anchors, True)
    order = torch.arange(num_views, device=anchors.device).expand(B, num_views)
    keyed = torch.where(is_anchor, num_views + order, order)  # anchors sort last
    return keyed.sort(1).values[:, : num_views - N]


def cluster_table(labels: Tensor, supports: Tensor, num_anchors: int) -> tuple[Tensor, Tensor]:
    """Pad each anchor's support list to the largest cluster.

    Args:
        labels: ``[B, S]`` anchor slot of every view.
        supports: ``[B, S_s]`` the support views (positions into ``S``).
        num_anchors: ``N``.

    Returns:
        ``index [B, N, M]`` positions into ``supports`` (0 where padded) and ``mask [B, N, M]`` (True = real).
        ``M ≥ 1`` even when no cluster has a support (then ``mask`` is all False).
    """
    B, Ss = supports.shape
    dev = supports.device
    if Ss == 0:
        z = torch.zeros(B, num_anchors, 1, dtype=torch.long, device=dev)
        return z, torch.zeros_like(z, dtype=torch.bool)
    slot = labels.gather(1, supports)  # [B, S_s]
    order = (slot * Ss + torch.arange(Ss, device=dev)).argsort(1)  # supports grouped by slot, stable
    slot_sorted = slot.gather(1, order)
    counts = F.one_hot(slot, num_anchors).sum(1)  # [B, N]
    starts = counts.cumsum(1) - counts
    rank = torch.arange(Ss, device=dev).expand(B, Ss) - starts.gather(1, slot_sorted)
    M = max(int(counts.max()), 1)
    index = torch.zeros(B, num_anchors, M, dtype=torch.long, device=dev)
    mask = torch.zeros(B, num_anchors, M, dtype=torch.bool, device=dev)
    b = torch.arange(B, device=dev)[:, None].expand(B, Ss)
    index[b, slot_sorted, rank] = order
    mask[b, slot_sorted, rank] = True
    return index, mask


# --------------------------------------------------------------------------------------------- fusion
class FusionBlock(nn.Module):
    """Cross-attention (anchor ← its supports) → anchor self-attention → MLP, each pre-norm + residual."""

    def __init__(self, dim: int, cfg: ZPressorConfig) -> None:
        super().__init__()
        if dim % cfg.num_heads:
            raise ValueError(f"ZPressor width {dim} is not divisible by num_heads={cfg.num_heads}")
        self.num_heads = cfg.num_heads
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.cross_proj = nn.Linear(dim, dim)
        self.norm_self = nn.LayerNorm(dim)
        self.self_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.self_proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        #: padded support views whose keys/values one group of anchors may hold at once (memory bound)
        self.context_views = 16

    def _heads(self, t: Tensor) -> Tensor:  # [G, L, C] -> [G, nh, L, d]
        G, L, C = t.shape
        return t.view(G, L, self.num_heads, C // self.num_heads).transpose(1, 2)

    def _merge(self, t: Tensor) -> Tensor:  # [G, nh, L, d] -> [G, L, C]
        G, nh, L, d = t.shape
        return t.transpose(1, 2).reshape(G, L, nh * d)

    def _cross(self, x: Tensor, supports: Tensor, index: Tensor, mask: Tensor) -> Tensor:
        """Cross-attention update of the anchor queries ``x [B·N, p, C]`` from their clusters' support tokens.

        Anchors go in groups of about :attr:`context_views` padded support views, each group padded only to
        its own largest cluster: the gathered keys/values of all clusters at once take ``N × M × p × 2C``
        floats plus per-head copies of K and V (``M`` the largest cluster): ~60 MB per block for ``tiny``
        at 64 views with clusters of 1–12 views. The groups bound memory; they are not a loop over clusters.
        """
        B, N, M = index.shape
        p, C = x.shape[1:]
        flat_index, flat_mask = index.reshape(B * N, M), mask.reshape(B * N, M)
        owner = torch.arange(B, device=index.device).repeat_interleave(N)  # batch element of each row
        counts = flat_mask.sum(1)
        q_all = self.to_q(self.norm_query(x))
        out = torch.zeros_like(x)
        group = max(1, self.context_views // max(int(counts.max()), 1))
        for g0 in range(0, B * N, group):
            rows = slice(g0, min(g0 + group, B * N))
            if not bool(counts[rows].any()):
                continue  # no anchor here has supports: nothing to attend to, the update is zero
            m = int(counts[rows].max())
            G = rows.stop - rows.start
            tokens = supports[owner[rows, None], flat_index[rows, :m]]  # [G, m, p, C] (padding: any view)
            k, v = self.to_kv(self.norm_context(tokens.reshape(G, m * p, C))).chunk(2, dim=-1)
            valid = flat_mask[rows, :m]
            key_mask = valid[:, :, None].expand(G, m, p).reshape(G, 1, 1, m * p)
            # an anchor without supports would have no valid key: let it see its padding, then drop the result
            lonely = ~valid.any(1)
            key_mask = key_mask | lonely[:, None, None, None]
            att = F.scaled_dot_product_attention(
                self._heads(q_all[rows]), self._heads(k), self._heads(v), attn_mask=key_mask
            )
            upd = self.cross_proj(self._merge(att))
            out[rows] = torch.where(lonely[:, None, None], torch.zeros((), dtype=upd.dtype), upd)
        return out

    def forward(self, anchors: Tensor, supports: Tensor, index: Tensor, mask: Tensor) -> Tensor:
        """One block.

        Args:
            anchors: ``[B, N, p, C]`` current anchor tokens (queries).
            supports: ``[B, S_s, p, C]`` original support tokens.
            index, mask: ``[B, N, M]`` from :func:`cluster_table`.

        Returns:
            ``[B, N, p, C]``.
        """
        B, N, p, C = anchors.shape
        x = anchors.reshape(B * N, p, C)
        if supports.shape[1] > 0:
            x = x + self._cross(x, supports, index, mask)
        qkv = self.self_qkv(self.norm_self(x)).chunk(3, dim=-1)
        att = F.scaled_dot_product_attention(*(self._heads(t) for t in qkv))
        x = x + self.self_proj(self._merge(att))
        x = x + self.mlp(self.norm_mlp(x))
        return x.view(B, N, p, C)


class ZPressor(nn.Module):
    """``L`` :class:`FusionBlock` s; the queries evolve, the keys/values stay the original support tokens."""

    def __init__(self, dim: int, cfg: ZPressorConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FusionBlock(dim, cfg) for _ in range(cfg.layers))

    def forward(self, anchors: Tensor, supports: Tensor, index: Tensor, mask: Tensor) -> Tensor:
        """``anchors [B, N, p, C]``, ``supports [B, S_s, p, C]``, ``index/mask [B, N, M]`` → like anchors."""
        for blk in self.blocks:
            anchors = blk(anchors, supports, index, mask)
        return anchors

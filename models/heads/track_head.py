"""Weights-only holder for VGGT-1B's track head (``track_head.*``, 65.9 M parameters).

onepass does not run point tracking: its outputs (cameras, depth, points, Gaussians) never read it. The
released checkpoint nevertheless carries these tensors and VGGT's loader is strict, so this module
reproduces the key names and shapes exactly and the loader reports them as *loaded but unused*
(``models.checkpoint``). The feature extractor is a real :class:`~models.heads.dpt_head.DPTHead`
(feature-only, 128 channels); the tracker (a CoTracker2-style update transformer) is a tree of standard
layers with the checkpoint's names, without a ``forward``. See docs/MODEL.md ("Track head").
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import DPTConfig
from models.heads.dpt_head import DPTHead
from models.layers.block import Mlp

_HIDDEN = 384  # update-transformer width
_HEADS = 8
_LATENT = 128  # track feature width
_INPUT = 3 * _LATENT + 4  # 388
_CORR = 7 * (2 * 4 + 1) ** 2  # 7 pyramid levels × (2·radius + 1)² = 567
_DEPTH = 6
_VIRTUAL = 64


class _AttnBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(_HIDDEN)
        self.attn = nn.MultiheadAttention(_HIDDEN, _HEADS, batch_first=True)
        self.norm2 = nn.LayerNorm(_HIDDEN)
        self.mlp = Mlp(_HIDDEN, 4 * _HIDDEN)


class _CrossAttnBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(_HIDDEN)
        self.norm_context = nn.LayerNorm(_HIDDEN)
        self.cross_attn = nn.MultiheadAttention(_HIDDEN, _HEADS, batch_first=True)
        self.norm2 = nn.LayerNorm(_HIDDEN)
        self.mlp = Mlp(_HIDDEN, 4 * _HIDDEN)


class _UpdateFormer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # names fixed by the VGGT-1B checkpoint (strict load), including the "virual" typo: do not rename
        self.virual_tracks = nn.Parameter(torch.zeros(1, _VIRTUAL, 1, _HIDDEN))
        self.input_norm = nn.LayerNorm(_INPUT)
        self.input_transform = nn.Linear(_INPUT, _HIDDEN)
        self.output_norm = nn.LayerNorm(_HIDDEN)
        self.flow_head = nn.Linear(_HIDDEN, 2 + _LATENT)
        self.time_blocks = nn.ModuleList(_AttnBlock() for _ in range(_DEPTH))
        self.space_virtual_blocks = nn.ModuleList(_AttnBlock() for _ in range(_DEPTH))
        self.space_point2virtual_blocks = nn.ModuleList(_CrossAttnBlock() for _ in range(_DEPTH))
        self.space_virtual2point_blocks = nn.ModuleList(_CrossAttnBlock() for _ in range(_DEPTH))


class _Tracker(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query_ref_token = nn.Parameter(torch.zeros(1, 2, _INPUT))
        self.corr_mlp = Mlp(_CORR, _HIDDEN, _LATENT)
        self.updateformer = _UpdateFormer()
        self.fmap_norm = nn.LayerNorm(_LATENT)
        self.ffeat_norm = nn.GroupNorm(1, _LATENT)
        self.ffeat_updater = nn.Sequential(nn.Linear(_LATENT, _LATENT), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(_LATENT, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(_LATENT, 1))


class TrackHeadWeights(nn.Module):
    """Parameters of VGGT's ``TrackHead(dim_in=2048)``; loaded, reported as unused, never run."""

    def __init__(self, dim_in: int, patch_size: int) -> None:
        super().__init__()
        extractor = DPTConfig(features=_LATENT, out_channels=(256, 512, 1024, 1024))
        self.feature_extractor = DPTHead(dim_in, extractor, None, patch_size=patch_size, pos_embed=False)
        self.tracker = _Tracker()

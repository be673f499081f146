"""VGGT's aggregator: per-view patch embedding, then alternating frame / global attention.

Per view the token sequence is ``[camera(1), registers(R), patches(h·w)]`` (``P = 1 + R + h·w`` tokens,
``patch_start = 1 + R``). The camera and register parameters have two variants: index 0 is used by the
*reference* view (frame 0, which defines the world frame), index 1 by every other view.

Layer ``i`` runs frame block ``i`` on tokens held as ``[B·S, P, C]`` (each view attends to itself) and global
block ``i`` on ``[B, S·P, C]`` (all views attend to all views); its output is ``cat(frame_i, global_i)`` on
channels, ``[B, S, P, 2C]``. Only the layers in ``cfg.trunk.out_layers`` are kept (the heads read those).

For ZPressor's registration pass, :meth:`Aggregator.run` can (a) record each global block's keys/values
(the anchors' context) and (b) replace a global block's keys/values by such a recorded context, so support
views attend to the anchors only, at a cost linear in their number.

Names (``patch_embed``, ``frame_blocks.i``, ``global_blocks.i``, ``camera_token``, ``register_token``) are
fixed by the VGGT-1B checkpoint (strict load): do not rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from models.config import ModelConfig
from models.layers.block import Block
from models.layers.patch_embed import DinoPatchEmbed
from models.layers.rope import RoPE2D
from models.preprocess import as_unit_float

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class TrunkOutput:
    """What the trunk hands to the heads.

    Attributes:
        layers: kept layer index → ``[B, S, P, 2C]``.
        patch_start: index of the first patch token in ``P``.
        context: per global layer the ``(k, v)`` of its attention, each ``[B, nh, S·P, d]`` (only when
            recorded), to be used as the keys/values of a registration pass.
    """

    layers: dict[int, Tensor]
    patch_start: int
    context: list[tuple[Tensor, Tensor]] | None = None


class Aggregator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        dim, tc = cfg.embed_dim, cfg.trunk
        self.cfg = cfg
        self.patch_size = cfg.patch_size
        self.patch_embed = DinoPatchEmbed(cfg)
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, tc.num_registers, dim))
        block = {
            "mlp_ratio": tc.mlp_ratio,
            "qk_norm": True,
            "layerscale_init": tc.layerscale_init,
            "ln_eps": 1e-5,
        }
        self.frame_blocks = nn.ModuleList(Block(dim, tc.num_heads, **block) for _ in range(tc.depth))
        self.global_blocks = nn.ModuleList(Block(dim, tc.num_heads, **block) for _ in range(tc.depth))
        self.patch_start = 1 + tc.num_registers
        self.rope = RoPE2D(tc.rope_freq)
        self.out_layers = frozenset(tc.out_layers)
        self.gradient_checkpointing = True  # only takes effect in training mode

    # ------------------------------------------------------------------------------------------- embed
    def embed(self, images: Tensor, chunk: int | None = None) -> Tensor:
        """Images ``[B, S, 3, H, W]`` → patch tokens ``[B, S, h·w, C]``.

        Images are floats in [0, 1], or uint8 in [0, 255] made float (``k / 255``) ``chunk`` views at a
        time, so a scene's images are never held as float32 all at once. Normalises with the ImageNet
        mean/std (constants, not buffers: a clean state_dict) and runs the DINO ViT ``chunk`` views at a
        time.
        """
        B, S, _, H, W = images.shape
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f"image size {H}x{W} must be a multiple of patch_size={self.patch_size}")
        dtype = torch.float32 if images.dtype == torch.uint8 else images.dtype
        mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device, dtype=dtype).view(1, 3, 1, 1)
        flat = images.reshape(B * S, 3, H, W)
        chunk = chunk or flat.shape[0]
        out = [
            self.patch_embed((as_unit_float(flat[i : i + chunk]) - mean) / std)
            for i in range(0, flat.shape[0], chunk)
        ]
        tokens = torch.cat(out, 0)
        return tokens.view(B, S, tokens.shape[1], tokens.shape[2])

    # --------------------------------------------------------------------------------------------- run
    def special_tokens(self, B: int, S: int, *, has_reference: bool, dtype: torch.dtype) -> Tensor:
        """``[B, S, 1 + R, C]``: reference variant for view 0 when ``has_reference``, else the other one."""
        special = torch.cat([self.camera_token, self.register_token], 2).to(dtype)  # [1, 2, 1+R, C]
        idx = torch.ones(S, dtype=torch.long, device=special.device)
        if has_reference:
            idx[0] = 0
        return special[0, idx].unsqueeze(0).expand(B, -1, -1, -1)

    def run(
        self,
        patch_tokens: Tensor,
        hw: tuple[int, int],
        *,
        has_reference: bool = True,
        record_context: bool = False,
        context: Sequence[tuple[Tensor, Tensor]] | None = None,
        context_per_view: bool = False,
    ) -> TrunkOutput:
        """Run the alternating blocks.

        Args:
            patch_tokens: ``[B, S, h·w, C]``.
            hw: the patch grid ``(h, w)``.
            has_reference: view 0 of this set is the reference view (frame 0); ``False`` for support views.
            record_context: return each global block's ``(k, v)`` (the anchor pass).
            context: per layer ``(k, v)`` to attend to instead of this set's own tokens in the global
                blocks (the registration pass): each ``[B, nh, M, d]``, shared by all ``S`` views.
            context_per_view: ``context`` holds one set of keys/values per view instead, each
                ``[B·S, nh, M, d]``, and each view's global attention is its own (queries ``[B·S, P, C]``).
        """
        B, S, n, C = patch_tokens.shape
        h, w = hw
        if n != h * w:
            raise ValueError(f"patch_tokens has {n} tokens per view, expected h*w={h * w}")
        special = self.special_tokens(B, S, has_reference=has_reference, dtype=patch_tokens.dtype)
        x = torch.cat([special, patch_tokens], 2)  # [B, S, P, C]
        P = x.shape[2]
        head_dim = C // self.cfg.trunk.num_heads
        rope = self.rope.tables(h, w, self.patch_start, head_dim, x.device, torch.float32)
        keep: dict[int, Tensor] = {}
        recorded: list[tuple[Tensor, Tensor]] = []
        for i, (fblk, gblk) in enumerate(zip(self.frame_blocks, self.global_blocks, strict=True)):
            x = self._block(fblk, x.reshape(B * S, P, C), rope)
            frame_out = x.view(B, S, P, C)
            g_kwargs = {}
            if context is not None:
                g_kwargs["kv"] = context[i]
            elif record_context:
                g_kwargs["return_kv"] = True
            g_in = x.view(B * S, P, C) if context_per_view else x.view(B, S * P, C)
            g = self._block(gblk, g_in, rope, **g_kwargs)
            if isinstance(g, tuple):
                g, kv = g
                recorded.append(kv)
            x = g.view(B, S, P, C)
            if i in self.out_layers:
                keep[i] = torch.cat([frame_out, x], -1)
        return TrunkOutput(keep, self.patch_start, recorded if record_context else None)

    def _block(self, blk: Block, x: Tensor, rope, **kwargs):
        if self.training and self.gradient_checkpointing and torch.is_grad_enabled() and not kwargs:
            return checkpoint(blk, x, rope, use_reentrant=False)
        return blk(x, rope, **kwargs)

    def forward(self, images: Tensor) -> TrunkOutput:
        """Images ``[B, S, 3, H, W]`` in [0, 1] → :class:`TrunkOutput` (all views attend to all views)."""
        H, W = images.shape[-2:]
        tokens = self.embed(images)
        return self.run(tokens, (H // self.patch_size, W // self.patch_size))

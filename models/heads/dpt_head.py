"""DPT dense head (depth, point map, Gaussian parameters, track features) on four trunk layers.

For each of the four kept layers ``k``: patch tokens → shared ``norm`` → ``[B·S, 2C, h, w]`` → ``projects[k]``
(1×1) → + uv pos-embed → ``resize_layers[k]`` (×4, ×2, ×1, ÷2). Fusion: ``layerK_rn`` (3×3, no bias), then
``refinenet4 → 3 → 2 → 1`` (each resizes to the next level; the last ×2), ``output_conv1``, bilinear resize
to ``(H, W)`` (align_corners=True), + uv pos-embed, ``output_conv2`` → ``[B, S, H, W, out]`` (raw, channels
last).
Frames are processed ``frames_chunk`` at a time, counted over the whole batch (bounds memory, no
numerical effect).

Residual units reproduce the reference's in-place-ReLU quirk: the skip adds ``relu(x)``, not ``x``.

Names (``norm``, ``projects``, ``resize_layers``, ``scratch.layerK_rn``, ``scratch.refinenetK.resConfUnitJ``,
``scratch.output_conv1/2``) are fixed by the VGGT-1B checkpoint (strict load): do not rename.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import DPTConfig


# ------------------------------------------------------------------------------------- uv pos-embed
def uv_grid(width: int, height: int, aspect: float, *, device=None) -> Tensor:
    """``[height, width, 2]`` (x, y) spanning ±s·(n−1)/n; ``s_x² + s_y² = 1``, ``s_x/s_y = aspect``."""
    diag = math.sqrt(aspect * aspect + 1.0)
    sx, sy = aspect / diag, 1.0 / diag
    xs = torch.linspace(
        -sx * (width - 1) / width, sx * (width - 1) / width, width, device=device, dtype=torch.float64
    )
    ys = torch.linspace(
        -sy * (height - 1) / height, sy * (height - 1) / height, height, device=device, dtype=torch.float64
    )
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], -1)


def sincos_embed(coords: Tensor, dim: int, omega0: float = 100.0) -> Tensor:
    """``coords [..., 2]`` → ``[..., dim]``: ``[sin xω, cos xω, sin yω, cos yω]``, ``ω_k = ω0^(-4k/dim)``."""
    quarter = dim // 4
    omega = 1.0 / omega0 ** (torch.arange(quarter, dtype=torch.float64, device=coords.device) / quarter)
    parts = []
    for axis in (0, 1):
        a = coords[..., axis, None].to(torch.float64) * omega
        parts += [a.sin(), a.cos()]
    return torch.cat(parts, -1).float()


@functools.lru_cache(maxsize=32)
def _uv_embedding(
    h: int, w: int, dim: int, aspect: float, ratio: float, device: torch.device, channels_last: bool = False
) -> Tensor:
    """``[1, dim, h, w]`` float32 uv embedding, cached: the heads ask for the same few sizes every call.

    Built as an ordinary constant (not an inference-mode tensor) so training and inference can share it;
    ``channels_last`` gives it the maps' own layout (a mixed-layout broadcast add is several times slower).
    """
    with torch.inference_mode(False), torch.no_grad():
        emb = sincos_embed(uv_grid(w, h, aspect, device=device), dim) * ratio  # [h, w, dim]
        if channels_last:
            return emb[None].permute(0, 3, 1, 2)  # NHWC storage viewed as NCHW
        return emb.permute(2, 0, 1)[None].contiguous()


def uv_pos_embed(
    x: Tensor, image_w: int, image_h: int, ratio: float = 0.1, *, inplace: bool = False
) -> Tensor:
    """Add the parameter-free uv embedding to maps ``x [N, D, h', w']`` of an ``image_h×image_w`` image.

    ``inplace`` adds into ``x`` (for a fresh temporary whose producer's backward does not need it: saves a
    full-resolution allocation, which on the CPU costs more than the addition).
    """
    h, w = x.shape[-2:]
    nhwc = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    emb = _uv_embedding(h, w, x.shape[1], image_w / image_h, ratio, x.device, nhwc).to(x.dtype)
    return x.add_(emb) if inplace else x + emb


# ------------------------------------------------------------------------------------------- fusion
class ResidualConvUnit(nn.Module):
    """``conv2(relu(conv1(relu(x)))) + relu(x)`` (the reference's in-place ReLU also rewrites the skip)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x), inplace=True)) + x  # conv1's output is a fresh temporary


class FeatureFusionBlock(nn.Module):
    """``out_conv(resize(RCU2(x + RCU1(skip))))``; without a skip (``refinenet4``) there is no RCU1."""

    def __init__(self, features: int, *, has_skip: bool = True) -> None:
        super().__init__()
        if has_skip:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class _Scratch(nn.Module):
    def __init__(self, out_channels: tuple[int, ...], features: int, output_dim: int | None) -> None:
        super().__init__()
        for k, oc in enumerate(out_channels, start=1):
            setattr(self, f"layer{k}_rn", nn.Conv2d(oc, features, 3, padding=1, bias=False))
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features, has_skip=False)
        if output_dim is None:  # feature-only (track head's extractor)
            self.output_conv1 = nn.Conv2d(features, features, 3, padding=1)
        else:
            self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
            self.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, 3, padding=1),
                nn.ReLU(inplace=True),  # on the conv's fresh output: no second full-resolution map
                nn.Conv2d(32, output_dim, 1),
            )


class DPTHead(nn.Module):
    """Dense prediction from four trunk layers.

    Args:
        dim_in: token width (``2C``).
        cfg: features / per-level widths / frame chunk.
        output_dim: output channels, or ``None`` for a feature-only head (no ``output_conv2``).
        patch_size: pixels per patch.
        pos_embed: add the uv pos-embed (True for depth/point heads).
    """

    def __init__(
        self,
        dim_in: int,
        cfg: DPTConfig,
        output_dim: int | None,
        *,
        patch_size: int = 14,
        pos_embed: bool = True,
    ) -> None:
        super().__init__()
        oc = cfg.out_channels
        self.patch_size = patch_size
        self.frames_chunk = cfg.frames_chunk
        self.use_pos_embed = pos_embed
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], 4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], 3, stride=2, padding=1),
            ]
        )
        self.scratch = _Scratch(oc, cfg.features, output_dim)

    def forward(self, layers: list[Tensor], image_hw: tuple[int, int], patch_start: int) -> Tensor:
        """Four layers ``[B, S, P, 2C]`` → raw ``[B, S, H, W, out]`` (feature-only: ``[B, S, D, H, W]``)."""
        B, S = layers[0].shape[:2]
        # chunk over all B·S frames, not per scene: a batch of scenes keeps the same working set as one
        flat = [t.reshape(1, B * S, *t.shape[2:]) for t in layers]
        chunk = self.frames_chunk or B * S
        outs = [
            self._forward_frames([t[:, i : i + chunk] for t in flat], image_hw, patch_start)
            for i in range(0, B * S, chunk)
        ]
        out = torch.cat(outs, 1)
        return out.view(B, S, *out.shape[2:])

    def _forward_frames(self, layers: list[Tensor], image_hw: tuple[int, int], patch_start: int) -> Tensor:
        H, W = image_hw
        B, S = layers[0].shape[:2]
        h, w = H // self.patch_size, W // self.patch_size
        feats = []
        for k, t in enumerate(layers):
            x = self.norm(t[:, :, patch_start:].reshape(B * S, h * w, -1))
            # [N, h, w, C] viewed as NCHW in channels-last strides (no copy): the convolutions then stay
            # channels-last, oneDNN's faster layout on the CPU, down to the output's channels-last permute
            x = x.reshape(B * S, h, w, -1).permute(0, 3, 1, 2)
            x = self.projects[k](x)
            if self.use_pos_embed:
                x = uv_pos_embed(x, W, H, inplace=True)
            feats.append(self.resize_layers[k](x))
        sc = self.scratch
        l1, l2, l3, l4 = (getattr(sc, f"layer{k + 1}_rn")(f) for k, f in enumerate(feats))
        out = sc.refinenet4(l4, size=l3.shape[2:])
        out = sc.refinenet3(out, l3, size=l2.shape[2:])
        out = sc.refinenet2(out, l2, size=l1.shape[2:])
        out = sc.refinenet1(out, l1)
        out = sc.output_conv1(out)
        out = F.interpolate(out, size=(H, W), mode="bilinear", align_corners=True)
        if self.use_pos_embed:
            out = uv_pos_embed(out, W, H, inplace=True)
        if not hasattr(sc, "output_conv2"):
            return out.view(B, S, *out.shape[1:])
        out = sc.output_conv2(out)  # [B·S, out, H, W]
        return out.permute(0, 2, 3, 1).reshape(B, S, H, W, -1)

"""The CPU backend: projection → SH → binning → compositing, each stage a numba kernel pair.

Works on flattened scenes (``B`` = product of the batch dims) whose non-finite Gaussians were already
neutralised by :func:`renderer.rasterize`. Differentiable w.r.t. means, quats, scales, opacities, colours
(SH coefficients included) and backgrounds.
"""

from __future__ import annotations

import torch
from torch import Tensor

from renderer.cpu._arrays import f64
from renderer.cpu.binning import bin_gaussians
from renderer.cpu.composite import CompositeFn
from renderer.cpu.projection import ProjectFn
from renderer.cpu.sh import C0, SHFn, camera_positions
from renderer.options import RasterMeta, RenderOptions


def shade(
    colors: Tensor, means: Tensor, viewmats: Tensor, radii: Tensor, opts: RenderOptions, n_cameras: int
) -> Tensor:
    """Per-camera colours ``[B, C, N, D]`` from features or SH coefficients (gsplat's rules)."""
    B, N = means.shape[:2]
    per_view = colors.dim() == (4 if opts.sh_degree is None else 5)
    if opts.sh_degree is None:
        return colors if per_view else colors[:, None].expand(B, n_cameras, N, colors.shape[-1])
    coeffs = colors if per_view else colors[:, None]  # [B, 1 or C, N, K, 3]
    if opts.sh_degree == 0:  # view-independent: no direction needed
        rgb = torch.clamp_min(C0 * coeffs[..., 0, :] + 0.5, 0.0)
        return rgb.expand(B, n_cameras, N, 3)
    campos = camera_positions(viewmats.detach())
    return SHFn.apply(opts.sh_degree, means, campos, coeffs, radii)


def rasterize_cpu(
    means: Tensor,  # [B, N, 3]
    quats: Tensor,  # [B, N, 4]
    scales: Tensor,  # [B, N, 3]
    opacities: Tensor,  # [B, N]
    colors: Tensor,  # [B, (C,) N, D] or [B, (C,) N, K, 3]
    viewmats: Tensor,  # [B, C, 4, 4]
    Ks: Tensor,  # [B, C, 3, 3]
    backgrounds: Tensor | None,  # [B, C, D] colour channels (the depth channel's background is 0)
    opts: RenderOptions,
    batch: tuple[int, ...],
) -> tuple[Tensor, Tensor, RasterMeta]:
    """Render ``[*batch, C, H, W, X]`` colours and ``[*batch, C, H, W, 1]`` alphas on the CPU.

    ``batch`` are the caller's leading dims (``prod(batch) == B``); every result, ``meta`` included, gets
    them back. ``meta.means2d`` is the very tensor the compositor consumed, so ``retain_grad`` works on it.
    """
    B, N = means.shape[:2]
    C = viewmats.shape[1]
    I = B * C  # noqa: E741 - gsplat's letter for the number of images
    means2d, depths, conics, radii = ProjectFn.apply(
        means, quats, scales, opacities.detach(), viewmats, Ks, opts
    )
    lead = (*batch, C, N)
    means2d = means2d.reshape(*lead, 2)
    feats = shade(colors, means, viewmats, radii, opts, C)
    if opts.render_mode in ("D", "ED"):
        feats = depths[..., None]
    elif opts.with_depth:
        feats = torch.cat([feats, depths[..., None]], -1)
    D = feats.shape[-1]
    opac = opacities[:, None, :].expand(B, C, N)
    tile_w, tile_h = opts.tiles_wh
    bins = bin_gaussians(
        radii.reshape(I * N, 2).numpy(),
        f64(means2d.reshape(I * N, 2)),
        f64(depths.reshape(I * N)),
        I,
        opts.tile_size,
        tile_w,
        tile_h,
    )
    bg = None
    if backgrounds is not None and opts.render_mode not in ("D", "ED"):
        bg = backgrounds.reshape(I, -1)
        if opts.with_depth:
            bg = torch.cat([bg, bg.new_zeros(I, 1)], -1)
    render, alpha = CompositeFn.apply(
        means2d.reshape(I * N, 2),
        conics.reshape(I * N, 3),
        feats.reshape(I * N, D),
        opac.reshape(I * N),
        bg,
        bins,
        opts.width,
        opts.height,
    )
    if opts.expected_depth:
        render = torch.cat([render[..., :-1], render[..., -1:] / alpha.clamp_min(1e-10)], -1)
    H, W = opts.height, opts.width
    meta = RasterMeta(
        backend="cpu",
        width=W,
        height=H,
        tile_size=opts.tile_size,
        tile_width=tile_w,
        tile_height=tile_h,
        n_batches=B,
        n_cameras=C,
        radii=radii.reshape(*lead, 2),
        means2d=means2d,
        depths=depths.reshape(lead),
        conics=conics.reshape(*lead, 3),
        opacities=opac.reshape(lead),
        tiles_per_gauss=torch.from_numpy(bins.tiles_per_gauss).reshape(lead),
        isect_offsets=torch.from_numpy(bins.offsets[:-1]).reshape(*batch, C, tile_h, tile_w),
        flatten_ids=torch.from_numpy(bins.flatten_ids),
    )
    return render.reshape(*batch, C, H, W, D), alpha.reshape(*batch, C, H, W, 1), meta

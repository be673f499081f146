"""Plain-PyTorch twins of the fast CPU ops: slow, obvious, differentiated by autograd alone.

Each function mirrors one stage (``_project`` ↔ :mod:`renderer.cpu.projection`, ``_spherical_harmonics``
↔ :mod:`renderer.cpu.sh`, ``_bin_tiles`` ↔ :mod:`renderer.cpu.binning`, ``_composite`` ↔
:mod:`renderer.cpu.composite`) and ``_rasterize_flat`` chains them like the CPU backend. Tests compare
the fast ops against these, forward and backward. Only for small scenes: compositing is dense per tile.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from renderer.options import (
    ALPHA_MAX,
    ALPHA_THRESHOLD,
    EXTENT_SIGMAS,
    TRANSMITTANCE_MIN,
    RasterMeta,
    RenderOptions,
)
from renderer.types import SH_C0


def _quat_scale_to_covar(quats: Tensor, scales: Tensor) -> Tensor:
    """PyTorch implementation of the world covariance ``R S Sᵀ Rᵀ``: ``[..., 4], [..., 3] → [..., 3, 3]``."""
    assert quats.shape[:-1] == scales.shape[:-1], (quats.shape, scales.shape)
    norm = quats.norm(dim=-1, keepdim=True)
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=quats.dtype)
    q = torch.where(norm > 0, quats / norm.clamp_min(1e-300), identity)
    w, x, y, z = q.unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(q.shape[:-1] + (3, 3))
    M = R * scales[..., None, :]
    return M @ M.transpose(-1, -2)


def _project(
    means: Tensor,  # [B, N, 3]
    quats: Tensor,  # [B, N, 4]
    scales: Tensor,  # [B, N, 3]
    opacities: Tensor | None,  # [B, N]
    viewmats: Tensor,  # [B, C, 4, 4]
    Ks: Tensor,  # [B, C, 3, 3]
    opts: RenderOptions,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """PyTorch implementation of :class:`renderer.cpu.projection.ProjectFn`.

    Returns radii ``[B, C, N, 2]`` int32, means2d ``[B, C, N, 2]``, depths ``[B, C, N]``, conics
    ``[B, C, N, 3]``; culled entries have radii, means2d and conics 0.
    """
    B, N = means.shape[:2]
    C = viewmats.shape[1]
    assert quats.shape == (B, N, 4) and scales.shape == (B, N, 3), (quats.shape, scales.shape)
    assert viewmats.shape == (B, C, 4, 4) and Ks.shape == (B, C, 3, 3), (viewmats.shape, Ks.shape)
    W, H = float(opts.width), float(opts.height)
    covars = _quat_scale_to_covar(quats, scales)  # [B, N, 3, 3]
    R, t = viewmats[..., :3, :3], viewmats[..., :3, 3]
    p = torch.einsum("bcij,bnj->bcni", R, means) + t[:, :, None]  # [B, C, N, 3]
    cov_c = torch.einsum("bcij,bnjk,bclk->bcnil", R, covars, R)
    x, y, z = p.unbind(-1)
    fx, fy = Ks[..., 0, 0, None], Ks[..., 1, 1, None]
    cx, cy = Ks[..., 0, 2, None], Ks[..., 1, 2, None]
    lim_xp = (W - cx) / fx + 0.3 * (0.5 * W / fx)
    lim_xn = cx / fx + 0.3 * (0.5 * W / fx)
    lim_yp = (H - cy) / fy + 0.3 * (0.5 * H / fy)
    lim_yn = cy / fy + 0.3 * (0.5 * H / fy)
    tx = z * torch.minimum(lim_xp, torch.maximum(-lim_xn, x / z))
    ty = z * torch.minimum(lim_yp, torch.maximum(-lim_yn, y / z))
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / z**2, zero, fy / z, -fy * ty / z**2], -1).reshape(B, C, N, 2, 3)
    cov2d = J @ cov_c @ J.transpose(-1, -2) + opts.eps2d * torch.eye(2, dtype=means.dtype)
    det = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    conics = (
        torch.stack([cov2d[..., 1, 1], -(cov2d[..., 0, 1] + cov2d[..., 1, 0]) / 2, cov2d[..., 0, 0]], -1)
        / det[..., None]
    )
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)
    extent = torch.full((B, 1, N), EXTENT_SIGMAS, dtype=means.dtype)
    valid = (z > 0) & (z >= opts.near_plane) & (z <= opts.far_plane) & (det > 0)
    if opacities is not None:
        o = opacities.detach()[:, None, :]
        valid &= o >= ALPHA_THRESHOLD
        extent = torch.minimum(extent, torch.sqrt(2 * torch.log((o / ALPHA_THRESHOLD).clamp_min(1.0))))
    diag = torch.stack([cov2d[..., 0, 0], cov2d[..., 1, 1]], -1).detach()
    radius = torch.ceil(extent[..., None] * diag.clamp_min(0).sqrt())
    valid &= (radius > 0).any(-1)
    m = means2d.detach()
    inside = (m[..., 0] + radius[..., 0] > 0) & (m[..., 0] - radius[..., 0] < W)
    inside &= (m[..., 1] + radius[..., 1] > 0) & (m[..., 1] - radius[..., 1] < H)
    valid &= inside
    radii = torch.where(valid[..., None], radius, 0).to(torch.int32)
    v = valid[..., None]
    return radii, torch.where(v, means2d, 0.0), z, torch.where(v, conics, 0.0)


def _sh_bases(degree: int, d: Tensor) -> Tensor:
    """Real SH bases ``[..., (degree+1)²]`` at unit directions ``[..., 3]`` (INRIA/gsplat sign convention)."""
    x, y, z = d.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        c1 = 0.4886025119029199
        out += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (2 * zz - xx - yy),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (xx - yy),
        ]
    if degree >= 3:
        out += [
            -0.5900435899266435 * y * (3 * xx - yy),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (4 * zz - xx - yy),
            0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
            -0.4570457994644658 * x * (4 * zz - xx - yy),
            1.445305721320277 * z * (xx - yy),
            -0.5900435899266435 * x * (xx - 3 * yy),
        ]
    return torch.stack(out, -1)


def _spherical_harmonics(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """PyTorch implementation of the SH colour sum: dirs ``[..., 3]``, coeffs ``[..., K, 3]`` → ``[..., 3]``.

    Directions are normalised here; the +0.5 offset and clamp are applied by the caller (as in gsplat).
    """
    assert coeffs.shape[:-2] == dirs.shape[:-1] and coeffs.shape[-1] == 3, (dirs.shape, coeffs.shape)
    nb = (degree + 1) ** 2
    bases = _sh_bases(degree, F.normalize(dirs, dim=-1))
    return (bases[..., None] * coeffs[..., :nb, :]).sum(-2)


@torch.no_grad()
def _bin_tiles(
    radii: Tensor, means2d: Tensor, depths: Tensor, n_images: int, opts: RenderOptions
) -> tuple[Tensor, Tensor, Tensor]:
    """PyTorch implementation of :func:`renderer.cpu.binning.bin_gaussians` (a loop over tiles).

    Args: radii ``[I·N, 2]``, means2d ``[I·N, 2]``, depths ``[I·N]``.
    Returns: offsets ``[I·T + 1]``, flatten_ids ``[n_isects]``, tiles_per_gauss ``[I·N]`` (int64).
    """
    ts = opts.tile_size
    tw, th = opts.tiles_wh
    N = radii.shape[0] // n_images
    visible = (radii > 0).all(-1)
    lo = torch.floor((means2d - radii) / ts).long()
    hi = torch.ceil((means2d + radii) / ts).long()
    x0, x1 = lo[:, 0].clamp(0, tw), hi[:, 0].clamp(0, tw)
    y0, y1 = lo[:, 1].clamp(0, th), hi[:, 1].clamp(0, th)
    tiles_per_gauss = torch.where(visible, (x1 - x0) * (y1 - y0), 0)
    key = depths.to(torch.float32)
    ids, offsets = [], [0]
    for i in range(n_images):
        sl = slice(i * N, (i + 1) * N)
        for ty in range(th):
            for tx in range(tw):
                hit = visible[sl] & (x0[sl] <= tx) & (tx < x1[sl]) & (y0[sl] <= ty) & (ty < y1[sl])
                local = torch.nonzero(hit)[:, 0]
                local = local[torch.sort(key[sl][local], stable=True).indices]
                ids.append(local + i * N)
                offsets.append(offsets[-1] + local.numel())
    return torch.tensor(offsets), torch.cat(ids), tiles_per_gauss


def _composite(
    means2d: Tensor,  # [I·N, 2]
    conics: Tensor,  # [I·N, 3]
    colors: Tensor,  # [I·N, D]
    opacities: Tensor,  # [I·N]
    backgrounds: Tensor | None,  # [I, D]
    offsets: Tensor,  # [I·T + 1]
    flatten_ids: Tensor,  # [n_isects]
    n_images: int,
    opts: RenderOptions,
) -> tuple[Tensor, Tensor]:
    """PyTorch implementation of :class:`renderer.cpu.composite.CompositeFn` (dense per tile).

    Returns colours ``[I, H, W, D]`` and alphas ``[I, H, W, 1]``.
    """
    ts, (tw, th) = opts.tile_size, opts.tiles_wh
    H, W, D = opts.height, opts.width, colors.shape[-1]
    img = means2d.new_zeros(n_images, th * ts, tw * ts, D)
    trans = means2d.new_ones(n_images, th * ts, tw * ts)
    ys, xs = torch.meshgrid(
        torch.arange(ts, dtype=means2d.dtype), torch.arange(ts, dtype=means2d.dtype), indexing="ij"
    )
    for i in range(n_images):
        for ty in range(th):
            for tx in range(tw):
                t = (i * th + ty) * tw + tx
                ids = flatten_ids[offsets[t] : offsets[t + 1]]
                if ids.numel() == 0:
                    continue
                px = (xs + tx * ts + 0.5).reshape(-1, 1)
                py = (ys + ty * ts + 0.5).reshape(-1, 1)
                dx, dy = means2d[ids, 0] - px, means2d[ids, 1] - py  # [P, G]
                a, b, c = conics[ids].unbind(-1)
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = torch.clamp_max(opacities[ids] * torch.exp(-sigma), ALPHA_MAX)
                keep = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
                alpha = torch.where(keep, alpha, 0.0)
                # stop rule: a Gaussian that would take T to <= 1e-4 (and everything after) is left out
                include = keep & (torch.cumprod(1 - alpha, -1) > TRANSMITTANCE_MIN)
                alpha = torch.where(include, alpha, 0.0)
                T_after = torch.cumprod(1 - alpha, -1)
                T_before = torch.cat([torch.ones_like(T_after[:, :1]), T_after[:, :-1]], -1)
                tile = (alpha * T_before) @ colors[ids]
                rows, cols = slice(ty * ts, (ty + 1) * ts), slice(tx * ts, (tx + 1) * ts)
                img[i, rows, cols] = tile.reshape(ts, ts, D)
                trans[i, rows, cols] = T_after[:, -1].reshape(ts, ts)
    img, trans = img[:, :H, :W], trans[:, :H, :W]
    if backgrounds is not None:
        img = img + trans[..., None] * backgrounds[:, None, None, :]
    return img, (1 - trans)[..., None]


def _rasterize_flat(
    means: Tensor,  # [B, N, 3]
    quats: Tensor,  # [B, N, 4]
    scales: Tensor,  # [B, N, 3]
    opacities: Tensor,  # [B, N]
    colors: Tensor,  # [B, (C,) N, D] or [B, (C,) N, K, 3]
    viewmats: Tensor,  # [B, C, 4, 4]
    Ks: Tensor,  # [B, C, 3, 3]
    backgrounds: Tensor | None,  # [B, C, D] colour channels
    opts: RenderOptions,
    batch: tuple[int, ...],
) -> tuple[Tensor, Tensor, RasterMeta]:
    """PyTorch implementation of :func:`renderer.backends.cpu.rasterize_cpu` (the whole pipeline)."""
    B, N = means.shape[:2]
    C = viewmats.shape[1]
    I = B * C  # noqa: E741
    radii, means2d, depths, conics = _project(means, quats, scales, opacities, viewmats, Ks, opts)
    per_view = colors.dim() == (4 if opts.sh_degree is None else 5)
    if opts.sh_degree is None:
        feats = colors if per_view else colors[:, None].expand(B, C, N, colors.shape[-1])
    else:
        coeffs = colors if per_view else colors[:, None].expand(B, C, *colors.shape[1:])
        R, t = viewmats[..., :3, :3], viewmats[..., :3, 3]
        campos = -(R.transpose(-1, -2) @ t[..., None])[..., 0]  # [B, C, 3]
        dirs = means[:, None] - campos[:, :, None]
        feats = torch.clamp_min(_spherical_harmonics(opts.sh_degree, dirs, coeffs) + 0.5, 0.0)
    if opts.render_mode in ("D", "ED"):
        feats = depths[..., None]
    elif opts.with_depth:
        feats = torch.cat([feats, depths[..., None]], -1)
    D = feats.shape[-1]
    bg = None
    if backgrounds is not None and opts.render_mode not in ("D", "ED"):
        bg = backgrounds.reshape(I, -1)
        bg = torch.cat([bg, bg.new_zeros(I, 1)], -1) if opts.with_depth else bg
    opac = opacities[:, None, :].expand(B, C, N)
    offsets, flatten_ids, tiles_per_gauss = _bin_tiles(
        radii.reshape(I * N, 2), means2d.detach().reshape(I * N, 2), depths.detach().reshape(I * N), I, opts
    )
    render, alpha = _composite(
        means2d.reshape(I * N, 2),
        conics.reshape(I * N, 3),
        feats.reshape(I * N, D),
        opac.reshape(I * N),
        bg,
        offsets,
        flatten_ids,
        I,
        opts,
    )
    if opts.expected_depth:
        render = torch.cat([render[..., :-1], render[..., -1:] / alpha.clamp_min(1e-10)], -1)
    tw, th = opts.tiles_wh
    lead = (*batch, C, N)
    meta = RasterMeta(
        backend="torch",
        width=opts.width,
        height=opts.height,
        tile_size=opts.tile_size,
        tile_width=tw,
        tile_height=th,
        n_batches=B,
        n_cameras=C,
        radii=radii.reshape(*lead, 2),
        means2d=means2d.reshape(*lead, 2),
        depths=depths.reshape(lead),
        conics=conics.reshape(*lead, 3),
        opacities=opac.reshape(lead),
        tiles_per_gauss=tiles_per_gauss.reshape(lead),
        isect_offsets=offsets[:-1].reshape(*batch, C, th, tw),
        flatten_ids=flatten_ids,
    )
    H, W = opts.height, opts.width
    return render.reshape(*batch, C, H, W, D), alpha.reshape(*batch, C, H, W, 1), meta


__all__ = [
    "_bin_tiles",
    "_composite",
    "_project",
    "_quat_scale_to_covar",
    "_rasterize_flat",
    "_spherical_harmonics",
]

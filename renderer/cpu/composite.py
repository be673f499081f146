"""Compositing stage: front-to-back alpha blending of binned 2D Gaussians, forward and backward.

Per pixel centre ``(j + 0.5, i + 0.5)`` and Gaussian ``g`` in depth order (gsplat's rule, exactly):
``σ = ½(a dx² + c dy²) + b dx dy`` with ``d = mean2d - pixel``; skip when ``σ < 0``; ``α = min(0.999,
o·exp(-σ))``; skip when ``α < 1/255``; stop (without ``g``) when ``T(1 - α) ≤ 1e-4``; otherwise
``colour += c_g α T`` and ``T *= 1 - α``. Output colour ``+ T·background``, alpha ``1 - T``.

CPU layout: tiles are the unit of parallel work (interleaved over threads for load balance). Inside a tile
the loop runs over Gaussians and, per Gaussian, only over the pixels of each row where ``α ≥ 1/255`` can
hold (the ellipse ``σ ≤ ln(255·o)`` solved per row), so no work is spent on pixels a
Gaussian cannot reach; ``exp(-σ)`` is walked from pixel to pixel by multiplications (σ is quadratic in
the pixel position), one exp pair per Gaussian and tile.
Per-pixel state (T, colour, done flag, last index) keeps the per-pixel order and
results identical to gsplat's per-pixel loop. The backward pass walks each tile back to front, recovering
T by division (float64), writes one gradient row per tile intersection, then sums rows per Gaussian.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from renderer.cpu._arrays import f64, to_tensor
from renderer.cpu._threads import NJIT_OPTIONS, jobs_for, launch
from renderer.cpu.binning import TileBins
from renderer.options import ALPHA_MAX, ALPHA_THRESHOLD, TRANSMITTANCE_MIN

#: Jobs per thread: tiles are dealt out interleaved over many jobs so uneven tiles even out.
_JOBS_PER_THREAD = 16


@numba.njit(**NJIT_OPTIONS)
def _tile_of(t, n_tiles, tile_w, tile_size, width, height):
    i = t // n_tiles
    r = t - i * n_tiles
    ty = r // tile_w
    tx = r - ty * tile_w
    x0 = tx * tile_size
    y0 = ty * tile_size
    return i, x0, y0, min(x0 + tile_size, width), min(y0 + tile_size, height)


#: Spans are widened by this many pixels: rounding moves a span end by ~1e-8 px at most (where the ellipse
#: is tangent to a row), so no pixel with alpha >= 1/255 is missed; the exact test runs per pixel anyway.
_SPAN_MARGIN = 1e-5


@numba.njit(**NJIT_OPTIONS)
def _row_span(my, a, b, c, level, y0, y1):
    """Rows ``[r0, r1)`` of the tile where ``σ ≤ level`` is possible (whole tile if the conic is not PD)."""
    det = a * c - b * b
    if not (a > 0.0 and det > 0.0):
        return y0, y1
    half = math.sqrt(2.0 * level * a / det) + _SPAN_MARGIN
    r0 = max(float(y0), math.ceil(my - half - 0.5))
    r1 = min(float(y1), math.floor(my + half - 0.5) + 1.0)
    if r1 <= r0:
        return 0, 0
    return int(r0), int(r1)


@numba.njit(**NJIT_OPTIONS)
def _col_span(mx, dy, b, inv_a, two_a_level, det, x0, x1):
    """Columns ``[j0, j1)`` of one row (offset ``dy``) where ``σ ≤ level`` can hold, for a PD conic.

    Solves ``a dx² + 2 b dy dx + c dy² ≤ 2 level`` for ``dx`` with the per-Gaussian constants ``1/a``,
    ``2 a level`` and ``det = a c - b²``; pixel centre ``j + 0.5 = mx - dx``.
    """
    disc = two_a_level - det * dy * dy
    if disc < 0.0:
        return 0, 0
    centre = mx + b * dy * inv_a - 0.5
    half = math.sqrt(disc) * inv_a + _SPAN_MARGIN
    j0 = max(float(x0), math.ceil(centre - half))
    j1 = min(float(x1), math.floor(centre + half) + 1.0)
    if j1 <= j0:
        return 0, 0
    return int(j0), int(j1)


#: Conics with an entry above this (only possible with ``eps2d`` near 0) use a direct exp per pixel, so the
#: incremental factors below cannot overflow.
_INCREMENTAL_MAX = 16.0


@numba.njit(**NJIT_OPTIONS)
def _incremental(a, b, c):
    """Whether ``exp(-σ)`` may be walked incrementally (PD conic, moderate entries), and the factors
    ``exp(-a), exp(-b), exp(-c)`` (the second differences of σ along x, across, and along y)."""
    if a > 0.0 and a * c - b * b > 0.0 and a <= _INCREMENTAL_MAX and c <= _INCREMENTAL_MAX:
        if abs(b) <= _INCREMENTAL_MAX:
            return True, math.exp(-a), math.exp(-b), math.exp(-c)
    return False, 0.0, 0.0, 0.0


@numba.njit(**NJIT_OPTIONS)
def _walk_start(mx, my, px, py, a, b, c):
    """At pixel ``(px, py)``: ``E = exp(-σ)``, and ``Sx``, ``Ty`` that move ``E`` one pixel right / down.

    ``σ`` is quadratic in the pixel position, so a step right multiplies ``E`` by ``Sx = exp(a·dx + b·dy -
    a/2)`` and then ``Sx`` by ``exp(-a)`` and ``Ty`` by ``exp(-b)``; a step down multiplies ``E`` by ``Ty``,
    ``Ty`` by ``exp(-c)`` and ``Sx`` by ``exp(-b)``. Walking the rows of a Gaussian this way costs a few
    multiplications per pixel and no exp; forward and backward walk identically, so both see bitwise equal
    alphas.
    """
    dx = mx - (px + 0.5)
    dy = my - (py + 0.5)
    e = math.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
    return e, math.exp(a * dx + b * dy - 0.5 * a), math.exp(c * dy + b * dx - 0.5 * c)


@numba.njit(**NJIT_OPTIONS)
def _walk_columns(e, sx, ty, k, qa, qb):
    """Move the walk state ``k`` pixels right (``k < 0``: left)."""
    while k > 0:
        e *= sx
        sx *= qa
        ty *= qb
        k -= 1
    while k < 0:
        sx /= qa
        e /= sx
        ty /= qb
        k += 1
    return e, sx, ty


@numba.njit(**NJIT_OPTIONS)
def _composite_fwd_kernel(
    job,
    n_jobs,
    means2d,
    conics,
    opacities,
    colors,
    backgrounds,
    offsets,
    flatten_ids,
    n_images,
    width,
    height,
    tile_size,
    tile_w,
    tile_h,
    out_colors,
    out_T,
    out_last,
):
    D = colors.shape[1]
    n_tiles = tile_w * tile_h
    total = n_images * n_tiles
    npx = tile_size * tile_size
    T = np.empty(npx)
    acc = np.empty((npx, D))
    last = np.empty(npx, np.int64)
    done = np.empty(npx, np.bool_)
    for t in range(job, total, n_jobs):
        i, x0, y0, x1, y1 = _tile_of(t, n_tiles, tile_w, tile_size, width, height)
        n_pix = (x1 - x0) * (y1 - y0)
        T[:] = 1.0
        acc[:] = 0.0
        last[:] = -1
        done[:] = False
        n_done = 0
        for idx in range(offsets[t], offsets[t + 1]):
            g = flatten_ids[idx]
            o = opacities[g]
            if not o >= ALPHA_THRESHOLD:
                continue
            level = math.log(o / ALPHA_THRESHOLD)
            mx, my = means2d[g, 0], means2d[g, 1]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            c0 = colors[g, 0]
            c1 = colors[g, 1] if D > 1 else 0.0
            c2 = colors[g, 2] if D > 2 else 0.0
            incremental, qa, qb, qc = _incremental(a, b, c)
            det = a * c - b * b
            pd = a > 0.0 and det > 0.0
            inv_a = 1.0 / a if pd else 0.0
            two_a_level = 2.0 * a * level
            ready, e, sx, ty, jr = False, 0.0, 0.0, 0.0, 0
            r0, r1 = _row_span(my, a, b, c, level, y0, y1)
            for py in range(r0, r1):
                dy = my - (py + 0.5)
                j0, j1 = _col_span(mx, dy, b, inv_a, two_a_level, det, x0, x1) if pd else (x0, x1)
                row = (py - y0) * tile_size - x0
                vis, step = 0.0, 0.0
                if incremental:
                    if j1 > j0:
                        if ready:
                            e, sx, ty = _walk_columns(e, sx, ty, j0 - jr, qa, qb)
                        else:
                            e, sx, ty = _walk_start(mx, my, j0, py, a, b, c)
                            ready = True
                        jr = j0
                    vis, step = e, sx
                    e, sx, ty = e * ty, sx * qb, ty * qc  # the reference pixel moves one row down
                for px in range(j0, j1):
                    p = row + px
                    if incremental:
                        v = vis
                        vis *= step
                        step *= qa
                    else:
                        dx = mx - (px + 0.5)
                        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                        if sigma < 0.0:
                            continue
                        v = math.exp(-sigma)
                    if done[p]:
                        continue
                    alpha = min(ALPHA_MAX, o * v)
                    if alpha < ALPHA_THRESHOLD:
                        continue
                    next_T = T[p] * (1.0 - alpha)
                    if next_T <= TRANSMITTANCE_MIN:
                        done[p] = True
                        n_done += 1
                        continue
                    w = alpha * T[p]
                    if D == 3:  # the common case, unrolled
                        acc[p, 0] += c0 * w
                        acc[p, 1] += c1 * w
                        acc[p, 2] += c2 * w
                    else:
                        for k in range(D):
                            acc[p, k] += colors[g, k] * w
                    T[p] = next_T
                    last[p] = idx
            if n_done == n_pix:
                break
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * tile_size + (px - x0)
                for k in range(D):
                    out_colors[i, py, px, k] = acc[p, k] + T[p] * backgrounds[i, k]
                out_T[i, py, px] = T[p]
                out_last[i, py, px] = last[p]


@numba.njit(**NJIT_OPTIONS)
def _composite_bwd_kernel(
    job,
    n_jobs,
    means2d,
    conics,
    opacities,
    colors,
    backgrounds,
    offsets,
    flatten_ids,
    n_images,
    width,
    height,
    tile_size,
    tile_w,
    tile_h,
    out_T,
    out_last,
    v_colors_img,
    v_alphas_img,
    grads,
):
    D = colors.shape[1]
    n_tiles = tile_w * tile_h
    total = n_images * n_tiles
    npx = tile_size * tile_size
    T = np.empty(npx)
    T_final = np.empty(npx)
    S = np.empty((npx, D))
    v_out = np.empty((npx, D))
    v_alpha_out = np.empty(npx)
    bg_dot = np.empty(npx)
    last = np.empty(npx, np.int64)
    v_col = np.empty(D)
    for t in range(job, total, n_jobs):
        i, x0, y0, x1, y1 = _tile_of(t, n_tiles, tile_w, tile_size, width, height)
        start = offsets[t]
        max_last = start - 1
        last[:] = -1
        for py in range(y0, y1):
            for px in range(x0, x1):
                p = (py - y0) * tile_size + (px - x0)
                T[p] = out_T[i, py, px]
                T_final[p] = T[p]
                last[p] = out_last[i, py, px]
                max_last = max(max_last, last[p])
                v_alpha_out[p] = v_alphas_img[i, py, px]
                dot = 0.0
                for k in range(D):
                    v_out[p, k] = v_colors_img[i, py, px, k]
                    S[p, k] = 0.0
                    dot += backgrounds[i, k] * v_out[p, k]
                bg_dot[p] = dot
        for idx in range(max_last, start - 1, -1):
            g = flatten_ids[idx]
            o = opacities[g]
            if not o >= ALPHA_THRESHOLD:
                continue
            level = math.log(o / ALPHA_THRESHOLD)
            mx, my = means2d[g, 0], means2d[g, 1]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            c0 = colors[g, 0]
            c1 = colors[g, 1] if D > 1 else 0.0
            c2 = colors[g, 2] if D > 2 else 0.0
            v_mx, v_my, v_a, v_b, v_c, v_o = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
            v_col[:] = 0.0
            touched = False
            incremental, qa, qb, qc = _incremental(a, b, c)
            det = a * c - b * b
            pd = a > 0.0 and det > 0.0
            inv_a = 1.0 / a if pd else 0.0
            two_a_level = 2.0 * a * level
            ready, e, sx, ty, jr = False, 0.0, 0.0, 0.0, 0
            r0, r1 = _row_span(my, a, b, c, level, y0, y1)
            for py in range(r0, r1):
                dy = my - (py + 0.5)
                j0, j1 = _col_span(mx, dy, b, inv_a, two_a_level, det, x0, x1) if pd else (x0, x1)
                row = (py - y0) * tile_size - x0
                vis_next, step = 0.0, 0.0
                if incremental:
                    if j1 > j0:
                        if ready:
                            e, sx, ty = _walk_columns(e, sx, ty, j0 - jr, qa, qb)
                        else:
                            e, sx, ty = _walk_start(mx, my, j0, py, a, b, c)
                            ready = True
                        jr = j0
                    vis_next, step = e, sx
                    e, sx, ty = e * ty, sx * qb, ty * qc
                for px in range(j0, j1):
                    p = row + px
                    dx = mx - (px + 0.5)
                    if incremental:
                        vis = vis_next
                        vis_next *= step
                        step *= qa
                    else:
                        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                        if sigma < 0.0:
                            continue
                        vis = math.exp(-sigma)
                    if idx > last[p]:
                        continue
                    alpha = min(ALPHA_MAX, o * vis)
                    if alpha < ALPHA_THRESHOLD:
                        continue
                    touched = True
                    ra = 1.0 / (1.0 - alpha)
                    T[p] *= ra
                    fac = alpha * T[p]
                    v_alpha = T_final[p] * ra * (v_alpha_out[p] - bg_dot[p])
                    if D == 3:  # the common case, unrolled (same operation order as the loop)
                        t_p = T[p]
                        v0, v1, v2 = v_out[p, 0], v_out[p, 1], v_out[p, 2]
                        v_col[0] += fac * v0
                        v_alpha += (c0 * t_p - S[p, 0] * ra) * v0
                        S[p, 0] += c0 * fac
                        v_col[1] += fac * v1
                        v_alpha += (c1 * t_p - S[p, 1] * ra) * v1
                        S[p, 1] += c1 * fac
                        v_col[2] += fac * v2
                        v_alpha += (c2 * t_p - S[p, 2] * ra) * v2
                        S[p, 2] += c2 * fac
                    else:
                        for k in range(D):
                            v_col[k] += fac * v_out[p, k]
                            v_alpha += (colors[g, k] * T[p] - S[p, k] * ra) * v_out[p, k]
                            S[p, k] += colors[g, k] * fac
                    if o * vis <= ALPHA_MAX:
                        v_sigma = -o * vis * v_alpha
                        v_a += 0.5 * v_sigma * dx * dx
                        v_b += v_sigma * dx * dy
                        v_c += 0.5 * v_sigma * dy * dy
                        v_mx += v_sigma * (a * dx + b * dy)
                        v_my += v_sigma * (b * dx + c * dy)
                        v_o += vis * v_alpha
            if touched:
                grads[idx, 0] = v_mx
                grads[idx, 1] = v_my
                grads[idx, 2] = v_a
                grads[idx, 3] = v_b
                grads[idx, 4] = v_c
                grads[idx, 5] = v_o
                for k in range(D):
                    grads[idx, 6 + k] = v_col[k]


@numba.njit(**NJIT_OPTIONS)
def _sum_rows_per_gaussian(job, n_jobs, offsets, flatten_ids, grads, n_images, n_tiles, out):
    """``out[g] = Σ grads[idx]`` over the intersections of ``g``; images own disjoint rows, so parallel."""
    for i in range(job, n_images, n_jobs):
        for idx in range(offsets[i * n_tiles], offsets[(i + 1) * n_tiles]):
            g = flatten_ids[idx]
            for k in range(grads.shape[1]):
                out[g, k] += grads[idx, k]


class CompositeFn(torch.autograd.Function):
    """Differentiable compositing of ``I`` images.

    Inputs: means2d ``[I·N, 2]``, conics ``[I·N, 3]``, colors ``[I·N, D]``, opacities ``[I·N]``,
    backgrounds ``[I, D]`` or None, the :class:`TileBins` of the same flat indexing, and the image size.
    Outputs in the dtype of ``colors``: render_colors ``[I, H, W, D]``, render_alphas ``[I, H, W, 1]``.
    """

    @staticmethod
    def forward(
        ctx, means2d, conics, colors, opacities, backgrounds, bins: TileBins, width: int, height: int
    ):
        n_images = bins.n_images
        D = colors.shape[-1]
        bg = f64(backgrounds) if backgrounds is not None else np.zeros((n_images, D))
        out_colors = np.empty((n_images, height, width, D))
        out_T = np.empty((n_images, height, width))
        out_last = np.empty((n_images, height, width), np.int64)
        arrays = (f64(means2d), f64(conics), f64(opacities), f64(colors), bg)
        tiling = (
            bins.offsets,
            bins.flatten_ids,
            n_images,
            width,
            height,
            bins.tile_size,
            bins.tile_w,
            bins.tile_h,
        )
        n_jobs = jobs_for(n_images * bins.tile_w * bins.tile_h, _JOBS_PER_THREAD)
        launch(_composite_fwd_kernel, n_jobs, *arrays, *tiling, out_colors, out_T, out_last)
        ctx.bins, ctx.size, ctx.arrays, ctx.tiling = bins, (width, height), arrays, tiling
        ctx.T, ctx.last = out_T, out_last
        ctx.dtypes = (means2d.dtype, conics.dtype, colors.dtype, opacities.dtype)
        ctx.bg_dtype = None if backgrounds is None else backgrounds.dtype
        alpha = (1.0 - out_T)[..., None]
        return to_tensor(out_colors, colors.dtype), to_tensor(alpha, colors.dtype)

    @staticmethod
    def backward(ctx, v_colors_img, v_alphas_img):
        bins: TileBins = ctx.bins
        width, height = ctx.size
        n_images = ctx.T.shape[0]
        D = ctx.arrays[3].shape[-1]
        v_c = f64(v_colors_img) if v_colors_img is not None else np.zeros((n_images, height, width, D))
        v_a = f64(v_alphas_img[..., 0]) if v_alphas_img is not None else np.zeros((n_images, height, width))
        grads = np.zeros((bins.n_isects, 6 + D))
        n_jobs = jobs_for(n_images * bins.tile_w * bins.tile_h, _JOBS_PER_THREAD)
        launch(_composite_bwd_kernel, n_jobs, *ctx.arrays, *ctx.tiling, ctx.T, ctx.last, v_c, v_a, grads)
        per_gauss = np.zeros((ctx.arrays[0].shape[0], 6 + D))
        n_tiles = bins.tile_w * bins.tile_h
        launch(_sum_rows_per_gaussian, jobs_for(n_images, 1), bins.offsets, bins.flatten_ids, grads, n_images,
               n_tiles, per_gauss)  # fmt: skip
        t_means2d, t_conics, t_colors, t_opac = ctx.dtypes
        v_bg = None
        if ctx.bg_dtype is not None and ctx.needs_input_grad[4]:
            v_bg = to_tensor(np.einsum("ihw,ihwd->id", ctx.T, v_c), ctx.bg_dtype)
        return (
            to_tensor(np.ascontiguousarray(per_gauss[:, 0:2]), t_means2d),
            to_tensor(np.ascontiguousarray(per_gauss[:, 2:5]), t_conics),
            to_tensor(np.ascontiguousarray(per_gauss[:, 6:]), t_colors),
            to_tensor(np.ascontiguousarray(per_gauss[:, 5]), t_opac),
            v_bg,
            None,
            None,
            None,
        )

"""Binning stage: which Gaussians touch which screen tile, front to back.

For image ``i`` and tile ``t`` the list ``flatten_ids[offsets[i·T + t] : offsets[i·T + t + 1]]`` holds the
flat indices ``i·N + n`` of the Gaussians whose screen box (mean ± radii) overlaps the tile, sorted by
camera depth. This is gsplat's ``isect_tiles`` + ``isect_offset_encode`` result without the 64-bit keys.

Method: per image, visible Gaussians are sorted once by depth (LSD radix sort on the float32 bit pattern
of the positive depths, 3 passes of 11 bits), then scattered into tiles with a stable counting sort, so
every tile list comes out depth-ordered without a per-tile sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from renderer.cpu._threads import NJIT_OPTIONS, block, jobs_for, launch

_RADIX_BITS = 11
_RADIX = 1 << _RADIX_BITS


@numba.njit(**NJIT_OPTIONS)
def _radix_argsort_u32(keys, order):
    """Stable argsort of uint32 ``keys`` into ``order`` (LSD radix, 3 × 11-bit passes)."""
    n = keys.shape[0]
    for i in range(n):
        order[i] = i
    tmp = np.empty(n, np.int64)
    counts = np.empty(_RADIX, np.int64)
    for shift in range(0, 33, _RADIX_BITS):
        counts[:] = 0
        for i in range(n):
            counts[(keys[i] >> shift) & (_RADIX - 1)] += 1
        total = 0
        for d in range(_RADIX):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(n):
            k = order[i]
            d = (keys[k] >> shift) & (_RADIX - 1)
            tmp[counts[d]] = k
            counts[d] += 1
        for i in range(n):
            order[i] = tmp[i]


@numba.njit(**NJIT_OPTIONS)
def _tile_rects(job, n_jobs, radii, means2d, tile_size, tile_w, tile_h, rects, tiles_per_gauss):
    """Tile rectangle ``[x0, x1) × [y0, y1)`` of each flat Gaussian (empty when culled)."""
    lo, hi = block(job, n_jobs, radii.shape[0])
    for g in range(lo, hi):
        rx, ry = radii[g, 0], radii[g, 1]
        if rx <= 0 or ry <= 0:
            rects[g, 0] = 0
            rects[g, 1] = 0
            rects[g, 2] = 0
            rects[g, 3] = 0
            tiles_per_gauss[g] = 0
            continue
        mx, my = means2d[g, 0], means2d[g, 1]
        x0 = min(max(int(np.floor((mx - rx) / tile_size)), 0), tile_w)
        x1 = min(max(int(np.ceil((mx + rx) / tile_size)), 0), tile_w)
        y0 = min(max(int(np.floor((my - ry) / tile_size)), 0), tile_h)
        y1 = min(max(int(np.ceil((my + ry) / tile_size)), 0), tile_h)
        rects[g, 0] = x0
        rects[g, 1] = x1
        rects[g, 2] = y0
        rects[g, 3] = y1
        tiles_per_gauss[g] = (x1 - x0) * (y1 - y0)


@numba.njit(**NJIT_OPTIONS)
def _bin_kernel(
    job, n_jobs, depths, rects, tiles_per_gauss, n_images, n_gauss, tile_w, tile_h, offsets, order_out, n_vis
):
    """Count per tile and sort visible Gaussians by depth, one image per parallel iteration."""
    n_tiles = tile_w * tile_h
    for i in range(job, n_images, n_jobs):
        base = i * n_gauss
        m = 0
        for n in range(n_gauss):
            if tiles_per_gauss[base + n] > 0:
                m += 1
        vis = np.empty(m, np.int64)
        keys = np.empty(m, np.float32)
        m = 0
        for n in range(n_gauss):
            g = base + n
            if tiles_per_gauss[g] > 0:
                vis[m] = g
                keys[m] = depths[g]
                m += 1
        order = np.empty(m, np.int64)
        # positive float32 values sort like their bit patterns read as unsigned integers
        _radix_argsort_u32(keys.view(np.uint32), order)
        for k in range(m):
            order_out[base + k] = vis[order[k]]
        n_vis[i] = m
        for k in range(m):
            g = vis[k]
            for ty in range(rects[g, 2], rects[g, 3]):
                for tx in range(rects[g, 0], rects[g, 1]):
                    offsets[i * n_tiles + ty * tile_w + tx + 1] += 1


@numba.njit(**NJIT_OPTIONS)
def _fill_kernel(job, n_jobs, rects, order, n_vis, n_gauss, tile_w, tile_h, offsets, flatten_ids):
    """Scatter each image's depth-ordered Gaussians into their tiles (stable counting sort)."""
    n_tiles = tile_w * tile_h
    for i in range(job, n_vis.shape[0], n_jobs):
        cursor = offsets[i * n_tiles : (i + 1) * n_tiles].copy()
        base = i * n_gauss
        for k in range(n_vis[i]):
            g = order[base + k]
            for ty in range(rects[g, 2], rects[g, 3]):
                for tx in range(rects[g, 0], rects[g, 1]):
                    t = ty * tile_w + tx
                    flatten_ids[cursor[t]] = g
                    cursor[t] += 1


@dataclass(frozen=True)
class TileBins:
    """Result of :func:`bin_gaussians` (numpy, no gradients).

    Attributes:
        offsets: ``[I · tile_h · tile_w + 1]`` int64; tile ``t`` of image ``i`` owns
            ``flatten_ids[offsets[i·T + t] : offsets[i·T + t + 1]]``.
        flatten_ids: ``[n_isects]`` int64 flat indices ``i·N + n``, front to back within each tile.
        tiles_per_gauss: ``[I · N]`` int64 tiles overlapped by each Gaussian (0 when culled).
        tile_w, tile_h, tile_size: tiling of the image.
    """

    offsets: np.ndarray
    flatten_ids: np.ndarray
    tiles_per_gauss: np.ndarray
    tile_w: int
    tile_h: int
    tile_size: int

    @property
    def n_images(self) -> int:
        return (self.offsets.shape[0] - 1) // (self.tile_w * self.tile_h)

    @property
    def n_isects(self) -> int:
        return int(self.flatten_ids.shape[0])


def bin_gaussians(
    radii: np.ndarray, means2d: np.ndarray, depths: np.ndarray, n_images: int, tile_size: int, tile_w: int,
    tile_h: int,
) -> TileBins:  # fmt: skip
    """Bin projected Gaussians into tiles.

    Args:
        radii: ``[I·N, 2]`` int32 (0 = culled).
        means2d: ``[I·N, 2]`` float64 pixels.
        depths: ``[I·N]`` float64 camera z (positive for every visible Gaussian).
        n_images: ``I``; tile_size, tile_w, tile_h: the tiling.
    """
    total = radii.shape[0]
    n_gauss = total // max(n_images, 1)
    rects = np.empty((total, 4), np.int64)
    tiles_per_gauss = np.empty(total, np.int64)
    launch(
        _tile_rects, jobs_for(total), radii, means2d, float(tile_size), tile_w, tile_h, rects, tiles_per_gauss
    )
    n_tiles = tile_w * tile_h
    offsets = np.zeros(n_images * n_tiles + 1, np.int64)
    order = np.empty(total, np.int64)
    n_vis = np.empty(n_images, np.int64)
    launch(
        _bin_kernel,
        jobs_for(n_images, 1),
        depths,
        rects,
        tiles_per_gauss,
        n_images,
        n_gauss,
        tile_w,
        tile_h,
        offsets,
        order,
        n_vis,
    )
    np.cumsum(offsets, out=offsets)
    flatten_ids = np.empty(int(offsets[-1]), np.int64)
    launch(
        _fill_kernel,
        jobs_for(n_images, 1),
        rects,
        order,
        n_vis,
        n_gauss,
        tile_w,
        tile_h,
        offsets,
        flatten_ids,
    )
    return TileBins(offsets, flatten_ids, tiles_per_gauss, tile_w, tile_h, tile_size)

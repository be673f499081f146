"""Smooth per-view depth corrections fitted to sparse reference depths (used by :mod:`models.refine`).

After bundle adjustment a view has a few hundred keypoints whose depth is known from triangulation (the
adjusted 3D points seen from the adjusted camera). The network's depth map is mostly wrong at low
frequencies: a view's scale drifts across the image (the floor in front vs the wall behind, one side of a
room vs the other). So rather than one scale per view, we fit the log of the ratio
``reference depth / predicted depth`` with a bilinear field on a coarse ``grid × grid`` lattice over the
image, and multiply the depth map by its exponential:

    minimise  Σ_k w_k ρ(f(x_k) − log r_k) / Σ w
              + λ_s · mean((f_{i−1} − 2 f_i + f_{i+1})²)  +  λ_p · mean((f_i − m)²)

with ``ρ`` the Huber loss (iteratively reweighted least squares), the curvature taken along every lattice
row and column (a plane, a tilt of the scale across the image, costs nothing), and
``m`` the weighted median log ratio (what a single per-view scale would use). The smoothness term keeps
the field from following noise; the prior term holds lattice nodes that no keypoint constrains at the
median, so parts of the image without tracks keep the plain per-view scale.

Measured on the procedural suite with ground-truth depth at 300 random pixels per view standing in for
triangulated points (4 views, 12 scenes, tiny v4 weights): per-view AbsRel 0.154 (network) → 0.127 (one
scale per view) → 0.084 (2×2 lattice) → 0.055 (4×4) → 0.039 (8×8). With real tracks, which cluster on
texture and carry triangulation noise, the gain is smaller; docs/MODEL.md has the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldOptions:
    """Knobs of :func:`fit_log_scale_field` (defaults measured on the procedural suite, docs/MODEL.md)."""

    grid: int = 8  # lattice nodes per side; 1 = a single scale per view (the median ratio)
    smooth: float = 0.1  # λ_s, weight of the lattice's squared second differences (mean over them)
    prior: float = 0.01  # λ_p, weight of each node's squared distance to the median log ratio
    huber: float = 0.05  # log-ratio residual (≈ 5 %) past which a sample's influence stops growing
    min_samples: int = 80  # fewer samples than this: a single scale (the median ratio)
    iterations: int = 3  # IRLS rounds
    max_deviation: float = 0.25  # lattice values are clipped to the median log ratio ± this (×0.78 … ×1.28)


def _to_lattice(centres: np.ndarray, size: int, grid: int) -> np.ndarray:
    """Continuous lattice coordinates of pixel positions along one axis of ``size`` pixels (pixel centres at
    +0.5): the first and last pixels' centres land on the end nodes."""
    return np.clip((centres - 0.5) / max(size - 1, 1) * (grid - 1), 0, grid - 1)


def _grid_coords(xy: np.ndarray, hw: tuple[int, int], grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous lattice coordinates (row, col) of pixel positions ``xy``."""
    return _to_lattice(xy[:, 1], hw[0], grid), _to_lattice(xy[:, 0], hw[1], grid)


def _linear_weights(coord: np.ndarray, grid: int) -> np.ndarray:
    """``[n, grid]`` 1-D linear-interpolation weights of continuous lattice coordinates on the nodes."""
    i0 = np.minimum(np.floor(coord).astype(np.int64), grid - 2)
    frac = coord - i0
    out = np.zeros((len(coord), grid))
    rows = np.arange(len(coord))
    out[rows, i0] = 1 - frac
    out[rows, i0 + 1] += frac
    return out


def _bilinear_rows(gy: np.ndarray, gx: np.ndarray, grid: int) -> np.ndarray:
    """``[n, grid²]`` interpolation weights of each sample on the lattice nodes (row-major)."""
    wy, wx = _linear_weights(gy, grid), _linear_weights(gx, grid)
    return (wy[:, :, None] * wx[:, None, :]).reshape(len(gy), grid * grid)


def _second_differences(grid: int) -> np.ndarray:
    """``[rows, grid²]`` rows ``e_{i−1} − 2 e_i + e_{i+1}`` along every lattice row and column: the
    curvature of the field (a plane costs nothing, so a tilt across the image is not flattened)."""
    rows = []
    for i in range(grid):
        for j in range(1, grid - 1):
            for a, b, c in (((i, j - 1), (i, j), (i, j + 1)), ((j - 1, i), (j, i), (j + 1, i))):
                r = np.zeros(grid * grid)
                r[a[0] * grid + a[1]], r[b[0] * grid + b[1]], r[c[0] * grid + c[1]] = 1.0, -2.0, 1.0
                rows.append(r)
    return np.array(rows).reshape(-1, grid * grid)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def fit_log_scale_field(
    xy: np.ndarray,
    log_ratio: np.ndarray,
    hw: tuple[int, int],
    options: FieldOptions | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Lattice values ``[grid, grid]`` of the log depth correction fitted to samples (see module doc).

    Args:
        xy: ``[n, 2]`` pixel positions of the samples (pixel centres at +0.5).
        log_ratio: ``[n]`` ``log(reference depth / predicted depth)`` at those pixels (finite).
        hw: the depth map's ``(height, width)``.
        weights: ``[n]`` non-negative confidence per sample (default 1).

    With fewer than ``options.min_samples`` samples, or ``grid == 1``, every node holds the (weighted)
    median log ratio: a single scale for the view.
    """
    opts = options or FieldOptions()
    if opts.grid < 1:
        raise ValueError(f"grid must be >= 1, got {opts.grid}")
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    r = np.asarray(log_ratio, dtype=np.float64).reshape(-1)
    if len(xy) != len(r):
        raise ValueError(f"xy has {len(xy)} samples, log_ratio {len(r)}")
    if len(r) == 0:
        return np.zeros((opts.grid, opts.grid))
    if not np.isfinite(r).all() or not np.isfinite(xy).all():
        raise ValueError("xy and log_ratio must be finite")
    wts = np.ones(len(r)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(wts) != len(r) or (wts < 0).any() or wts.sum() <= 0:
        raise ValueError("weights must be one non-negative value per sample, not all zero")
    median = _weighted_median(r, wts)
    if opts.grid == 1 or len(r) < opts.min_samples:
        return np.full((opts.grid, opts.grid), median)

    g = opts.grid
    A = _bilinear_rows(*_grid_coords(xy, hw, g), g)
    D = _second_differences(g)
    nodes = g * g
    # normal equations of the three (mean-normalised) quadratic terms, reweighted for Huber each round
    reg = opts.prior / nodes * np.eye(nodes)
    if len(D):
        reg = reg + opts.smooth / len(D) * D.T @ D
    reg_rhs = opts.prior / nodes * np.full(nodes, median)
    c = np.full(nodes, median)
    for _ in range(max(opts.iterations, 1)):
        resid = np.abs(A @ c - r)
        huber = np.where(resid <= opts.huber, 1.0, opts.huber / np.maximum(resid, 1e-12))
        wk = wts * huber
        wk = wk / wk.sum()
        c = np.linalg.solve(A.T @ (wk[:, None] * A) + reg, A.T @ (wk * r) + reg_rhs)
    return np.clip(c, median - opts.max_deviation, median + opts.max_deviation).reshape(g, g)


def expand_field(lattice: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``[h, w]`` float32 multiplicative depth correction: ``exp`` of the lattice interpolated bilinearly
    at every pixel centre (the same mapping :func:`fit_log_scale_field` used for the samples)."""
    g = lattice.shape[0]
    if lattice.shape != (g, g):
        raise ValueError(f"lattice must be square, got {list(lattice.shape)}")
    h, w = hw
    if g == 1:
        return np.full((h, w), np.exp(lattice[0, 0]), dtype=np.float32)
    # bilinear interpolation is separable: rows' weights × lattice × columns' weights
    gy, gx = _to_lattice(np.arange(h) + 0.5, h, g), _to_lattice(np.arange(w) + 0.5, w, g)
    values = _linear_weights(gy, g) @ lattice @ _linear_weights(gx, g).T
    return np.exp(values).astype(np.float32)

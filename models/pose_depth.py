"""Depth correction against caller-given cameras: SIFT matches triangulated with fixed poses → depth fix.

When the caller knows the cameras (poses from a rig, SLAM or COLMAP, usually with intrinsics), the
network's depth maps are only brought into the caller's frame by one similarity fitted to the camera
centres (:func:`models.align.align_cameras`): one scale for the whole scene, and the network's own
errors (a view's scale drifting across the image, views disagreeing) stay. The cameras themselves
are right, so matched keypoints can be triangulated directly and the depth maps fitted to them, the way
:mod:`models.refine`'s last step fits them to bundle-adjusted points:

1. SIFT keypoints and mutual-nearest-neighbour matches with Lowe's ratio test (the same pairs as
   :mod:`models.refine`: every pair up to 32 views, else anchors and index neighbours);
2. each match is triangulated with the given cameras (the midpoint of the two rays, closed form); it is
   kept when the point lies in front of both cameras, reprojects within ``max_error_frac`` of the image
   width in both views (an epipolar check: a wrong match off the epipolar line fails it) and is seen
   under at least ``min_triangulation_deg`` (two nearly parallel rays leave the depth free);
3. every view's depth map is multiplied by a smooth factor fitted to ``triangulated depth / predicted
   depth`` at its kept keypoints (:mod:`models.depth_field`: an 8×8 bilinear lattice, Huber, held within
   ×1.28 of the view's median ratio), or by the median ratio alone when fewer than 80 points support it,
   or left as it is when fewer than 5 do.

The cameras are not changed. Nothing here is learnt; nothing downloads. docs/MODEL.md has the numbers.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.refine import (
    RefineOptions,
    RefineResult,
    _depth_at,
    _depth_lattices,
    _lift,
    _project,
    _quiet_colmap,
    match_views,
)

#: fewer triangulated points than this in a view: its depth map keeps the given-camera alignment's scale
MIN_POINTS_FOR_SCALE = 5


def triangulate_pairs(
    xy_a: np.ndarray,
    xy_b: np.ndarray,
    K_a: np.ndarray,
    K_b: np.ndarray,
    w2c_a: np.ndarray,
    w2c_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Midpoint triangulation of matched pixels ``xy_a[k] ↔ xy_b[k]`` (``[n, 2]``, centres at +0.5).

    Returns ``(points [n, 3], z_a [n], z_b [n], angle_deg [n])``: world points, their z-depths in each
    camera and the angle between the two rays. Parallel rays give NaN points.
    """

    def rays(xy: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre = -w2c[:3, :3].T @ w2c[:3, 3]
        return _lift(xy, np.ones(len(xy)), K, w2c) - centre, centre  # directions with unit camera-z

    d_a, c_a = rays(xy_a, K_a, w2c_a)
    d_b, c_b = rays(xy_b, K_b, w2c_b)
    w0 = c_a - c_b
    A = np.einsum("ij,ij->i", d_a, d_a)
    B = np.einsum("ij,ij->i", d_a, d_b)
    C = np.einsum("ij,ij->i", d_b, d_b)
    D = d_a @ w0
    E = d_b @ w0
    denom = A * C - B * B
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-12 * A * C, (B * E - C * D) / denom, np.nan)  # along ray a
        t = np.where(denom > 1e-12 * A * C, (A * E - B * D) / denom, np.nan)  # along ray b
    points = 0.5 * ((c_a + s[:, None] * d_a) + (c_b + t[:, None] * d_b))
    z_a = points @ w2c_a[2, :3] + w2c_a[2, 3]
    z_b = points @ w2c_b[2, :3] + w2c_b[2, 3]
    cos = B / np.sqrt(A * C)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return points, z_a, z_b, angle


def _reprojection_error(points: np.ndarray, xy: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    return np.linalg.norm(_project(points, K, w2c)[0] - xy, axis=1)


def fit_depth_to_cameras(
    rgb: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    anchors: list[int] | None = None,
    options: RefineOptions | None = None,
) -> RefineResult:
    """Depth corrections of every view against fixed (caller-given) cameras (module doc).

    Args:
        rgb: ``[S, h, w, 3]`` uint8 model-input images; depth ``[S, h, w]`` (0 where unknown), already in
            the cameras' frame and scale; valid ``[S, h, w]`` bool; K ``[S, 3, 3]`` intrinsics of those
            maps; world_to_camera ``[S, 4, 4]`` the given cameras.
        anchors: matched against every view when there are many views.
        options: the matching, reprojection and depth-field knobs of :class:`~models.refine.RefineOptions`
            (the pose and bundle-adjustment ones do not apply).

    Returns:
        :class:`~models.refine.RefineResult` with the cameras unchanged, ``refined`` empty, and each view's
        ``depth_lattice`` / ``depth_scale`` (1 where too few points were triangulated).
    """
    opts = options or RefineOptions()
    with _quiet_colmap():
        return _fit(rgb, depth, valid, K, world_to_camera, anchors, opts)


def _fit(
    rgb: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    anchors: list[int] | None,
    opts: RefineOptions,
) -> RefineResult:
    S, h, w = depth.shape
    w2c = np.array(world_to_camera, dtype=np.float64, copy=True)
    K64 = np.array(K, dtype=np.float64, copy=True)
    per_view: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {v: [] for v in range(S)}
    matched = 0
    if S >= 2:
        feats, matches = match_views(rgb, anchors, opts)
        depth_kp = [_depth_at(depth[s], valid[s], feats[s].xy) for s in range(S)]
        max_error = opts.max_error_frac * w
        for (i, j), m in matches.items():
            if i > j:  # each pair once
                continue
            matched += 1
            xy_i, xy_j = feats[i].xy[m[:, 0]], feats[j].xy[m[:, 1]]
            points, z_i, z_j, angle = triangulate_pairs(xy_i, xy_j, K64[i], K64[j], w2c[i], w2c[j])
            with np.errstate(invalid="ignore"):
                good = (
                    (z_i > 0)
                    & (z_j > 0)
                    & (_reprojection_error(points, xy_i, K64[i], w2c[i]) < max_error)
                    & (_reprojection_error(points, xy_j, K64[j], w2c[j]) < max_error)
                    & (angle >= opts.min_triangulation_deg)
                )
            for v, xy, z, kp in ((i, xy_i, z_i, m[:, 0]), (j, xy_j, z_j, m[:, 1])):
                own = depth_kp[v][kp]
                keep = good & np.isfinite(own)
                if keep.any():
                    per_view[v].append((xy[keep], z[keep] / own[keep], angle[keep]))
    scale = np.ones(S)
    samples: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for v, parts in per_view.items():
        if not parts:
            continue
        xy, ratio, angle = (np.concatenate(p) for p in zip(*parts, strict=True))
        if len(ratio) >= MIN_POINTS_FOR_SCALE:
            scale[v] = float(np.median(ratio))
            samples[v] = (xy, ratio, angle)
    # angles were already checked above; the lattice fit only needs enough samples per view
    lattice, correction = _depth_lattices(scale, samples, (h, w), replace(opts, min_triangulation_deg=0.0))
    report = {
        "method": "sift+triangulation (given cameras)",
        "matched_pairs": matched,
        "points": {str(v): len(s[1]) for v, s in sorted(samples.items())},
        "depth_scale": [round(float(x), 4) for x in scale],
        "depth_correction": correction,
    }
    return RefineResult(w2c, K64, scale, lattice, (h, w), [], report)

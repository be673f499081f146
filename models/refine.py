"""Optional camera refinement after the forward pass: SIFT matches + predicted depth → PnP → BA → depth fix.

The network's cameras are a single regression; its depth maps are usually better than its relative poses
(on our procedural suite the tiny model's depth AbsRel is ~0.15 while its 4-view AUC@30 is ~0.1). This
module turns the depth into 3D points and lets classical geometry fix the poses, the way VGGT's authors
pair their network with bundle adjustment:

1. SIFT keypoints per view (pycolmap, on the model-input RGB the depth maps belong to);
2. mutual-nearest-neighbour matching with Lowe's ratio test, for every pair of views (or each view against
   the anchors and its index neighbours when there are many);
3. incremental registration, starting from the view of the best-matched pair (its predicted pose and
   depth are the start): a view's keypoints matched to already registered views get 3D points from those
   views' depth (lifted through their camera), and ``pycolmap.estimate_and_refine_absolute_pose``
   (LO-RANSAC P3P + non-linear refinement) gives its pose; the view with the most matches into the
   registered ones goes next. View 0 defines the world frame and is never moved: when it registers, the
   group is moved by one similarity to view 0's input pose and the scale of its depth; when it does not,
   the group keeps the predicted pose of the view it started from. (Starting from view 0 instead left
   every view unregistered whenever view 0 shared few features with each of the others, as on many
   ``objects`` scenes: 4-view AUC@30 on 20 of them, objects 0.36 → 0.50, all kinds 0.59 → 0.63.)
4. each newly registered view's depth map is rescaled so its depth agrees (median ratio over the inliers)
   with the points it was registered against, so every depth map and camera share one scale;
5. bundle adjustment (pycolmap / Ceres, Cauchy loss): the matches that agree with those poses are joined
   into tracks, and poses, points and the focal length (one camera shared by all views when their
   intrinsics agree within the network's scatter, 10 %) are refined jointly, twice, dropping the tracks
   that still reproject badly in between. This step corrects what the predicted depth got wrong, which PnP
   alone inherits. The result is mapped back to the reference view's frame and the scale of its predicted
   depth; an adjustment that loses its points or moves the focal length by more than half is tried again
   with the focal lengths fixed (few tracks leave them free to run off), and discarded if it fails again
   (the PnP poses stay).
   (A second PnP pass of every view against all the others before this step was measured on the 50-scene
   suite and removed: AUC@30 within ±0.02 at every view count, 9 % more time at 32 views.)
6. depth correction: each view's depth map is multiplied by a smooth factor fitted to its bundle-adjusted
   points (their depth in the adjusted camera over the predicted depth at the keypoint; points seen under
   less than ``min_triangulation_deg`` are left out): an 8×8 bilinear lattice of log factors, robust
   (Huber), held within ×1.28 of the view's median ratio, and a single scale (the median) for views with
   fewer than 80 such points or when bundle adjustment did not run (:mod:`models.depth_field`). The
   network's depth errors are mostly smooth across the image, which one scale per view cannot follow;
   on well-registered scenes this takes 4-view AbsRel from 0.155 to 0.112 (docs/MODEL.md).

A view is only moved when RANSAC finds at least ``min_inliers`` inliers; otherwise it keeps the predicted
camera (view 0 is untouched, so the refined frame and scale are the predicted ones) and the
report says so (``seed_view``: where registration started; ``reference_view``: 0, or the seed when view 0
did not register). Caller-given intrinsics are never changed. Nothing here is learnt; nothing downloads.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.depth_field import FieldOptions, expand_field, fit_log_scale_field

#: views up to which every pair is matched; past it each view is matched to the anchors and neighbours
EXHAUSTIVE_MAX_VIEWS = 32


@dataclass(frozen=True)
class RefineOptions:
    """Knobs of :func:`refine_cameras` (defaults measured on the procedural suite, see docs/MODEL.md)."""

    max_keypoints: int = 2048
    ratio: float = 0.85
    min_inliers: int = 20
    max_error_frac: float = 0.02  # RANSAC inlier threshold as a fraction of the image width (4.5 px at 224)
    neighbours: int = 2  # index neighbours matched per view past EXHAUSTIVE_MAX_VIEWS
    bundle_adjust: bool = True
    refine_focal: bool = True  # let bundle adjustment move the focal length(s)
    shared_camera: str = "auto"  # "auto": one camera for all views when their intrinsics agree; "yes"/"no"
    shared_focal_tolerance: float = 0.10  # "auto" shares when every focal length is within this of the mean
    track_error_frac: float = 0.03  # a match joins a track when the lifted point reprojects within this
    # depth correction after bundle adjustment (grid 1: one scale per view, as before session 11)
    depth_field: FieldOptions = field(default_factory=FieldOptions)
    min_triangulation_deg: float = 1.0  # adjusted points seen under a narrower angle do not correct depth


@dataclass
class RefineResult:
    """Refined cameras of one scene.

    Attributes:
        world_to_camera: ``[S, 4, 4]`` float64, view 0's input pose kept.
        K: ``[S, 3, 3]`` float64; focal lengths moved by bundle adjustment only with ``refine_focal``.
        depth_scale: ``[S]`` median factor each view's depth map must be multiplied by to agree with the
            cameras (one number per view, for reports).
        depth_lattice: ``[S, g, g]`` log depth corrections (:mod:`models.depth_field`): the smooth field
            fitted to each view's bundle-adjusted points, or ``log(depth_scale)`` at every node for views
            without enough of them. :meth:`depth_factor_of` expands one view to pixels, :attr:`depth_factor`
            all of them (``S`` full-size maps: for small scenes and tests).
        refined: views whose pose was re-estimated (view 0 never is).
        report: what ran, inliers per view, views kept as predicted, bundle-adjustment summary.
    """

    world_to_camera: np.ndarray
    K: np.ndarray
    depth_scale: np.ndarray
    depth_lattice: np.ndarray
    hw: tuple[int, int]
    refined: list[int]
    report: dict[str, Any] = field(default_factory=dict)

    def depth_factor_of(self, view: int) -> np.ndarray:
        """``[h, w]`` float32: what ``view``'s depth map must be multiplied by to agree with the cameras."""
        return expand_field(self.depth_lattice[view], self.hw)

    @property
    def depth_factor(self) -> np.ndarray:
        """``[S, h, w]`` float32 factors of every view (see :meth:`depth_factor_of`)."""
        return np.stack([self.depth_factor_of(v) for v in range(len(self.depth_lattice))])


@dataclass
class _Features:
    xy: np.ndarray  # [n, 2] float64, pixel centres at +0.5 (COLMAP's convention, and ours)
    desc: np.ndarray  # [n, 128] float32, unit length (RootSIFT)


def extract_features(rgb: np.ndarray, max_keypoints: int) -> list[_Features]:
    """SIFT keypoints and descriptors of every view of ``rgb [S, h, w, 3]`` uint8."""
    import pycolmap

    options = pycolmap.FeatureExtractionOptions()
    options.num_threads = 1
    options.sift.max_num_features = max_keypoints
    with warnings.catch_warnings():
        # pycolmap 4 deprecates Sift for FeatureExtractor, whose results are not numpy arrays; Sift returns
        # numpy and exists in every pycolmap the project allows (>= 3.12)
        warnings.simplefilter("ignore", DeprecationWarning)
        sift = pycolmap.Sift(options, pycolmap.Device.cpu)
    feats = []
    for view in rgb:
        gray = np.ascontiguousarray(view.astype(np.float32).mean(-1) / 255.0)
        kp, desc = sift.extract(gray)
        desc = desc.astype(np.float32)
        desc /= np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-12)
        feats.append(_Features(kp[:, :2].astype(np.float64), desc))
    return feats


def match_descriptors(a: np.ndarray, b: np.ndarray, ratio: float) -> np.ndarray:
    """``[m, 2]`` index pairs: mutual nearest neighbours passing Lowe's ratio test both ways.

    Descriptors are unit vectors, so distances follow from similarities (``|a-b|² = 2 - 2 a·b``) and only
    each row's and column's two best similarities are needed (``torch.topk``, ~10× numpy's partition).
    """
    import torch

    if len(a) < 2 or len(b) < 2:
        return np.empty((0, 2), np.int64)
    sim = torch.from_numpy(a) @ torch.from_numpy(b).T
    top_a, idx_a = sim.topk(2, dim=1)  # [n_a, 2]
    top_b, idx_b = sim.topk(2, dim=0)  # [2, n_b]
    dist_a = (2.0 - 2.0 * top_a).clamp_min(0.0).sqrt()
    dist_b = (2.0 - 2.0 * top_b).clamp_min(0.0).sqrt()
    rows = torch.arange(len(a))
    best = idx_a[:, 0]
    d = dist_a[:, 0]
    keep = (idx_b[0, best] == rows) & (d < ratio * dist_a[:, 1]) & (d < ratio * dist_b[1, best])
    return torch.stack([rows[keep], best[keep]], 1).numpy()


def match_pairs(num_views: int, anchors: list[int], neighbours: int) -> list[tuple[int, int]]:
    """Which view pairs to match: all of them up to :data:`EXHAUSTIVE_MAX_VIEWS` views, else each view with
    every anchor and its ``neighbours`` index neighbours (linear in the views)."""
    if num_views <= EXHAUSTIVE_MAX_VIEWS:
        return [(i, j) for i in range(num_views) for j in range(i + 1, num_views)]
    pairs = set()
    for j in range(num_views):
        for i in list(anchors) + list(range(j - neighbours, j + neighbours + 1)):
            if 0 <= i < num_views and i != j:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def match_views(
    rgb: np.ndarray, anchors: list[int] | None, opts: RefineOptions
) -> tuple[list[_Features], dict[tuple[int, int], np.ndarray]]:
    """SIFT features of every view and the matches of the pairs :func:`match_pairs` picks, stored both ways
    (``matches[(j, i)]`` is ``matches[(i, j)]`` with its columns swapped); pairs without a match are
    absent."""
    feats = extract_features(rgb, opts.max_keypoints)
    matches: dict[tuple[int, int], np.ndarray] = {}
    for i, j in match_pairs(len(rgb), anchors or [0], opts.neighbours):
        m = match_descriptors(feats[i].desc, feats[j].desc, opts.ratio)
        if len(m):
            matches[(i, j)] = m
            matches[(j, i)] = m[:, ::-1]
    return feats, matches


def _depth_at(depth: np.ndarray, ok: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Depth at keypoints (nearest pixel), NaN off the map, on padding/zero depth, or across an edge (the 3×3
    neighbourhood's depth varies by more than 10 %: a lifted point there could belong to either side)."""
    h, w = depth.shape
    col = np.floor(xy[:, 0]).astype(np.int64)
    row = np.floor(xy[:, 1]).astype(np.int64)
    inside = (col >= 1) & (col < w - 1) & (row >= 1) & (row < h - 1)
    out = np.full(len(xy), np.nan)
    r, c = row[inside], col[inside]
    patch = np.stack([depth[r + dr, c + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], 1)
    good = ok[r, c] & (patch.min(1) > 0) & (patch.max(1) <= 1.1 * patch.min(1))
    vals = depth[r, c].astype(np.float64)
    vals[~good] = np.nan
    out[inside] = vals
    return out


def _lift(xy: np.ndarray, z: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    """World points of pixels ``xy`` at z-depth ``z`` for the camera ``K``, ``w2c``."""
    cam = np.stack([(xy[:, 0] - K[0, 2]) / K[0, 0] * z, (xy[:, 1] - K[1, 2]) / K[1, 1] * z, z], 1)
    R, t = w2c[:3, :3], w2c[:3, 3]
    return (cam - t) @ R  # R^T (cam - t)


@contextlib.contextmanager
def _quiet_colmap() -> Iterator[None]:
    """COLMAP's log (glog) at errors only while refining: its per-scene info lines ("Creating SIFT CPU
    feature extractor") and Ceres' warnings on degenerate steps (which bundle adjustment recovers from or
    :func:`_bundle_adjust` rejects) are noise in a service log."""
    import pycolmap

    level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = max(level, 2)
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = level


def refine_cameras(
    rgb: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    anchors: list[int] | None = None,
    options: RefineOptions | None = None,
) -> RefineResult:
    """Refine every view's pose against view 0 with SIFT matches and the predicted depth (module doc).

    Args:
        rgb: ``[S, h, w, 3]`` uint8 model-input images; depth ``[S, h, w]`` (0 where unknown); valid
            ``[S, h, w]`` bool; K ``[S, 3, 3]`` intrinsics of those maps; world_to_camera ``[S, 4, 4]``
            predicted (view 0 is the identity up to the network's rounding and defines the frame).
        anchors: anchor views, matched against every view when there are many views.

    Returns:
        :class:`RefineResult`; views not refined keep their predicted pose and a depth scale of 1.
    """
    with _quiet_colmap():
        return _refine(rgb, depth, valid, K, world_to_camera, anchors, options or RefineOptions())


def _refine(
    rgb: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    anchors: list[int] | None,
    opts: RefineOptions,
) -> RefineResult:
    """:func:`refine_cameras`' body, steps 1-5 of the module doc (COLMAP's log already quietened)."""
    import pycolmap

    S, h, w = depth.shape
    w2c = np.array(world_to_camera, dtype=np.float64, copy=True)
    scale = np.ones(S)
    if S < 2:
        report = {"method": "sift+pnp+ba", "refined_views": [], "kept_views": [], "bundle_adjustment": None}
        lattice = np.zeros((S, 1, 1))
        return RefineResult(w2c, np.array(K, dtype=np.float64, copy=True), scale, lattice, (h, w), [], report)

    feats, matches = match_views(rgb, anchors, opts)
    depth_kp = [_depth_at(depth[s], valid[s], feats[s].xy) for s in range(S)]

    cameras = [
        pycolmap.Camera(
            model="PINHOLE", width=w, height=h, params=[K[s, 0, 0], K[s, 1, 1], K[s, 0, 2], K[s, 1, 2]]
        )
        for s in range(S)
    ]
    estimation = pycolmap.AbsolutePoseEstimationOptions()
    estimation.ransac.max_error = opts.max_error_frac * w
    estimation.ransac.random_seed = 0
    refinement = pycolmap.AbsolutePoseRefinementOptions()

    def correspondences(j: int, sources: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xy2, xyz, kp_j = [], [], []
        for i in sources:
            m = matches.get((i, j))
            if m is None:
                continue
            z = depth_kp[i][m[:, 0]] * scale[i]
            keep = np.isfinite(z)
            if not keep.any():
                continue
            xyz.append(_lift(feats[i].xy[m[keep, 0]], z[keep], K[i], w2c[i]))
            xy2.append(feats[j].xy[m[keep, 1]])
            kp_j.append(m[keep, 1])
        if not xy2:
            return np.empty((0, 2)), np.empty((0, 3)), np.empty(0, np.int64)
        return np.concatenate(xy2), np.concatenate(xyz), np.concatenate(kp_j)

    def register(j: int, sources: set[int]) -> tuple[int, np.ndarray | None, float]:
        xy2, xyz, kp_j = correspondences(j, sources)
        if len(xy2) < max(opts.min_inliers, 4):
            return 0, None, 1.0
        res = pycolmap.estimate_and_refine_absolute_pose(xy2, xyz, cameras[j], estimation, refinement)
        if res is None or res["num_inliers"] < opts.min_inliers:
            return 0 if res is None else int(res["num_inliers"]), None, 1.0
        pose = np.eye(4)
        pose[:3] = res["cam_from_world"].matrix()
        inl = np.asarray(res["inlier_mask"], bool)
        z_new = (xyz[inl] @ pose[:3, :3].T + pose[:3, 3])[:, 2]
        z_own = depth_kp[j][kp_j[inl]]
        ok = np.isfinite(z_own) & (z_new > 0)
        s = float(np.median(z_new[ok] / z_own[ok])) if ok.sum() >= 5 else 1.0
        return int(res["num_inliers"]), pose, s

    neighbours: dict[int, list[int]] = {v: [] for v in range(S)}
    for i, j in matches:
        neighbours[i].append(j)
    seed = _seed_view(S, matches)
    registered = {seed}
    inliers = {seed: -1}
    pending = set(range(S)) - {seed}
    links = np.zeros(S, np.int64)  # matches of each view into the registered set, kept up to date
    for v in neighbours[seed]:
        links[v] += len(matches[(seed, v)])
    tried_at = np.full(S, -1)  # ``links`` when a view last failed: retried only once it has grown
    while True:
        candidates = [v for v in pending if links[v] > tried_at[v]]
        if not candidates:
            break
        j = max(candidates, key=lambda v: links[v])  # the view most connected to the registered ones
        n, pose, s = register(j, registered)
        if pose is None:
            tried_at[j] = links[j]
            continue
        w2c[j], scale[j], inliers[j] = pose, s, n
        registered.add(j)
        pending.discard(j)
        for v in neighbours[j]:
            links[v] += len(matches[(j, v)])
    if len(registered) < 2:  # nothing registered against the seed: it keeps its prediction like the rest
        registered, pending, seed, inliers = {0}, set(range(1, S)), 0, {}
    if seed != 0 and 0 in registered:  # back to view 0's input pose and the scale of its predicted depth
        _reanchor(w2c, scale, sorted(registered), 0, np.array(world_to_camera[0], dtype=np.float64))
    reference = 0 if 0 in registered else seed  # the registered view whose predicted pose the others follow
    refined = sorted(registered - {reference})
    K_out = np.array(K, dtype=np.float64, copy=True)
    ba_report: dict[str, Any] = {}
    samples: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if opts.bundle_adjust and len(registered) >= 2:
        order = [reference] + sorted(registered - {reference})
        tracks = _tracks(order, matches, feats, depth_kp, scale, K, w2c, opts.track_error_frac * w)
        if len(tracks) >= opts.min_inliers:
            adjust = lambda o: _bundle_adjust(order, tracks, feats, depth_kp, scale, K, w2c, (h, w), o)  # noqa: E731
            adjusted, ba_report = adjust(opts)
            if adjusted is None and opts.refine_focal:
                # few tracks leave the focal length free to run off: adjust the poses alone instead
                first = ba_report
                adjusted, ba_report = adjust(replace(opts, refine_focal=False))
                ba_report["first_try"] = first
            if adjusted is not None:
                w2c, scale, K_out, samples = adjusted
        else:
            ba_report = {"tracks": len(tracks), "rejected": f"fewer than {opts.min_inliers} tracks"}
    report = {
        "method": "sift+pnp+ba" if opts.bundle_adjust else "sift+pnp",
        "seed_view": seed,
        "reference_view": reference,
        "refined_views": refined,
        "kept_views": sorted(pending - {0}),  # view 0 is never moved, registered or not
        "inliers": {str(k): v for k, v in sorted(inliers.items()) if k != seed},
        "matched_pairs": len(matches) // 2,
        "bundle_adjustment": ba_report or None,
    }
    lattice, report["depth_correction"] = _depth_lattices(scale, samples, (h, w), opts)
    return RefineResult(w2c, K_out, scale, lattice, (h, w), refined, report)


def _depth_lattices(
    scale: np.ndarray,
    samples: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    hw: tuple[int, int],
    opts: RefineOptions,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``[S, g, g]`` log depth corrections: a smooth field fitted to each view's bundle-adjusted points
    seen under at least ``min_triangulation_deg`` (:mod:`models.depth_field`), else the view's single scale
    at every node."""
    g = opts.depth_field.grid
    log_scale = np.log(np.where(scale > 0, scale, 1.0))  # scales are positive medians; never a NaN map
    lattice = np.repeat(log_scale[:, None, None], g * g, 1).reshape(-1, g, g)
    fitted = {}
    if g > 1:
        for v, (xy, ratio, angle) in sorted(samples.items()):
            keep = angle >= opts.min_triangulation_deg
            if keep.sum() < opts.depth_field.min_samples:
                continue
            lattice[v] = fit_log_scale_field(xy[keep], np.log(ratio[keep]), hw, opts.depth_field)
            fitted[str(v)] = int(keep.sum())
    report = {"grid": g, "samples": fitted}  # views with a fitted field: how many points each
    return lattice, report


def _seed_view(num_views: int, matches: dict[tuple[int, int], np.ndarray]) -> int:
    """The view registration starts from: one end of the pair with the most matches (the end with more
    matches overall), so that a view 0 that shares few features with the others does not stop a
    well-matched group from being registered; view 0 when nothing matched."""
    if not matches:
        return 0
    total = np.zeros(num_views, np.int64)
    for (i, _), m in matches.items():
        total[i] += len(m)
    i, j = max(matches, key=lambda pair: (len(matches[pair]), -min(pair)))
    return i if total[i] >= total[j] else j


def _reanchor(w2c: np.ndarray, scale: np.ndarray, views: list[int], ref: int, ref_pose: np.ndarray) -> None:
    """In place: move ``views``' poses by one similarity so that view ``ref`` gets ``ref_pose`` and a depth
    scale of 1 (the relative poses between the views, up to the common scale, stay as they are)."""
    g = 1.0 / scale[ref]
    inv_ref = np.linalg.inv(w2c[ref])
    for v in views:
        rel = w2c[v] @ inv_ref  # camera ref -> camera v
        rel[:3, 3] *= g
        w2c[v] = rel @ ref_pose
        scale[v] *= g


def _project(points: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.stack([K[0, 0] * cam[:, 0] / z + K[0, 2], K[1, 1] * cam[:, 1] / z + K[1, 2]], 1)
    return xy, z


def _tracks(
    views: list[int],
    matches: dict[tuple[int, int], np.ndarray],
    feats: list[_Features],
    depth_kp: list[np.ndarray],
    scale: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    max_error: float,
) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
    """Multi-view tracks for bundle adjustment: matches between registered views that agree with the
    current poses (a point lifted from either end reprojects within ``max_error`` px in the other view),
    joined by union-find; tracks seen twice in one view are dropped. Each comes with its initial 3D point,
    the mean of its observations' lifted points."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(a: tuple[int, int]) -> tuple[int, int]:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    vset = set(views)
    for (i, j), m in matches.items():
        if i >= j or i not in vset or j not in vset:
            continue
        ok = np.zeros(len(m), bool)
        for a, b, ia, ib in ((i, j, 0, 1), (j, i, 1, 0)):
            z = depth_kp[a][m[:, ia]] * scale[a]
            has = np.isfinite(z)
            pts = _lift(feats[a].xy[m[has, ia]], z[has], K[a], w2c[a])
            xy, zz = _project(pts, K[b], w2c[b])
            err = np.linalg.norm(xy - feats[b].xy[m[has, ib]], axis=1)
            ok[np.flatnonzero(has)[(zz > 0) & (err < max_error)]] = True
        for ka, kb in m[ok]:
            ra, rb = find((i, int(ka))), find((j, int(kb)))
            if ra != rb:
                parent[ra] = rb
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for node in list(parent):
        groups.setdefault(find(node), []).append(node)
    tracks = []
    for obs in groups.values():
        if len(obs) < 2 or len({v for v, _ in obs}) != len(obs):
            continue
        lifted = [
            _lift(feats[v].xy[k : k + 1], np.array([depth_kp[v][k] * scale[v]]), K[v], w2c[v])[0]
            for v, k in obs
            if np.isfinite(depth_kp[v][k])
        ]
        if lifted:
            tracks.append((obs, np.mean(lifted, 0)))
    return tracks


def _bundle_adjust(
    views: list[int],
    tracks: list[tuple[list[tuple[int, int]], np.ndarray]],
    feats: list[_Features],
    depth_kp: list[np.ndarray],
    scale: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    hw: tuple[int, int],
    opts: RefineOptions,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, dict[str, Any]]:
    """Joint refinement of the registered views' poses (and focal lengths with ``refine_focal``) and the
    tracks' points with pycolmap's bundle adjuster (Ceres, Cauchy loss). The result is mapped back to view
    0's frame and to the scale of view 0's predicted depth; every view's depth scale is re-measured.

    Returns ``((world_to_camera, depth_scale, K, samples), report)`` (``samples``: per view, the pixels of
    its keypoints with an adjusted point, their ``adjusted depth / predicted depth`` in the returned frame and
    scale, and the points' triangulation angles), or ``(None, report)`` when the adjustment is not
    trusted (too few points survive, a focal length moved by more than half, a non-finite error): the
    caller then keeps the PnP poses."""
    import pycolmap

    h, w = hw
    shared = _share_camera(K[views], opts.shared_camera, opts.shared_focal_tolerance)
    rec = pycolmap.Reconstruction()
    for v in views[:1] if shared else views:
        Kc = K[views].mean(0) if shared else K[v]
        cam = pycolmap.Camera(
            model="PINHOLE", width=w, height=h, params=[Kc[0, 0], Kc[1, 1], Kc[0, 2], Kc[1, 2]],
            camera_id=v + 1,
        )  # fmt: skip
        rec.add_camera_with_trivial_rig(cam)
    for v in views:
        cam_id = views[0] + 1 if shared else v + 1
        image = pycolmap.Image(name=str(v), keypoints=feats[v].xy, camera_id=cam_id, image_id=v + 1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(w2c[v, :3]))
    for obs, xyz in tracks:
        track = pycolmap.Track([pycolmap.TrackElement(v + 1, k) for v, k in obs])
        rec.add_point3D(xyz, track)
    rec.update_point_3d_errors()
    error_before = rec.compute_mean_reprojection_error()

    options = pycolmap.BundleAdjustmentOptions()
    options.print_summary = False
    options.refine_focal_length = opts.refine_focal
    options.refine_principal_point = False
    options.refine_extra_params = False
    options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    options.ceres.loss_function_scale = 1.0
    options.ceres.solver_options.num_threads = 1
    config = pycolmap.BundleAdjustmentConfig()
    for v in views:
        config.add_image(v + 1)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    max_error = opts.track_error_frac * w
    for _ in range(2):  # solve, drop the points that still reproject badly (outlier tracks), solve again
        pycolmap.create_default_bundle_adjuster(options, config, rec).solve()
        rec.update_point_3d_errors()
        for pid in [pid for pid, p in rec.points3D.items() if not p.error <= max_error]:
            rec.delete_point3D(pid)
    error_after = rec.compute_mean_reprojection_error()
    focal_change = max(
        abs(rec.camera(c).params[0] / K[c - 1, 0, 0] - 1) for c in rec.cameras
    )  # fmt: skip
    if rec.num_points3D() < opts.min_inliers or not np.isfinite(error_after) or focal_change > 0.5:
        reason = (
            f"{rec.num_points3D()} points left" if rec.num_points3D() < opts.min_inliers
            else f"focal length moved {focal_change:.0%}" if focal_change > 0.5
            else "non-finite reprojection error"
        )  # fmt: skip
        return None, {"tracks": len(tracks), "rejected": reason}

    raw = {v: np.vstack([rec.image(v + 1).cam_from_world().matrix(), [0, 0, 0, 1]]) for v in views}
    # back to view 0's frame (the gauge may have moved it: T'_v = T_v · M with T'_0 = the input pose), then
    # (below) to the scale of view 0's predicted depth; depths in each camera do not depend on M
    to_ref = np.linalg.inv(raw[views[0]]) @ w2c[views[0]]
    poses = {v: p @ to_ref for v, p in raw.items()}
    points = {pid: p.xyz for pid, p in rec.points3D.items()}
    new_scale = scale.copy()
    ratios = {}
    samples: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # view -> (xy, z_ba / z_own, angle°)
    # only a fitted depth correction needs the points' angles (and so the samples)
    angles = _triangulation_angles(rec, raw) if opts.depth_field.grid > 1 else {}
    for v in views:
        image = rec.image(v + 1)
        kps, pids = [], []
        for k, p2d in enumerate(image.points2D):
            if p2d.has_point3D() and np.isfinite(depth_kp[v][k]):
                kps.append(k)
                pids.append(p2d.point3D_id)
        if len(kps) < 5:
            continue
        xyz = np.array([points[pid] for pid in pids])
        z_ba = xyz @ raw[v][2, :3] + raw[v][2, 3]  # depth in the adjusted camera
        ratio = z_ba / depth_kp[v][kps]
        ratios[v] = float(np.median(ratio))
        if angles:
            ahead = ratio > 0
            angle = np.array([angles[pid] for pid in pids])
            samples[v] = (feats[v].xy[kps][ahead], ratio[ahead], angle[ahead])
    global_scale = 1.0 / ratios[views[0]] if views[0] in ratios and ratios[views[0]] > 0 else 1.0
    out = np.array(w2c, copy=True)
    K_out = np.array(K, dtype=np.float64, copy=True)
    ref = poses[views[0]]  # == the input pose of view 0; the scene is scaled about view 0's camera
    for v in views:
        rel = poses[v] @ np.linalg.inv(ref)
        rel[:3, 3] *= global_scale
        out[v] = rel @ ref
        if v in ratios and ratios[v] > 0:
            new_scale[v] = ratios[v] * global_scale
        fx, fy, _, _ = rec.camera(views[0] + 1 if shared else v + 1).params
        K_out[v, 0, 0], K_out[v, 1, 1] = fx, fy
    report = {
        "tracks": len(tracks),
        "points_kept": rec.num_points3D(),
        "reprojection_error_px": [round(float(error_before), 3), round(float(error_after), 3)],
        "refine_focal": opts.refine_focal,
        "shared_camera": shared,
    }
    samples = {v: (xy, ratio * global_scale, angle) for v, (xy, ratio, angle) in samples.items()}
    return (out, new_scale, K_out, samples), report


def _triangulation_angles(rec: Any, cam_from_world: dict[int, np.ndarray]) -> dict[int, float]:
    """Per 3D point of ``rec``, the widest angle (degrees) between the rays from the cameras that see it:
    how well its depth is pinned down (two cameras a hair apart leave it free along the ray)."""
    centres = {v: -T[:3, :3].T @ T[:3, 3] for v, T in cam_from_world.items()}
    out = {}
    for pid, p in rec.points3D.items():
        rays = np.array([p.xyz - centres[el.image_id - 1] for el in p.track.elements])
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        cos = np.clip(rays @ rays.T, -1.0, 1.0)
        out[pid] = float(np.degrees(np.arccos(cos.min())))
    return out


def _share_camera(K: np.ndarray, mode: str, focal_tolerance: float = 0.10) -> bool:
    """Whether bundle adjustment uses one camera for all views: ``"auto"`` when every view's focal lengths
    are within ``focal_tolerance`` of their mean and principal points within 1 px (predicted intrinsics of
    photos from one camera, or caller-given shared ones)."""
    if mode in ("yes", "no"):
        return mode == "yes"
    if mode != "auto":
        raise ValueError(f"shared_camera must be 'auto', 'yes' or 'no', got {mode!r}")
    f = K[:, [0, 1], [0, 1]]
    c = K[:, [0, 1], [2, 2]]
    return bool(np.all(np.abs(f / f.mean(0) - 1) <= focal_tolerance) and np.all(np.abs(c - c.mean(0)) <= 1.0))

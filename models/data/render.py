"""Render a :class:`~models.data.spec.SceneSpec` from arbitrary pinhole cameras by analytic ray casting.

Per pixel: one ray through the pixel centre (``+0.5``, see ``renderer.conventions``), nearest hit among all
primitives, texture lookup in surface coordinates (so every view sees the same texel at the same surface
point), then Lambertian shading with a world-space light (a sun, or a point light indoors), hard shadows
cast by the objects and an ambient term. Nothing depends on the viewing direction except the mip level used
to filter textures, so views agree on colour up to texture filtering. Rays that escape see a sky gradient
and are marked invalid with depth 0.

The ray direction has camera-space z equal to 1, so the hit parameter *is* the z-depth, exactly.

Speed: primary rays share one origin per view, so each bounded primitive is only tested against the pixel
rectangle its bounding sphere projects to; shadow rays are culled per caster by a ray–sphere distance test.
On CPU the work runs on one intra-op thread (see :func:`render_views`); parallelism comes from processes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.data.primitives import (
    CYLINDER,
    SPHERE,
    PrimitiveTensors,
    bounding_radius,
    intersect_shape,
    local_surface,
)
from models.data.spec import SceneSpec
from models.data.textures import lod_from_footprint
from renderer.conventions import camera_centers, pixel_grid

__all__ = ["Views", "render_views"]

#: Hit points are shaded in chunks of this many to bound peak memory.
CHUNK_RAYS = 1 << 17
#: Primary hits closer than this (in depth units) are ignored.
T_MIN = 1e-4


@dataclass
class Views:
    """Rendered views, torch tensors on the render device.

    Attributes:
        rgb: ``[C, H, W, 3]`` float32 in ``[0, 1]``.
        depth: ``[C, H, W]`` float32 z-depth, 0 where invalid.
        valid: ``[C, H, W]`` bool, true where a surface was hit (false on the sky).
    """

    rgb: Tensor
    depth: Tensor
    valid: Tensor


@dataclass
class _SceneTensors:
    """Per-render constants on the render device (world shifted by ``shift`` for float32 precision)."""

    prims: PrimitiveTensors
    radius: np.ndarray  # [P] bounding radii (inf = unbounded)
    centers64: np.ndarray  # [P, 3] shifted centres, float64
    casters: list[int]
    codes: list[int]  # [P] shape codes on the host
    sizes: list[tuple[float, float, float]]  # [P] sizes on the host
    mat: dict[str, Tensor]
    light: dict[str, Tensor | None]


def _scene_tensors(spec: SceneSpec, shift: np.ndarray, dev: torch.device) -> _SceneTensors:
    f32 = {"dtype": torch.float32, "device": dev}
    prims = spec.primitives(dev)
    centers64 = np.asarray(spec.center, dtype=np.float64) - shift
    prims.center = torch.as_tensor(centers64, **f32)
    m = spec.materials
    mat = {
        "texture": torch.as_tensor(m.texture, dtype=torch.long, device=dev),
        "tile": torch.as_tensor(m.tile, **f32),
        "inv_tile": torch.as_tensor(1.0 / m.tile, **f32),
        "cos": torch.as_tensor(np.cos(m.angle), **f32),
        "sin": torch.as_tensor(np.sin(m.angle), **f32),
        "offset_u": torch.as_tensor(m.offset[:, 0], **f32),
        "offset_v": torch.as_tensor(m.offset[:, 1], **f32),
        "tint": torch.as_tensor(m.tint, **f32),
    }
    pos = (
        None
        if spec.light_position is None
        else torch.as_tensor(np.asarray(spec.light_position) - shift, **f32)
    )
    light = {
        "sun_dir": torch.as_tensor(spec.sun_direction, **f32),
        "position": pos,
        "color": torch.as_tensor(spec.sun_color, **f32),
        "ambient": torch.as_tensor(spec.ambient, **f32),
        "horizon": torch.as_tensor(spec.sky_horizon, **f32),
        "zenith": torch.as_tensor(spec.sky_zenith, **f32),
    }
    casters = [int(i) for i in np.nonzero(spec.casts_shadow)[0]]
    codes = [int(c) for c in spec.shape]
    sizes = [tuple(float(x) for x in row) for row in spec.size]
    return _SceneTensors(
        prims, bounding_radius(spec.shape, spec.size), centers64, casters, codes, sizes, mat, light
    )


def _pixel_range(lo_ratio: float, hi_ratio: float, f: float, c: float, n: int) -> tuple[int, int]:
    """Pixel indices ``[a, b)`` with centres ``i + 0.5`` in ``f·[lo, hi] + c``, plus a one-pixel margin."""
    a = math.floor(f * lo_ratio + c - 0.5) - 1
    b = math.ceil(f * hi_ratio + c - 0.5) + 2
    return max(a, 0), min(b, n)


def _screen_rect(
    center_cam: np.ndarray, radius: float, K: np.ndarray, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """Conservative pixel rectangle ``(y0, y1, x0, x1)`` covering a sphere given in camera coordinates.

    ``None`` when the sphere is entirely behind the camera or off-screen. Falls back to the whole image when
    the sphere crosses the camera plane, is unbounded, or ``K`` has skew.
    """
    full = (0, height, 0, width)
    x, y, z = center_cam
    if not math.isfinite(radius) or K[0, 1] != 0:
        return full
    if z + radius <= 0:
        return None
    if z - radius <= 1e-6:
        return full
    out = []
    for lateral, f, c, n in ((x, K[0, 0], K[0, 2], width), (y, K[1, 1], K[1, 2], height)):
        dist = math.hypot(lateral, z)
        alpha, beta = math.atan2(lateral, z), math.asin(min(radius / dist, 1.0))
        out.append(_pixel_range(math.tan(alpha - beta), math.tan(alpha + beta), f, c, n))
    (x0, x1), (y0, y1) = out
    if x1 <= x0 or y1 <= y0:
        return None
    return y0, y1, x0, x1


def _primary_hits(
    st: _SceneTensors, origin: Tensor, dirs: Tensor, w2c: np.ndarray, K: np.ndarray
) -> tuple[Tensor, Tensor]:
    """Nearest hit ``t [H, W]`` (inf: none) and primitive ``index [H, W]`` of one view, rays ``[H, W, 3]``."""
    H, W = dirs.shape[:2]
    t_img = torch.full((H, W), math.inf, dtype=dirs.dtype, device=dirs.device)
    i_img = torch.full((H, W), -1, dtype=torch.long, device=dirs.device)
    prims = st.prims
    centers_cam = st.centers64 @ w2c[:3, :3].T + w2c[:3, 3]
    for p in range(len(prims)):
        rect = _screen_rect(centers_cam[p], float(st.radius[p]), K, W, H)
        if rect is None:
            continue
        y0, y1, x0, x1 = rect
        R = prims.rotation[p]
        d_local = dirs[y0:y1, x0:x1].reshape(1, -1, 3) @ R
        o_local = ((origin - prims.center[p]) @ R).reshape(1, 1, 3)
        t = intersect_shape(st.codes[p], o_local, d_local, prims.size[p : p + 1], T_MIN)[0]
        t = t.reshape(y1 - y0, x1 - x0)
        old_t, old_i = t_img[y0:y1, x0:x1], i_img[y0:y1, x0:x1]
        closer = t < old_t
        t_img[y0:y1, x0:x1] = torch.where(closer, t, old_t)
        i_img[y0:y1, x0:x1] = torch.where(closer, torch.full_like(old_i, p), old_i)
    return t_img, i_img


def _shadowed(st: _SceneTensors, start: Tensor, to_light: Tensor, t_max: float, directional: bool) -> Tensor:
    """``[N]`` bool: does any shadow caster block the segment ``start + t·to_light``, ``0 < t < t_max``?

    Each caster is tried only on the rays that pass within its bounding sphere: for a directional light
    that is a 2-D distance test in the plane perpendicular to the light (one projection for all casters).
    """
    prims = st.prims
    N = start.shape[0]
    blocked = torch.zeros(N, dtype=torch.bool, device=start.device)
    if directional:
        L = to_light[0]
        helper = torch.tensor([1.0, 0.0, 0.0] if abs(float(L[0])) < 0.9 else [0.0, 1.0, 0.0], device=L.device)
        e1 = torch.linalg.cross(L, helper)
        e1 = e1 / e1.norm()
        basis = torch.stack([e1, torch.linalg.cross(L, e1), L], 1)  # [3, 3] columns e1, e2, L
        sa, sb, sl = (start @ basis).T.contiguous()
        ca, cb, cl = (prims.center @ basis).T.tolist()
    else:
        sx, sy, sz = start.T.contiguous()
        lx, ly, lz = to_light.T.contiguous()
        dd = lx * lx + ly * ly + lz * lz
        centers = prims.center.tolist()
    for p in st.casters:
        rho = float(st.radius[p]) * 1.01 + 1e-3
        if directional:
            da, db = sa - ca[p], sb - cb[p]
            near = (da * da + db * db <= rho * rho) & (sl < cl[p] + rho)
        else:
            ox, oy, oz = centers[p][0] - sx, centers[p][1] - sy, centers[p][2] - sz
            proj = ox * lx + oy * ly + oz * lz
            dist2 = ox * ox + oy * oy + oz * oz - proj * proj / dd
            near = (dist2 <= rho * rho) & (proj > -rho * dd.sqrt())
        cand = torch.nonzero(near & ~blocked).squeeze(1)
        if cand.numel() == 0:
            continue
        R = prims.rotation[p]
        o_local = ((start.index_select(0, cand) - prims.center[p]) @ R)[None]
        d_local = (to_light.index_select(0, cand) @ R)[None]
        t = intersect_shape(st.codes[p], o_local, d_local, prims.size[p : p + 1], 1e-5)[0]
        blocked.index_copy_(0, cand, t < t_max)
    return blocked


def _surface(st: _SceneTensors, index: Tensor, points: Tensor) -> dict[str, Tensor]:
    """World normals, materials and surface coordinates at ``N`` hit ``points [N, 3]`` on ``index [N]``.

    ``index`` must be sorted (ascending), so each primitive's hits are one contiguous slice.
    """
    N, dev = points.shape[0], points.device
    out = {
        "normal": torch.empty(N, 3, dtype=points.dtype, device=dev),
        "material": torch.empty(N, dtype=torch.long, device=dev),
        "coords": torch.empty(N, 2, dtype=points.dtype, device=dev),
        "curved": torch.empty(N, dtype=torch.bool, device=dev),
        "radius": torch.zeros(N, dtype=points.dtype, device=dev),
        "cylinder": torch.zeros(N, dtype=torch.bool, device=dev),
    }
    prims = st.prims
    counts = torch.bincount(index, minlength=len(prims)).tolist()
    start = 0
    for p, n in enumerate(counts):
        if n == 0:
            continue
        idx = slice(start, start + n)
        start += n
        code, size = st.codes[p], st.sizes[p]
        R = prims.rotation[p]
        ls = local_surface(code, (points[idx] - prims.center[p]) @ R, size)
        out["normal"][idx] = ls.normal @ R.T
        out["material"][idx] = prims.face_material[p].index_select(0, ls.face)
        out["coords"][idx] = ls.coords
        out["curved"][idx] = ls.curved
        if code in (SPHERE, CYLINDER):
            out["radius"][idx] = size[0]
        if code == CYLINDER:
            out["cylinder"][idx] = True
    return out


def _shade(
    spec: SceneSpec, st: _SceneTensors, origins: Tensor, dirs: Tensor, t: Tensor, index: Tensor, focal: Tensor
) -> Tensor:
    """Colours ``[N, 3]`` of ``N`` hits: rays ``origins, dirs [N, 3]`` meet primitive ``index`` at ``t``."""
    points = origins + t[:, None] * dirs
    s = _surface(st, index, points)
    normal, mat, curved = s["normal"], s["material"], s["curved"]
    take = lambda name: st.mat[name].index_select(0, mat)  # noqa: E731
    tile, inv_tile = take("tile"), take("inv_tile")
    off_u, off_v = take("offset_u"), take("offset_v")
    # Flat faces: rotate world-unit coordinates, divide by the tile size.
    cu, cv = s["coords"].unbind(-1)
    ca, sa = take("cos"), take("sin")
    u = (ca * cu - sa * cv) * inv_tile
    v = (sa * cu + ca * cv) * inv_tile
    tile_world = tile
    # Curved faces: an even number of tiles around (mirrored repeat has period 2 tiles, so the seam at the
    # angle ±π is continuous), tiles of about ``tile`` along the other direction.
    if curved.any():
        radius = s["radius"]
        n_v = torch.clamp(torch.round(math.pi * radius * inv_tile), min=1)
        n_u = 2 * n_v
        u = torch.where(curved, cu * n_u, u)
        v = torch.where(curved, torch.where(s["cylinder"], cv * inv_tile, cv * n_v), v)
        tile_world = torch.where(curved, 2 * math.pi * radius / n_u, tile)
    # Pixel footprint on the surface: t / (f |d|) across the ray, stretched by 1/cos at grazing angles.
    dx, dy, dz = dirs.unbind(-1)
    nx, ny, nz = normal.unbind(-1)
    dnorm = torch.sqrt(dx * dx + dy * dy + dz * dz)
    cos = ((nx * dx + ny * dy + nz * dz).abs() / dnorm).clamp_min(0.02)
    footprint = t / (focal * dnorm * cos)
    textures = spec.texture_stack(points.device)
    lod = lod_from_footprint(footprint, tile_world, textures.size)
    albedo = textures.sample(take("texture"), u + off_u, v + off_v, lod) * take("tint")
    # Lambert with a world-space light and hard shadows from the objects.
    pos = st.light["position"]
    if pos is None:
        to_light = st.light["sun_dir"].expand_as(points)
        ndotl = normal @ st.light["sun_dir"]
        t_max = math.inf
    else:
        to_light = pos - points
        lx, ly, lz = to_light.unbind(-1)
        ndotl = (nx * lx + ny * ly + nz * lz) / torch.sqrt(lx * lx + ly * ly + lz * lz).clamp_min(1e-9)
        t_max = 1.0
    ndotl = ndotl.clamp_min(0)
    lit = torch.nonzero(ndotl > 0).squeeze(1)
    if lit.numel() > 0 and st.casters:
        p_lit = points.index_select(0, lit)
        scale = p_lit.abs().amax(-1).clamp_min(1.0)
        start = p_lit + normal.index_select(0, lit) * (1e-4 * scale[:, None])
        l_lit = to_light.index_select(0, lit) if pos is not None else to_light[: lit.numel()]
        blocked = _shadowed(st, start, l_lit, t_max, pos is None)
        ndotl = ndotl.index_fill(0, lit.masked_select(blocked), 0.0)
    shade = st.light["ambient"] + st.light["color"] * ndotl[:, None]
    return (albedo * shade).clamp(0, 1)


def _camera_dirs(world_to_camera: Tensor, K: Tensor, width: int, height: int) -> Tensor:
    """World-space ray directions ``[C, H, W, 3]`` through pixel centres, scaled to camera z = 1."""
    uv = pixel_grid(height, width, dtype=K.dtype, device=K.device)[None]
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy, skew = K[:, 0, 2, None, None], K[:, 1, 2, None, None], K[:, 0, 1, None, None]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    d_cam = torch.stack([x, y, torch.ones_like(x)], -1)  # [C, H, W, 3]
    return torch.einsum("chwi,cij->chwj", d_cam, world_to_camera[:, :3, :3])  # Rᵀ d


def _as_float64(x: Tensor | np.ndarray, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


@contextlib.contextmanager
def _single_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """Run torch CPU ops on one intra-op thread for the duration, then restore the previous count.

    The renderer issues many mid-sized ops; on cores shared with other processes, OpenMP worker threads
    spin-waiting for each other made a 4-view scene 10–20× slower with 2 threads than with 1 (measured
    under load average ~7 on 2 cores), and without load they gain little. Parallelism comes from
    processes instead (``ProceduralDataset`` with ``DataLoader`` workers).
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def render_views(
    spec: SceneSpec,
    world_to_camera: Tensor | np.ndarray,
    K: Tensor | np.ndarray,
    width: int,
    height: int,
    *,
    device: torch.device | str | None = None,
) -> Views:
    """Render ``C`` views of a scene.

    Args:
        spec: the scene.
        world_to_camera: ``[C, 4, 4]`` OpenCV extrinsics.
        K: ``[C, 3, 3]`` intrinsics in pixels of ``width × height`` (pixel centres at +0.5).
        width, height: image size in pixels (≥ 1).
        device: where to render (default CPU); textures are built there once and cached on ``spec``.
            On CPU, torch runs on one intra-op thread during the call (restored afterwards; this is
            process-wide, so avoid rendering while another Python thread runs torch CPU work).

    Returns:
        :class:`Views` with ``rgb [C, H, W, 3]``, ``depth [C, H, W]``, ``valid [C, H, W]``.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    with _single_thread_on_cpu(dev):
        return _render_views(spec, world_to_camera, K, width, height, dev)


def _render_views(
    spec: SceneSpec,
    world_to_camera: Tensor | np.ndarray,
    K: Tensor | np.ndarray,
    width: int,
    height: int,
    dev: torch.device,
) -> Views:
    if int(width) < 1 or int(height) < 1:
        raise ValueError(f"width and height must be >= 1, got {width}x{height}")
    W, H = int(width), int(height)
    w2c = _as_float64(world_to_camera, "world_to_camera")
    Ks = _as_float64(K, "K")
    if w2c.ndim != 3 or w2c.shape[-2:] != (4, 4):
        raise ValueError(f"world_to_camera must be [C, 4, 4], got {list(w2c.shape)}")
    if Ks.shape != (w2c.shape[0], 3, 3):
        raise ValueError(f"K must be [C, 3, 3] with C={w2c.shape[0]}, got {list(Ks.shape)}")
    C = w2c.shape[0]
    # Rays in float64 (exact camera geometry), then float32 in a world shifted to the cameras' mean centre,
    # which keeps float32 intersections precise wherever the scene sits.
    w2c_t = torch.as_tensor(w2c, device=dev)
    centers = camera_centers(w2c_t)
    shift = centers.mean(0)
    dirs = _camera_dirs(w2c_t.float(), torch.as_tensor(Ks, dtype=torch.float32, device=dev), W, H)
    origins = (centers - shift).float()
    st = _scene_tensors(spec, shift.cpu().numpy(), dev)
    shifted = w2c.copy()
    shifted[:, :3, 3] += np.einsum(
        "cij,j->ci", w2c[:, :3, :3], shift.cpu().numpy()
    )  # same cameras, shifted world
    t = torch.empty(C, H, W, dtype=torch.float32, device=dev)
    index = torch.empty(C, H, W, dtype=torch.long, device=dev)
    for c in range(C):
        t[c], index[c] = _primary_hits(st, origins[c], dirs[c], shifted[c], Ks[c])
    valid = torch.isfinite(t)
    flat_dirs = dirs.reshape(-1, 3)
    rgb = torch.empty(C * H * W, 3, dtype=torch.float32, device=dev)
    # Sky gradient for escaping rays (depends on the direction only: it is at infinity).
    sky = torch.nonzero(~valid.reshape(-1)).squeeze(1)
    if sky.numel() > 0:
        d = flat_dirs.index_select(0, sky)
        up = (d[:, 2] / d.norm(dim=-1)).clamp(0, 1)[:, None]
        rgb.index_copy_(0, sky, st.light["horizon"] * (1 - up) + st.light["zenith"] * up)
    hits = torch.nonzero(valid.reshape(-1)).squeeze(1)
    focal = torch.as_tensor(0.5 * (Ks[:, 0, 0] + Ks[:, 1, 1]), dtype=torch.float32, device=dev)
    flat_t, flat_i = t.reshape(-1), index.reshape(-1)
    for a in range(0, hits.numel(), CHUNK_RAYS):
        h = hits[a : a + CHUNK_RAYS]
        h = h.index_select(0, torch.argsort(flat_i.index_select(0, h), stable=True))  # by primitive
        view = h // (H * W)
        colors = _shade(
            spec,
            st,
            origins.index_select(0, view),
            flat_dirs.index_select(0, h),
            flat_t.index_select(0, h),
            flat_i.index_select(0, h),
            focal.index_select(0, view),
        )
        rgb.index_copy_(0, h, colors)
    depth = torch.where(valid, t, torch.zeros_like(t))
    return Views(rgb.reshape(C, H, W, 3), depth, valid)

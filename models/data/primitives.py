"""Analytic ray casting against textured primitives: spheres, boxes, capped cylinders, discs/planes, rooms.

Every primitive lives in its own *local frame*: ``X_world = rotation @ X_local + center`` with ``rotation``
``[3, 3]`` (columns are the local axes) and ``size [3]``:

=========  =====  ==========================================================================
shape      code   ``size`` and local geometry
=========  =====  ==========================================================================
sphere     0      ``(r, r, r)``: ``|x| = r``
box        1      half extents ``(hx, hy, hz)``: ``|x_k| <= h_k``, seen from outside
cylinder   2      ``(r, r, h)``: ``x² + y² <= r², |z| <= h``, capped
plane      3      ``(R, ·, ·)``: the disc ``z = 0, x² + y² <= R²`` (``R = inf``: infinite plane), normal +z
room       4      half extents like a box, seen from *inside* (normals point inwards)
=========  =====  ==========================================================================

Faces (for per-face materials) are numbered ``2k + (sign > 0)`` for the face whose normal is ``±e_k`` in
the local frame: a box has faces 0..5; a cylinder's side is face 0 and its caps are 4 (−z) and 5 (+z); a
sphere and a plane use face 0.

Rays are ``origins + t · directions`` with directions *not* normalised: the renderer makes the camera-space
z of every direction 1, so the hit parameter ``t`` is the z-depth directly. All work is vectorised over
rays and primitives (no per-pixel Python).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BOX",
    "CYLINDER",
    "PLANE",
    "ROOM",
    "SHAPE_NAMES",
    "SPHERE",
    "PrimitiveTensors",
    "LocalSurface",
    "bounding_radius",
    "intersect",
    "intersect_shape",
    "local_surface",
]

SPHERE, BOX, CYLINDER, PLANE, ROOM = 0, 1, 2, 3, 4
SHAPE_NAMES = {SPHERE: "sphere", BOX: "box", CYLINDER: "cylinder", PLANE: "plane", ROOM: "room"}

_INF = math.inf


@dataclass
class PrimitiveTensors:
    """The geometry of ``P`` primitives as tensors on one device (see module doc for the frames).

    Attributes:
        shape: ``[P]`` long shape codes.
        center: ``[P, 3]``.
        rotation: ``[P, 3, 3]`` local → world (orthonormal columns).
        size: ``[P, 3]``.
        face_material: ``[P, 6]`` long material index per face.
    """

    shape: Tensor
    center: Tensor
    rotation: Tensor
    size: Tensor
    face_material: Tensor

    @staticmethod
    def from_numpy(
        shape: np.ndarray,
        center: np.ndarray,
        rotation: np.ndarray,
        size: np.ndarray,
        face_material: np.ndarray,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> PrimitiveTensors:
        return PrimitiveTensors(
            torch.as_tensor(np.asarray(shape), dtype=torch.long, device=device),
            torch.as_tensor(np.asarray(center), dtype=dtype, device=device),
            torch.as_tensor(np.asarray(rotation), dtype=dtype, device=device),
            torch.as_tensor(np.asarray(size), dtype=dtype, device=device),
            torch.as_tensor(np.asarray(face_material), dtype=torch.long, device=device),
        )

    def select(self, idx: Tensor) -> PrimitiveTensors:
        return PrimitiveTensors(
            self.shape[idx], self.center[idx], self.rotation[idx], self.size[idx], self.face_material[idx]
        )

    def __len__(self) -> int:
        return int(self.shape.shape[0])


def _to_local(prims: PrimitiveTensors, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Rays ``[R, 3]`` in the frames of ``G`` primitives → local origins and directions ``[G, R, 3]``."""
    o = torch.einsum("gri,gij->grj", origins[None] - prims.center[:, None], prims.rotation)
    d = torch.einsum("ri,gij->grj", dirs, prims.rotation)
    return o, d


def _nonzero(x: Tensor) -> Tensor:
    """``x`` with exact zeros nudged to a tiny positive value (slab tests divide by direction components)."""
    tiny = torch.finfo(x.dtype).tiny * 1e6
    return torch.where(x == 0, torch.full_like(x, tiny), x)


def _t_sphere(o: Tensor, d: Tensor, size: Tensor, t_min: float) -> Tensor:
    r = size[:, None, 0]
    a = (d * d).sum(-1)
    proj = (o * d).sum(-1) / a  # parameter of the point closest to the centre
    closest = o - proj[..., None] * d
    h2 = r * r - (closest * closest).sum(-1)  # stable form of the discriminant
    half = torch.sqrt(h2.clamp_min(0) / a)
    t0, t1 = -proj - half, -proj + half
    t = torch.where(t0 > t_min, t0, torch.where(t1 > t_min, t1, _INF))
    return torch.where(h2 >= 0, t, _INF)


def _slabs(o: Tensor, d: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    inv = 1.0 / _nonzero(d)
    h = half[:, None, :]
    ta, tb = (-h - o) * inv, (h - o) * inv
    t_near = torch.minimum(ta, tb).amax(-1)
    t_far = torch.maximum(ta, tb).amin(-1)
    return t_near, t_far


def _t_box(o: Tensor, d: Tensor, size: Tensor, t_min: float) -> Tensor:
    t_near, t_far = _slabs(o, d, size)
    return torch.where((t_far >= t_near) & (t_near > t_min), t_near, _INF)


def _t_room(o: Tensor, d: Tensor, size: Tensor, t_min: float) -> Tensor:
    t_near, t_far = _slabs(o, d, size)
    return torch.where((t_far >= t_near) & (t_far > t_min), t_far, _INF)


def _t_cylinder(o: Tensor, d: Tensor, size: Tensor, t_min: float) -> Tensor:
    r, h = size[:, None, 0], size[:, None, 2]
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    a = (dx * dx + dy * dy).clamp_min(1e-30)
    proj = (ox * dx + oy * dy) / a
    cx, cy = ox - proj * dx, oy - proj * dy
    h2 = r * r - (cx * cx + cy * cy)
    t_side = -proj - torch.sqrt(h2.clamp_min(0) / a)
    z_side = oz + t_side * dz
    side_ok = (h2 >= 0) & (t_side > t_min) & (z_side.abs() <= h)
    dz_safe = _nonzero(dz)
    t_cap = (-h * torch.sign(dz_safe) - oz) / dz_safe  # the cap facing the ray
    xc, yc = ox + t_cap * dx, oy + t_cap * dy
    cap_ok = (t_cap > t_min) & (xc * xc + yc * yc <= r * r)
    t = torch.where(side_ok, t_side, _INF)
    return torch.minimum(t, torch.where(cap_ok, t_cap, _INF))


def _t_plane(o: Tensor, d: Tensor, size: Tensor, t_min: float) -> Tensor:
    radius = size[:, None, 0]
    t = -o[..., 2] / _nonzero(d[..., 2])
    x, y = o[..., 0] + t * d[..., 0], o[..., 1] + t * d[..., 1]
    ok = (t > t_min) & (x * x + y * y <= radius * radius)
    return torch.where(ok, t, _INF)


_T_FUNCS = {SPHERE: _t_sphere, BOX: _t_box, CYLINDER: _t_cylinder, PLANE: _t_plane, ROOM: _t_room}


def bounding_radius(shape: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Radius ``[P]`` of a sphere around each primitive's centre that contains it (``inf`` if unbounded)."""
    shape, size = np.asarray(shape), np.asarray(size, dtype=np.float64)
    out = np.full(shape.shape, np.inf)
    out = np.where(shape == SPHERE, size[:, 0], out)
    out = np.where(shape == BOX, np.linalg.norm(size, axis=-1), out)
    return np.where(shape == CYLINDER, np.hypot(size[:, 0], size[:, 2]), out)


def intersect_shape(code: int, o_local: Tensor, d_local: Tensor, size: Tensor, t_min: float) -> Tensor:
    """Hit parameters ``[G, R]`` (``inf`` = miss) of rays given in the local frames of ``G`` primitives of
    one shape. ``o_local`` and ``d_local`` broadcast to ``[G, R, 3]`` (e.g. one origin ``[G, 1, 3]``);
    ``size`` is ``[G, 3]``."""
    return _T_FUNCS[code](o_local, d_local, size, t_min)


def intersect(
    prims: PrimitiveTensors, origins: Tensor, dirs: Tensor, *, t_min: float = 1e-4
) -> tuple[Tensor, Tensor]:
    """Nearest hit of each ray among all primitives.

    Args:
        prims: ``P`` primitives.
        origins: ``[R, 3]`` ray origins.
        dirs: ``[R, 3]`` ray directions (any length; ``t`` is in units of that length).
        t_min: hits at ``t <= t_min`` are ignored.

    Returns:
        ``t [R]`` (``inf`` where nothing is hit) and ``index [R]`` (long, the primitive hit; ``-1`` for none).
    """
    R = origins.shape[0]
    best_t = torch.full((R,), _INF, dtype=origins.dtype, device=origins.device)
    best_i = torch.full((R,), -1, dtype=torch.long, device=origins.device)
    if len(prims) == 0:
        return best_t, best_i
    for code, fn in _T_FUNCS.items():
        idx = torch.nonzero(prims.shape == code).squeeze(1)
        if idx.numel() == 0:
            continue
        group = prims.select(idx)
        o, d = _to_local(group, origins, dirs)
        t = fn(o, d, group.size, t_min)  # [G, R]
        t_g, arg = t.min(0)
        closer = t_g < best_t
        best_t = torch.where(closer, t_g, best_t)
        best_i = torch.where(closer, idx[arg], best_i)
    return best_t, best_i


@dataclass
class LocalSurface:
    """Surface attributes at ``n`` points of one primitive, in its local frame.

    Attributes:
        normal: ``[n, 3]`` unit local normal (outward; inward for rooms).
        face: ``[n]`` long face number (see module doc).
        coords: ``[n, 2]``: on flat faces, coordinates in the face plane in world units; on curved faces
            (``curved`` true), the angle around the axis as a fraction in ``[0, 1)`` and, second, the polar
            angle as a fraction in ``[0, 1]`` (sphere) or the height above the bottom in world units
            (cylinder side).
        curved: ``[n]`` bool.
    """

    normal: Tensor
    face: Tensor
    coords: Tensor
    curved: Tensor


def local_surface(code: int, p: Tensor, size: tuple[float, float, float]) -> LocalSurface:
    """Normals, faces and surface coordinates at local points ``p [n, 3]`` on a primitive of shape ``code``
    and ``size`` (points are assumed to lie on its surface)."""
    n = p.shape[0]
    x, y, z = p.unbind(-1)
    zeros_l = torch.zeros(n, dtype=torch.long, device=p.device)
    if code in (BOX, ROOM):
        half = torch.tensor(size, dtype=p.dtype, device=p.device)
        axis = (p.abs() / half).argmax(-1)
        coord = torch.gather(p, 1, axis[:, None])[:, 0]
        positive = coord >= 0
        sign = torch.where(positive, 1.0, -1.0).to(p.dtype)
        if code == ROOM:
            sign = -sign
        normal = torch.zeros_like(p)
        normal.scatter_(1, axis[:, None], sign[:, None])
        shifted = p + half
        ca = torch.gather(shifted, 1, ((axis + 1) % 3)[:, None])[:, 0]
        cb = torch.gather(shifted, 1, ((axis + 2) % 3)[:, None])[:, 0]
        return LocalSurface(normal, 2 * axis + positive.long(), torch.stack([ca, cb], -1), zeros_l.bool())
    if code == SPHERE:
        r = size[0]
        phi = torch.atan2(y, x)
        theta = torch.acos((z / r).clamp(-1, 1))
        coords = torch.stack([phi * (0.5 / math.pi) + 0.5, theta * (1 / math.pi)], -1)
        return LocalSurface(p / r, zeros_l, coords, ~zeros_l.bool())
    if code == CYLINDER:
        r, h = size[0], size[2]
        rho = torch.hypot(x, y)
        on_cap = (z.abs() - h).abs() < (rho - r).abs()
        top = z >= 0
        inv_rho = 1.0 / rho.clamp_min(1e-12)
        side_n = torch.stack([x * inv_rho, y * inv_rho, torch.zeros_like(x)], -1)
        cap_n = torch.stack(
            [torch.zeros_like(x), torch.zeros_like(x), torch.where(top, 1.0, -1.0).to(p.dtype)], -1
        )
        normal = torch.where(on_cap[:, None], cap_n, side_n)
        face = torch.where(on_cap, 4 + top.long(), zeros_l)
        phi = torch.atan2(y, x)
        side_c = torch.stack([phi * (0.5 / math.pi) + 0.5, z + h], -1)
        coords = torch.where(on_cap[:, None], p[:, :2], side_c)
        return LocalSurface(normal, face, coords, ~on_cap)
    if code == PLANE:
        normal = torch.zeros_like(p)
        normal[:, 2] = 1.0
        return LocalSurface(normal, zeros_l, p[:, :2], zeros_l.bool())
    raise ValueError(f"unknown shape code {code}")

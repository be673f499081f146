"""Camera paths for novel-view videos: orbit, LLFF-style spiral, and interpolation through the inputs.

All functions take the input cameras (``world_to_camera [S, 4, 4]``, ``K [S, 3, 3]``) and return
``(world_to_camera [num, 4, 4], K [num, 3, 3])`` in float64. "Up" is the average of the input cameras' up
directions (OpenCV: ``-y`` of each camera), so paths stay level with the capture. Intrinsics: without
``out_hw`` the returned ``K`` is in the pixels of the inputs (first camera for orbit and spiral); with
``out_hw = (H, W)`` and the inputs' ``image_hw`` it keeps the inputs' vertical field of view, square
pixels and a centred principal point for an ``H × W`` output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from renderer.conventions import camera_centers, interpolate_poses, look_at

HW = tuple[int, int]


def _check(world_to_camera: Tensor, K: Tensor, num: int) -> tuple[Tensor, Tensor]:
    w2c = torch.as_tensor(world_to_camera, dtype=torch.float64)
    Ks = torch.as_tensor(K, dtype=torch.float64)
    if w2c.dim() != 3 or w2c.shape[1:] != (4, 4) or w2c.shape[0] < 1:
        raise ValueError(f"world_to_camera must have shape [S, 4, 4] with S >= 1, got {list(w2c.shape)}")
    if Ks.shape != (w2c.shape[0], 3, 3):
        raise ValueError(f"K must have shape [{w2c.shape[0]}, 3, 3], got {list(Ks.shape)}")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    return w2c, Ks


def world_up(world_to_camera: Tensor) -> Tensor:
    """Unit world vector that the input cameras show as "up" on average (``-y`` camera axis)."""
    up = -world_to_camera[:, 1, :3].mean(0)
    return up / up.norm().clamp_min(1e-12)


def scene_center(world_to_camera: Tensor) -> Tensor:
    """``[3]`` point closest (least squares) to all optical axes: what an inward-facing capture looks at.

    For (nearly) parallel axes, e.g. a forward-facing capture or a single camera, it falls back to the
    mean centre pushed forward by the cameras' spread (at least one unit).
    """
    centres = camera_centers(world_to_camera)
    dirs = world_to_camera[:, 2, :3]  # optical axes in world coordinates
    eye = torch.eye(3, dtype=torch.float64)
    P = eye[None] - dirs[:, :, None] * dirs[:, None, :]
    A, b = P.sum(0), (P @ centres[:, :, None]).sum(0)[:, 0]
    evals = torch.linalg.eigvalsh(A)
    if evals[0] > 1e-2 * evals[-1]:
        point = torch.linalg.solve(A, b)
        mean_dir = dirs.mean(0)
        if torch.dot(point - centres.mean(0), mean_dir) > 0:  # in front of the cameras
            return point
    spread = float((centres - centres.mean(0)).norm(dim=1).max()) if len(centres) > 1 else 0.0
    forward = dirs.mean(0)
    return centres.mean(0) + forward / forward.norm().clamp_min(1e-12) * max(3.0 * spread, 1.0)


def _output_K(
    Ks: Tensor, image_hw: Sequence[HW] | None, out_hw: HW | None, weights: Tensor | None = None
) -> Tensor:
    """Intrinsics for the output; ``weights [num, S]`` mixes inputs per output frame (else the first)."""
    num = 1 if weights is None else weights.shape[0]
    if weights is None:
        weights = torch.zeros(1, Ks.shape[0], dtype=torch.float64)
        weights[0, 0] = 1.0
    if out_hw is None:
        return torch.einsum("ns,sij->nij", weights, Ks)
    if image_hw is None or len(image_hw) != Ks.shape[0]:
        raise ValueError("image_hw (one (H, W) per input camera) is needed to convert K to out_hw")
    H, W = out_hw
    fov = torch.tensor(
        [float(k[1, 1]) / hw[0] for k, hw in zip(Ks, image_hw, strict=True)], dtype=torch.float64
    )
    f = (weights @ fov) * H
    out = torch.zeros(num, 3, 3, dtype=torch.float64)
    out[:, 0, 0], out[:, 1, 1] = f, f
    out[:, 0, 2], out[:, 1, 2], out[:, 2, 2] = W / 2, H / 2, 1.0
    return out


def orbit_path(
    world_to_camera: Tensor,
    K: Tensor,
    num: int,
    *,
    center: Tensor | None = None,
    radius: float | None = None,
    turns: float = 1.0,
    image_hw: Sequence[HW] | None = None,
    out_hw: HW | None = None,
) -> tuple[Tensor, Tensor]:
    """A level circle around the scene centre at the inputs' mean height and distance, starting at the first
    camera's bearing; every frame looks at the centre."""
    w2c, Ks = _check(world_to_camera, K, num)
    c = scene_center(w2c) if center is None else torch.as_tensor(center, dtype=torch.float64)
    up = world_up(w2c)
    offsets = camera_centers(w2c) - c
    heights = offsets @ up
    flat = offsets - heights[:, None] * up
    r = float(flat.norm(dim=1).mean()) if radius is None else float(radius)
    if r <= 0:
        raise ValueError(f"radius must be > 0, got {r}")
    e1 = (
        flat[0]
        if flat[0].norm() > 1e-9
        else torch.linalg.cross(up, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    )
    if e1.norm() < 1e-9:
        e1 = torch.linalg.cross(up, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(up, e1)
    h = float(heights.mean())
    poses = []
    for k in range(num):
        theta = 2 * math.pi * turns * k / num
        eye = c + h * up + r * (math.cos(theta) * e1 + math.sin(theta) * e2)
        poses.append(look_at(eye, c, up))
    return torch.stack(poses), _output_K(Ks, image_hw, out_hw).expand(num, 3, 3).clone()


def spiral_path(
    world_to_camera: Tensor,
    K: Tensor,
    num: int,
    *,
    focus_distance: float | None = None,
    rotations: float = 2.0,
    z_rate: float = 0.5,
    radius_scale: float = 1.0,
    image_hw: Sequence[HW] | None = None,
    out_hw: HW | None = None,
) -> tuple[Tensor, Tensor]:
    """LLFF's spiral: around the average camera, with radii from the 90th percentile of the inputs' offsets
    along its axes, always looking at a focus point ``focus_distance`` ahead (default: the scene centre's
    depth)."""
    w2c, Ks = _check(world_to_camera, K, num)
    centres = camera_centers(w2c)
    mean_pos = centres.mean(0)
    forward = w2c[:, 2, :3].mean(0)
    forward = forward / forward.norm().clamp_min(1e-12)
    up = world_up(w2c)
    right = torch.linalg.cross(forward, -up)  # OpenCV: x = y × z with y = -up
    right = right / right.norm().clamp_min(1e-12)
    down = torch.linalg.cross(forward, right)
    axes = torch.stack([right, down, forward])  # rows: average camera's x, y, z in world
    if focus_distance is None:
        focus_distance = float(torch.dot(scene_center(w2c) - mean_pos, forward))
    if not focus_distance > 0:
        raise ValueError(f"focus_distance must be > 0, got {focus_distance}")
    local = (centres - mean_pos) @ axes.T
    rads = torch.quantile(local.abs(), 0.9, dim=0) * radius_scale
    if float(rads.max()) < 1e-9:
        rads = torch.full((3,), 0.1 * focus_distance, dtype=torch.float64)
    focus = mean_pos + focus_distance * forward
    poses = []
    for k in range(num):
        theta = 2 * math.pi * rotations * k / num
        offset = rads * torch.tensor(
            [math.cos(theta), math.sin(theta), math.sin(theta * z_rate)], dtype=torch.float64
        )
        poses.append(look_at(mean_pos + offset @ axes, focus, up))
    return torch.stack(poses), _output_K(Ks, image_hw, out_hw).expand(num, 3, 3).clone()


def input_path(
    world_to_camera: Tensor,
    K: Tensor,
    num: int,
    *,
    closed: bool = False,
    image_hw: Sequence[HW] | None = None,
    out_hw: HW | None = None,
) -> tuple[Tensor, Tensor]:
    """Smooth interpolation through the input cameras in order (SLERP rotations, linear centres and
    intrinsics); with ``closed`` it returns to the first camera."""
    w2c, Ks = _check(world_to_camera, K, num)
    poses = interpolate_poses(w2c, num, closed=closed)
    S = w2c.shape[0]
    weights = torch.zeros(num, S, dtype=torch.float64)
    if S == 1:
        weights[:, 0] = 1.0
    else:
        segs = S if closed else S - 1
        ts = torch.linspace(0, segs, num + 1 if closed else num, dtype=torch.float64)[:num]
        idx = ts.floor().long().clamp(max=segs - 1)
        frac = ts - idx.to(ts)
        rows = torch.arange(num)
        weights[rows, idx % S] += 1 - frac
        weights[rows, (idx + 1) % S] += frac
    return poses, _output_K(Ks, image_hw, out_hw, weights)

"""Camera conventions used everywhere in onepass, and the converters between them.

One place states every convention; all other modules import from here and convert at their boundary.

* **Axes**: OpenCV camera axes, x right, y down, z forward (gsplat, COLMAP and VGGT agree).
* **Extrinsics**: ``world_to_camera`` 4×4 matrices, ``X_cam = R @ X_world + t``. VGGT's 3×4 extrinsics are the
  top three rows of the same matrix.
* **Intrinsics**: ``K`` 3×3 in pixels of a stated image size ``(H, W)``.
* **Pixel centres**: continuous image coordinates have their origin at the *top-left corner* of the top-left
  pixel, so pixel ``(col i, row j)`` has its centre at ``(i + 0.5, j + 0.5)``. This is gsplat's and COLMAP's
  convention. VGGT unprojects at integer indices with ``cx = W/2``; we convert at the model boundary with
  :func:`vggt_intrinsics_to_opencv` (``+0.5`` on the principal point) and its inverse.
* **Quaternions**: ``wxyz`` (scalar first) in files and in the renderer; VGGT's pose encoding is ``xyzw``.
* **Depth**: z-depth along the optical axis (not ray length).

Shape letters: ``N`` points, ``S`` views; leading ``...`` are batch dims. All functions take torch tensors
and work for float32 and float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "OPENCV_TO_OPENGL",
    "camera_centers",
    "crop_intrinsics",
    "extrinsics_intrinsics_to_pose_encoding",
    "interpolate_poses",
    "fov_to_focal",
    "invert_rigid",
    "look_at",
    "opencv_to_opengl_camera_to_world",
    "pixel_grid",
    "pose_encoding_to_extrinsics_intrinsics",
    "project_points",
    "quat_to_rotmat",
    "quat_wxyz_to_xyzw",
    "quat_xyzw_to_wxyz",
    "rotmat_to_quat",
    "scale_intrinsics",
    "slerp",
    "to_homogeneous_extrinsics",
    "transform_points",
    "umeyama_sim3",
    "unproject_depth",
    "unproject_pixels",
    "vggt_intrinsics_to_opencv",
    "opencv_intrinsics_to_vggt",
]

#: Flips y and z: OpenCV camera axes (x right, y down, z forward) ⇄ OpenGL/three.js/glTF (x right, y up,
#: z backward). Its own inverse.
OPENCV_TO_OPENGL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


# --------------------------------------------------------------------------------------------- quaternions
def quat_xyzw_to_wxyz(q: Tensor) -> Tensor:
    """``[..., 4]`` scalar-last (VGGT) → ``[..., 4]`` scalar-first (files, gsplat)."""
    return q.roll(1, dims=-1)


def quat_wxyz_to_xyzw(q: Tensor) -> Tensor:
    """``[..., 4]`` scalar-first → ``[..., 4]`` scalar-last."""
    return q.roll(-1, dims=-1)


def quat_to_rotmat(q_wxyz: Tensor) -> Tensor:
    """Rotation matrices from wxyz quaternions that need not be unit (``[..., 4]`` → ``[..., 3, 3]``).

    Uses ``2/|q|²`` so an unnormalised quaternion gives the rotation of its direction. A zero quaternion
    yields the identity (``|q|²`` is clamped), never NaN.
    """
    w, x, y, z = q_wxyz.unbind(-1)
    two_s = 2.0 / (q_wxyz * q_wxyz).sum(-1).clamp_min(1e-24)
    rows = [
        1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
        two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
        two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, -1).reshape(q_wxyz.shape[:-1] + (3, 3))


def rotmat_to_quat(R: Tensor) -> Tensor:
    """wxyz unit quaternions with ``w ≥ 0`` from rotation matrices (``[..., 3, 3]`` → ``[..., 4]``).

    Picks, per matrix, the best-conditioned of the four classic formulas (largest of w, x, y, z), so it is
    stable near 180° rotations.
    """
    m = R
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * component^2 for w, x, y, z
    sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    ).clamp_min(0)
    r = torch.sqrt(sq)  # 2 * |component|
    # Candidate quaternions, each computed from one large component (row k uses component k).
    cands = torch.stack(
        [
            torch.stack([r[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, r[..., 1] ** 2, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, r[..., 2] ** 2, m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, r[..., 3] ** 2], -1),
        ],
        -2,
    )
    cands = cands / (2.0 * r.clamp_min(1e-12))[..., None]
    best = sq.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(q[..., :1] < 0, -q, q)


def slerp(q0: Tensor, q1: Tensor, t: Tensor | float) -> Tensor:
    """Spherical linear interpolation of wxyz unit quaternions along the shorter arc (``[..., 4]``)."""
    t = torch.as_tensor(t, dtype=q0.dtype, device=q0.device)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    t = t[..., None] if t.dim() > 0 else t
    small = sin_theta < 1e-6
    w0 = torch.where(small, 1 - t, torch.sin((1 - t) * theta) / sin_theta.clamp_min(1e-12))
    w1 = torch.where(small, t, torch.sin(t * theta) / sin_theta.clamp_min(1e-12))
    q = w0 * q0 + w1 * q1
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# ------------------------------------------------------------------------------------------ rigid motion
def to_homogeneous_extrinsics(extrinsics: Tensor) -> Tensor:
    """``[..., 3, 4]`` or ``[..., 4, 4]`` → ``[..., 4, 4]`` with last row ``[0, 0, 0, 1]``."""
    if extrinsics.shape[-2:] == (4, 4):
        return extrinsics
    if extrinsics.shape[-2:] != (3, 4):
        raise ValueError(f"extrinsics must be [..., 3, 4] or [..., 4, 4], got {tuple(extrinsics.shape)}")
    bottom = torch.zeros(extrinsics.shape[:-2] + (1, 4), dtype=extrinsics.dtype, device=extrinsics.device)
    bottom[..., 0, 3] = 1
    return torch.cat([extrinsics, bottom], -2)


def invert_rigid(T: Tensor) -> Tensor:
    """Inverse of rigid 4×4 transforms ``[..., 4, 4]`` (``Rᵀ, -Rᵀt``), exact for rotations."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1
    return out


def camera_centers(world_to_camera: Tensor) -> Tensor:
    """Camera centres in world coordinates, ``[..., 4, 4]`` → ``[..., 3]`` (``-Rᵀ t``)."""
    R, t = world_to_camera[..., :3, :3], world_to_camera[..., :3, 3]
    return -(R.transpose(-1, -2) @ t[..., None])[..., 0]


def transform_points(T: Tensor, points: Tensor) -> Tensor:
    """Apply 4×4 transforms ``[..., 4, 4]`` to points ``[..., N, 3]`` → ``[..., N, 3]``."""
    return points @ T[..., :3, :3].transpose(-1, -2) + T[..., None, :3, 3]


def opencv_to_opengl_camera_to_world(world_to_camera: Tensor) -> Tensor:
    """OpenCV world→camera ``[..., 4, 4]`` → OpenGL/three.js camera→world ``[..., 4, 4]`` (y, z flipped)."""
    flip = OPENCV_TO_OPENGL.to(world_to_camera)
    return invert_rigid(world_to_camera) @ flip


# ----------------------------------------------------------------------------------- pinhole projection
def pixel_grid(height: int, width: int, *, dtype=torch.float32, device=None) -> Tensor:
    """Pixel-centre coordinates ``[H, W, 2]`` as (x, y) = (col + 0.5, row + 0.5)."""
    ys = torch.arange(height, dtype=dtype, device=device) + 0.5
    xs = torch.arange(width, dtype=dtype, device=device) + 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], -1)


def project_points(points_world: Tensor, world_to_camera: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points to continuous pixel coordinates.

    Args:
        points_world: ``[..., N, 3]``.
        world_to_camera: ``[..., 4, 4]``.
        K: ``[..., 3, 3]``.

    Returns:
        ``uv [..., N, 2]`` (pixel centres at +0.5, see module doc) and ``depth [..., N]`` (z in camera).
        Points with ``depth <= 0`` get non-finite or meaningless ``uv``; callers mask by depth.
    """
    cam = transform_points(world_to_camera, points_world)
    z = cam[..., 2]
    xy = cam[..., :2] / z[..., None]
    fx, fy = K[..., None, 0, 0], K[..., None, 1, 1]
    cx, cy = K[..., None, 0, 2], K[..., None, 1, 2]
    skew = K[..., None, 0, 1]
    u = fx * xy[..., 0] + skew * xy[..., 1] + cx
    v = fy * xy[..., 1] + cy
    return torch.stack([u, v], -1), z


def unproject_depth(depth: Tensor, K: Tensor, world_to_camera: Tensor) -> Tensor:
    """Lift z-depth maps to world points at pixel centres.

    Args:
        depth: ``[..., H, W]`` z-depth.
        K: ``[..., 3, 3]`` intrinsics for that ``H×W``.
        world_to_camera: ``[..., 4, 4]``.

    Returns:
        ``[..., H, W, 3]`` world points (``X_world = Rᵀ (z K⁻¹ [u, v, 1] - t)``).
    """
    H, W = depth.shape[-2:]
    uv = pixel_grid(H, W, dtype=depth.dtype, device=depth.device).reshape(H * W, 2)
    flat = depth.reshape(depth.shape[:-2] + (H * W,))
    return unproject_pixels(uv, flat, K, world_to_camera).reshape(depth.shape + (3,))


def unproject_pixels(uv: Tensor, depth: Tensor, K: Tensor, world_to_camera: Tensor) -> Tensor:
    """Lift pixels of one camera (or a batch) to world points.

    Args:
        uv: ``[..., N, 2]`` continuous pixel coordinates (pixel centres at +0.5).
        depth: ``[..., N]`` z-depth.
        K: ``[..., 3, 3]``; world_to_camera: ``[..., 4, 4]``.

    Returns:
        ``[..., N, 3]`` world points (``X_world = Rᵀ (z K⁻¹ [u, v, 1] - t)``); :func:`unproject_depth` is
        this on every pixel of a map.
    """
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    skew = K[..., 0, 1, None]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    cam = torch.stack([x * depth, y * depth, depth], -1)
    return transform_points(invert_rigid(world_to_camera), cam)


def scale_intrinsics(K: Tensor, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> Tensor:
    """Intrinsics for an image resized from ``src_hw`` to ``dst_hw`` (corner-origin pixels, so exact)."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    out = K.clone()
    out[..., 0, :] = out[..., 0, :] * sx
    out[..., 1, :] = out[..., 1, :] * sy
    return out


def crop_intrinsics(K: Tensor, top: float, left: float) -> Tensor:
    """Intrinsics after cropping ``top`` rows and ``left`` columns (negative = padding)."""
    out = K.clone()
    out[..., 0, 2] = out[..., 0, 2] - left
    out[..., 1, 2] = out[..., 1, 2] - top
    return out


def vggt_intrinsics_to_opencv(K_vggt: Tensor) -> Tensor:
    """VGGT's integer-index intrinsics → ours (pixel centres at +0.5): principal point + 0.5."""
    return crop_intrinsics(K_vggt, -0.5, -0.5)


def opencv_intrinsics_to_vggt(K: Tensor) -> Tensor:
    """Ours → VGGT's integer-index convention: principal point - 0.5."""
    return crop_intrinsics(K, 0.5, 0.5)


# ----------------------------------------------------------------------------------- VGGT pose encoding
def extrinsics_intrinsics_to_pose_encoding(
    world_to_camera: Tensor, K: Tensor, image_hw: tuple[int, int]
) -> Tensor:
    """VGGT's ``absT_quaR_FoV`` 9-d encoding ``[t(3), q_xyzw(4), fov_h, fov_w]``.

    Args:
        world_to_camera: ``[..., 4, 4]`` or ``[..., 3, 4]``.
        K: ``[..., 3, 3]``; only the focal lengths are encoded (VGGT assumes a centred principal point).
        image_hw: ``(H, W)`` the intrinsics refer to.

    Returns:
        ``[..., 9]``; the quaternion is standardised to ``q_w ≥ 0``.
    """
    H, W = image_hw
    q = quat_wxyz_to_xyzw(rotmat_to_quat(world_to_camera[..., :3, :3]))
    t = world_to_camera[..., :3, 3]
    fov_h = 2 * torch.atan((H / 2) / K[..., 1, 1])
    fov_w = 2 * torch.atan((W / 2) / K[..., 0, 0])
    return torch.cat([t, q, fov_h[..., None], fov_w[..., None]], -1)


def pose_encoding_to_extrinsics_intrinsics(
    pose_encoding: Tensor, image_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`extrinsics_intrinsics_to_pose_encoding`.

    Returns ``world_to_camera [..., 4, 4]`` and ``K [..., 3, 3]`` with the principal point at ``(W/2, H/2)``
    as VGGT writes it, i.e. in VGGT's integer-index convention: for a network prediction, convert with
    :func:`vggt_intrinsics_to_opencv` to get ours.
    """
    if pose_encoding.shape[-1] != 9:
        raise ValueError(f"pose_encoding must be [..., 9], got {tuple(pose_encoding.shape)}")
    H, W = image_hw
    t, q_xyzw, fov_h, fov_w = pose_encoding.split([3, 4, 1, 1], -1)
    R = quat_to_rotmat(quat_xyzw_to_wxyz(q_xyzw))
    w2c = torch.zeros(
        pose_encoding.shape[:-1] + (4, 4), dtype=pose_encoding.dtype, device=pose_encoding.device
    )
    w2c[..., :3, :3] = R
    w2c[..., :3, 3] = t
    w2c[..., 3, 3] = 1
    K = torch.zeros(pose_encoding.shape[:-1] + (3, 3), dtype=pose_encoding.dtype, device=pose_encoding.device)
    K[..., 0, 0] = (W / 2) / torch.tan(fov_w[..., 0] / 2)
    K[..., 1, 1] = (H / 2) / torch.tan(fov_h[..., 0] / 2)
    K[..., 0, 2] = W / 2
    K[..., 1, 2] = H / 2
    K[..., 2, 2] = 1
    return w2c, K


# ------------------------------------------------------------------------------------------- alignment
def umeyama_sim3(
    src: Tensor, dst: Tensor, weights: Tensor | None = None, *, with_scale: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares similarity ``dst ≈ s · R @ src + t`` (Umeyama 1991).

    Args:
        src, dst: ``[N, 3]`` corresponding points (N ≥ 3, not all collinear for a unique R).
        weights: optional ``[N]`` non-negative weights.
        with_scale: fit ``s`` (Sim(3)); otherwise ``s = 1`` (SE(3)).

    Returns:
        ``s`` (scalar tensor), ``R [3, 3]`` (proper rotation, det = +1), ``t [3]``.
    """
    if src.shape != dst.shape or src.shape[-1] != 3 or src.dim() != 2:
        raise ValueError(f"src and dst must both be [N, 3], got {tuple(src.shape)} and {tuple(dst.shape)}")
    if src.shape[0] < 3:
        raise ValueError(f"umeyama_sim3 needs at least 3 points, got {src.shape[0]}")
    w = torch.ones(src.shape[0], dtype=src.dtype, device=src.device) if weights is None else weights.to(src)
    w = w / w.sum().clamp_min(1e-12)
    mu_s = (w[:, None] * src).sum(0)
    mu_d = (w[:, None] * dst).sum(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = (w[:, None] * xd).T @ xs
    U, D, Vt = torch.linalg.svd(cov)
    sign = torch.ones(3, dtype=src.dtype, device=src.device)
    if torch.det(U) * torch.det(Vt) < 0:
        sign[2] = -1
    R = U @ torch.diag(sign) @ Vt
    var_s = (w * (xs * xs).sum(-1)).sum()
    s = (D * sign).sum() / var_s.clamp_min(1e-24) if with_scale else torch.ones((), dtype=src.dtype)
    t = mu_d - s * (R @ mu_s)
    return s, R, t


# ---------------------------------------------------------------------------------------- camera paths
def interpolate_poses(world_to_camera: Tensor, num: int, *, closed: bool = False) -> Tensor:
    """Smoothly interpolate ``num`` poses through key poses ``[M, 4, 4]`` → ``[num, 4, 4]``.

    Rotations by SLERP, camera centres linearly, both piecewise between consecutive keys; with ``closed``
    the path returns to the first key. ``num`` samples are spread uniformly in the key parameter.
    """
    M = world_to_camera.shape[0]
    if M < 1 or num < 1:
        raise ValueError(f"need at least one key pose and num >= 1, got M={M}, num={num}")
    if M == 1:
        return world_to_camera.expand(num, 4, 4).clone()
    keys = torch.cat([world_to_camera, world_to_camera[:1]], 0) if closed else world_to_camera
    c2w = invert_rigid(keys)
    quats = rotmat_to_quat(c2w[:, :3, :3])
    centers = c2w[:, :3, 3]
    segs = keys.shape[0] - 1
    ts = torch.linspace(0, segs, num + 1 if closed else num, dtype=keys.dtype)[:num]
    idx = ts.floor().long().clamp(max=segs - 1)
    frac = ts - idx.to(ts)
    q = slerp(quats[idx], quats[idx + 1], frac)
    c = centers[idx] + frac[:, None] * (centers[idx + 1] - centers[idx])
    out = torch.zeros(num, 4, 4, dtype=keys.dtype)
    out[:, :3, :3] = quat_to_rotmat(q)
    out[:, :3, 3] = c
    out[:, 3, 3] = 1
    return invert_rigid(out)


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World→camera ``[4, 4]`` for an OpenCV camera at ``eye`` looking at ``target``.

    ``up`` is the world direction that should appear *up* in the image (default ``+z``). Image y points
    down, so the camera's y axis is ``-up`` made orthogonal to the viewing direction.
    """
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype) if up is None else up.to(eye)
    z = target - eye
    z = z / z.norm().clamp_min(1e-12)
    x = torch.linalg.cross(z, up)
    if x.norm() < 1e-8:  # looking along up: pick any perpendicular
        alt = torch.tensor([1.0, 0.0, 0.0], dtype=eye.dtype)
        x = torch.linalg.cross(z, alt)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    c2w = torch.eye(4, dtype=eye.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return invert_rigid(c2w)


def fov_to_focal(fov_rad: float, size_px: int) -> float:
    """Focal length in pixels for a field of view across ``size_px`` pixels."""
    return (size_px / 2) / math.tan(fov_rad / 2)

"""Round trips and closed-form checks for renderer.conventions, property-based where it matters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer import conventions as cv

SETTINGS = settings(max_examples=60, deadline=None)
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def unit_quats(seed: int, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def random_pose(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = cv.quat_to_rotmat(unit_quats(seed)[0])
    T[:3, 3] = torch.randn(3, generator=g, dtype=torch.float64) * 3
    return T


def pinhole(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    return torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float64)


@SETTINGS
@given(st.integers(0, 2**31 - 1))
def test_quat_rotmat_round_trip(seed: int) -> None:
    q = unit_quats(seed, 8)
    R = cv.quat_to_rotmat(q)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(8, 3, 3))
    torch.testing.assert_close(torch.det(R), torch.ones(8, dtype=torch.float64))
    q_back = cv.rotmat_to_quat(R)
    assert (q_back[:, 0] >= 0).all()
    # q and -q are the same rotation: compare up to sign.
    sign = torch.sign((q_back * q).sum(-1, keepdim=True))
    torch.testing.assert_close(q_back * sign, q, atol=1e-9, rtol=0)


def test_rotmat_to_quat_near_180_degrees() -> None:
    for axis in torch.eye(3, dtype=torch.float64):
        angle = math.pi - 1e-9
        q = torch.cat([torch.tensor([math.cos(angle / 2)]), axis * math.sin(angle / 2)])
        R = cv.quat_to_rotmat(q)
        torch.testing.assert_close(cv.quat_to_rotmat(cv.rotmat_to_quat(R)), R, atol=1e-9, rtol=0)


def test_quat_to_rotmat_unnormalised_and_zero() -> None:
    q = unit_quats(3)[0]
    torch.testing.assert_close(cv.quat_to_rotmat(q * 7.5), cv.quat_to_rotmat(q))
    assert torch.isfinite(cv.quat_to_rotmat(torch.zeros(4))).all()


def test_quat_order_conversions_are_inverse() -> None:
    q = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert cv.quat_wxyz_to_xyzw(q).tolist() == [2.0, 3.0, 4.0, 1.0]
    assert cv.quat_xyzw_to_wxyz(cv.quat_wxyz_to_xyzw(q)).tolist() == q.tolist()


@SETTINGS
@given(st.integers(0, 2**31 - 1))
def test_invert_rigid_and_camera_centre(seed: int) -> None:
    T = random_pose(seed)
    torch.testing.assert_close(cv.invert_rigid(T) @ T, torch.eye(4, dtype=torch.float64))
    c = cv.camera_centers(T)
    # The camera centre maps to the camera origin.
    torch.testing.assert_close(cv.transform_points(T, c[None])[0], torch.zeros(3, dtype=torch.float64))


@SETTINGS
@given(
    st.integers(0, 2**31 - 1),
    st.integers(4, 40),
    st.integers(4, 40),
    st.floats(20, 500),
    st.floats(0.5, 2.0),
)
def test_unproject_then_project_returns_pixel_centres(
    seed: int, H: int, W: int, f: float, aspect: float
) -> None:
    T = random_pose(seed)
    K = pinhole(f, f * aspect, W / 2 + 0.3, H / 2 - 0.7)
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(H, W, generator=g, dtype=torch.float64) * 10 + 0.5
    pts = cv.unproject_depth(depth, K, T)
    uv, z = cv.project_points(pts.reshape(-1, 3), T, K)
    torch.testing.assert_close(z, depth.reshape(-1))
    torch.testing.assert_close(uv, cv.pixel_grid(H, W, dtype=torch.float64).reshape(-1, 2))


def test_pixel_centre_convention() -> None:
    # A point on the optical axis lands on the principal point; pixel (0, 0) has its centre at (0.5, 0.5).
    K = pinhole(100, 100, 2.0, 2.0)
    uv, _ = cv.project_points(torch.tensor([[0.0, 0.0, 5.0]], dtype=torch.float64), torch.eye(4).double(), K)
    assert uv.tolist() == [[2.0, 2.0]]
    assert cv.pixel_grid(2, 3)[0, 0].tolist() == [0.5, 0.5]
    assert cv.pixel_grid(2, 3)[1, 2].tolist() == [2.5, 1.5]


@SETTINGS
@given(st.integers(1, 2000), st.integers(1, 2000), st.integers(1, 2000), st.integers(1, 2000))
def test_scale_intrinsics_maps_corners_and_centres(h0: int, w0: int, h1: int, w1: int) -> None:
    K = pinhole(300.0, 280.0, w0 / 2, h0 / 2)
    K2 = cv.scale_intrinsics(K, (h0, w0), (h1, w1))
    # The image corners and centre keep their relative position.
    torch.testing.assert_close(K2[0, 2], torch.tensor(w1 / 2, dtype=torch.float64))
    torch.testing.assert_close(K2[1, 2], torch.tensor(h1 / 2, dtype=torch.float64))
    torch.testing.assert_close(cv.scale_intrinsics(K2, (h1, w1), (h0, w0)), K)


def test_crop_intrinsics_and_vggt_convention() -> None:
    K = pinhole(100, 100, 50, 40)
    Kc = cv.crop_intrinsics(K, top=10, left=5)
    assert (Kc[0, 2].item(), Kc[1, 2].item()) == (45, 30)
    torch.testing.assert_close(cv.vggt_intrinsics_to_opencv(cv.opencv_intrinsics_to_vggt(K)), K)
    # VGGT's index u sees the ray through our continuous coordinate u + 0.5.
    assert cv.opencv_intrinsics_to_vggt(K)[0, 2].item() == 49.5


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(10, 800), st.integers(10, 800), st.floats(0.2, 2.8))
def test_pose_encoding_round_trip(seed: int, H: int, W: int, fov: float) -> None:
    T = random_pose(seed)
    K = pinhole(cv.fov_to_focal(fov, W), cv.fov_to_focal(fov * 0.8, H), W / 2, H / 2)
    enc = cv.extrinsics_intrinsics_to_pose_encoding(T, K, (H, W))
    assert enc.shape == (9,)
    assert enc[6] >= 0  # q_w standardised, stored last (xyzw)
    T2, K2 = cv.pose_encoding_to_extrinsics_intrinsics(enc, (H, W))
    torch.testing.assert_close(T2, T)
    torch.testing.assert_close(K2, K)
    torch.testing.assert_close(enc[7], torch.tensor(fov * 0.8, dtype=torch.float64))
    torch.testing.assert_close(enc[8], torch.tensor(fov, dtype=torch.float64))


def test_pose_encoding_batched_and_3x4() -> None:
    T = torch.stack([random_pose(i) for i in range(6)]).reshape(2, 3, 4, 4)
    K = pinhole(200, 200, 112, 112).expand(2, 3, 3, 3)
    enc = cv.extrinsics_intrinsics_to_pose_encoding(T[..., :3, :], K, (224, 224))
    assert enc.shape == (2, 3, 9)
    T2, _ = cv.pose_encoding_to_extrinsics_intrinsics(enc, (224, 224))
    torch.testing.assert_close(T2, T)
    with pytest.raises(ValueError, match=r"pose_encoding must be \[\.\.\., 9\]"):
        cv.pose_encoding_to_extrinsics_intrinsics(torch.zeros(2, 7), (10, 10))


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.floats(0.01, 100.0), st.booleans())
def test_umeyama_recovers_similarity(seed: int, scale: float, weighted: bool) -> None:
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(50, 3, generator=g, dtype=torch.float64)
    T = random_pose(seed + 1)
    dst = scale * src @ T[:3, :3].T + T[:3, 3]
    w = torch.rand(50, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    s, R, t = cv.umeyama_sim3(src, dst, w)
    torch.testing.assert_close(s, torch.tensor(scale, dtype=torch.float64))
    torch.testing.assert_close(R, T[:3, :3])
    torch.testing.assert_close(t, T[:3, 3])


def test_umeyama_without_scale_and_bad_input() -> None:
    src = torch.randn(20, 3, dtype=torch.float64)
    T = random_pose(9)
    s, R, t = cv.umeyama_sim3(src, src @ T[:3, :3].T + T[:3, 3], with_scale=False)
    assert s.item() == 1.0
    torch.testing.assert_close(R, T[:3, :3])
    with pytest.raises(ValueError, match="at least 3 points"):
        cv.umeyama_sim3(src[:2], src[:2])
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        cv.umeyama_sim3(src, src[:, :2])


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 1.0))
def test_slerp_properties(seed: int, t: float) -> None:
    q0, q1 = unit_quats(seed, 2)
    q = cv.slerp(q0, q1, t)
    torch.testing.assert_close(q.norm(), torch.tensor(1.0, dtype=torch.float64))

    # Geodesic: angle(q0, q) = t * angle(q0, q1) along the shorter arc.
    def angle(a: torch.Tensor, b: torch.Tensor) -> float:
        return 2 * math.acos(min(1.0, abs(float((a * b).sum()))))

    assert angle(q0, q) == pytest.approx(t * angle(q0, q1), abs=1e-6)
    torch.testing.assert_close(cv.slerp(q0, q1, 0.0), q0 * torch.sign((q0 * q0).sum()))


def test_interpolate_poses_hits_keys_and_is_smooth() -> None:
    keys = torch.stack([random_pose(i) for i in range(4)])
    path = cv.interpolate_poses(keys, 31)  # 10 samples per segment, keys at 0, 10, 20, 30
    assert path.shape == (31, 4, 4)
    for i, k in enumerate(keys):
        torch.testing.assert_close(path[i * 10], k)
    centres = cv.camera_centers(path)
    steps = (centres[1:] - centres[:-1]).norm(dim=-1)
    assert torch.isfinite(steps).all() and steps.max() < 3 * steps.median() + 1e-9
    closed = cv.interpolate_poses(keys, 40, closed=True)
    torch.testing.assert_close(closed[0], keys[0])
    with pytest.raises(ValueError, match="num >= 1"):
        cv.interpolate_poses(keys, 0)


def test_look_at_points_camera_at_target_with_up_up() -> None:
    eye = torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64)
    T = cv.look_at(eye, torch.zeros(3, dtype=torch.float64))
    K = pinhole(100, 100, 50, 50)
    uv, z = cv.project_points(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64), T, K)
    torch.testing.assert_close(uv[0], torch.tensor([50.0, 50.0], dtype=torch.float64))
    assert z[0] > 0
    assert uv[1, 1] < uv[0, 1]  # world +z (up) appears higher in the image (smaller v)
    torch.testing.assert_close(cv.camera_centers(T), eye)


def test_opengl_flip_for_viewers() -> None:
    T = random_pose(5)
    c2w_gl = cv.opencv_to_opengl_camera_to_world(T)
    # OpenGL cameras look down -z: the camera's forward (OpenCV +z) is -z of the GL frame.
    fwd_cv = cv.invert_rigid(T)[:3, 2]
    torch.testing.assert_close(-c2w_gl[:3, 2], fwd_cv)
    torch.testing.assert_close(c2w_gl[:3, 3], cv.camera_centers(T))
    np.testing.assert_array_equal(cv.OPENCV_TO_OPENGL @ cv.OPENCV_TO_OPENGL, np.eye(4))

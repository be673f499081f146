"""Depth fitted to caller-given cameras (models.pose_depth): exact triangulation, a smooth depth error
removed on procedural ground truth, and the trained model's depth brought into the given cameras' units."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.procedural import make_scene
from models.depth_field import FieldOptions
from models.pose_depth import fit_depth_to_cameras, triangulate_pairs
from models.reconstruct import Reconstructor
from models.refine import RefineOptions
from tests.models.conftest import images_uint8


@pytest.fixture(scope="module")
def trained():
    return Reconstructor("tiny", weights="models/weights/onepass-tiny.safetensors", device="cpu")


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """world→camera (OpenCV axes) of a camera at ``centre`` looking at ``target``."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(np.array([0.0, -1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ centre
    return T


def test_triangulation_is_exact_on_noise_free_projections():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (200, 3)) + np.array([0.0, 0.0, 5.0])
    K = np.array([[200.0, 0, 112], [0, 210.0, 100], [0, 0, 1]])
    a, b = (
        _look_at(np.zeros(3), np.array([0, 0, 5.0])),
        _look_at(np.array([1.5, 0.2, 0.3]), np.array([0, 0, 5.0])),
    )

    def project(T):
        cam = points @ T[:3, :3].T + T[:3, 3]
        return (cam[:, :2] / cam[:, 2:]) * [K[0, 0], K[1, 1]] + K[:2, 2], cam[:, 2]

    (xy_a, z_a), (xy_b, z_b) = project(a), project(b)
    got, za, zb, angle = triangulate_pairs(xy_a, xy_b, K, K, a, b)
    np.testing.assert_allclose(got, points, atol=1e-9)
    np.testing.assert_allclose(za, z_a, rtol=1e-9)
    np.testing.assert_allclose(zb, z_b, rtol=1e-9)
    # the angle between the rays is the angle the two camera centres subtend at each point
    ca, cb = np.zeros(3), np.array([1.5, 0.2, 0.3])
    ra, rb = points - ca, points - cb
    expected = np.degrees(
        np.arccos((ra * rb).sum(1) / np.linalg.norm(ra, axis=1) / np.linalg.norm(rb, axis=1))
    )
    np.testing.assert_allclose(angle, expected, atol=1e-6)
    # the same camera twice: parallel rays, no point
    same, _, _, zero = triangulate_pairs(xy_a, xy_a, K, K, a, a)
    assert np.isnan(same).all() and np.allclose(zero, 0.0)


@pytest.fixture(scope="module")
def room():
    """A room with varied texture (seed 5; seed 1's repeated wall pattern gives matches along the
    epipolar line that pass the reprojection check with the wrong depth, ~20 % of them)."""
    return make_scene(5, views=4, width=224, height=224, kind="room")


def test_a_wrong_scale_and_tilt_are_fitted_to_the_given_cameras(room):
    """Depth wrong by a per-view scale and a tilt across the image, cameras exact: the corrected depth is
    close to the truth in the cameras' own units, where one scale per view leaves the tilt."""
    S, h, w = room.depth.shape
    xs = (np.arange(w) + 0.5) / w
    tilt = np.exp(np.array([0.3, -0.3, 0.25, -0.2])[:, None, None] * (xs[None, None, :] - 0.5))
    scale = np.array([0.5, 0.8, 1.3, 2.0])[:, None, None]
    depth = room.depth * tilt * scale
    rgb = np.stack(images_uint8(room))
    K = room.K.astype(np.float64)
    fitted = fit_depth_to_cameras(rgb, depth, room.valid, K, room.world_to_camera)
    single = fit_depth_to_cameras(
        rgb,
        depth,
        room.valid,
        K,
        room.world_to_camera,
        options=RefineOptions(depth_field=FieldOptions(grid=1)),
    )
    np.testing.assert_array_equal(fitted.world_to_camera, room.world_to_camera)  # cameras are not moved
    assert fitted.refined == [] and set(fitted.report["depth_correction"]["samples"]) == {"0", "1", "2", "3"}
    assert min(fitted.report["points"].values()) > 200

    def abs_rel_of(maps: np.ndarray) -> np.ndarray:  # per view, in the given cameras' units (no rescaling)
        ok = room.valid
        return np.array(
            [np.mean(np.abs(maps[v] - room.depth[v])[ok[v]] / room.depth[v][ok[v]]) for v in range(S)]
        )

    def abs_rel(res) -> np.ndarray:
        return abs_rel_of(depth * res.depth_factor)

    before = abs_rel_of(depth)
    # the median ratio alone recovers each view's scale to within the tilt (≤ 15 %)
    np.testing.assert_allclose(single.depth_scale * scale[:, 0, 0], 1.0, atol=0.08)
    assert before.min() > 0.15 and abs_rel(single).max() < 0.1, (before, abs_rel(single))
    assert (abs_rel(fitted) < 0.6 * abs_rel(single)).all() and abs_rel(fitted).max() < 0.03, abs_rel(fitted)


def test_views_without_texture_keep_their_depth():
    flat = make_scene(1, views=3, width=96, height=96, kind="room")
    rgb = np.full((3, 96, 96, 3), 128, np.uint8)
    res = fit_depth_to_cameras(rgb, flat.depth, flat.valid, flat.K.astype(np.float64), flat.world_to_camera)
    assert res.report["points"] == {} and np.allclose(res.depth_scale, 1.0)
    np.testing.assert_allclose(res.depth_factor, 1.0)


def test_the_trained_models_depth_comes_into_the_given_cameras_units(trained):
    """Given true cameras, the network's depth is only scaled by the camera-centre fit, which a forward
    rig's short baselines get badly wrong; ``refine=True`` fits it to matches triangulated with them."""
    scene = make_scene(3, views=4, width=224, height=224, kind="forward")
    images = images_uint8(scene)
    kwargs = {"intrinsics": scene.K, "poses": scene.world_to_camera}
    plain = trained.reconstruct(images, **kwargs)
    fitted = trained.reconstruct(images, refine=True, **kwargs)
    assert fitted.report["refinement"]["status"] == "done"
    # without refine, the caller is told that the camera-centre fit is poor and what fixes it
    fit = plain.report["poses"]["alignment"]
    assert fit["method"] == "sim3" and fit["relative_error"] > 0.25
    assert any("refine=true fits each depth map" in w for w in plain.report["warnings"])
    assert not any("refine=true" in w for w in fitted.report["warnings"])
    assert fitted.pose_sources == ["given"] * 4
    np.testing.assert_allclose(fitted.world_to_camera, scene.world_to_camera, atol=1e-6)
    np.testing.assert_allclose(fitted.K, scene.K, atol=1e-6)

    def abs_rel(rec) -> float:
        ok = rec.valid & scene.valid & (rec.depth > 0)
        return float(np.mean(np.abs(rec.depth[ok] - scene.depth[ok]) / scene.depth[ok]))

    before, after = abs_rel(plain), abs_rel(fitted)
    assert after < 0.15 and after < 0.5 * before, (before, after)

"""Camera metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from models.eval.camera import accuracy_at, pose_auc, relative_pose_errors


def _translate(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    T = np.eye(4)
    T[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return T


# Cameras at the origin, at x = 1 and at y = 1 (world→camera translations are minus the centres here).
GT = np.stack([np.eye(4), _translate(-1, 0, 0), _translate(0, -1, 0)])


def test_identical_poses_have_zero_error_and_auc_one() -> None:
    e = relative_pose_errors(GT, GT)
    np.testing.assert_allclose(e.rotation_deg, 0, atol=1e-9)
    np.testing.assert_allclose(e.translation_deg, 0, atol=1e-9)
    assert pose_auc(e) == pytest.approx(1.0)


def test_rotating_one_camera_in_place_costs_its_two_pairs_that_angle() -> None:
    pred = GT.copy()
    pred[2] = _rot_z(10.5) @ GT[2]  # camera 2 turned 10.5° about its optical axis, centre unchanged
    e = relative_pose_errors(pred, GT)
    np.testing.assert_allclose(e.rotation_deg, [0, 10.5, 10.5], atol=1e-9)
    np.testing.assert_allclose(e.translation_deg, [0, 0, 0], atol=1e-9)
    # max error per pair: 0, 10.5, 10.5 → below t for t = 1..10 only the first pair (1/3), t = 11..30 all.
    assert pose_auc(e, 30) == pytest.approx((10 * (1 / 3) + 20 * 1.0) / 30)


def test_translation_direction_error_is_scale_free_and_sign_agnostic() -> None:
    pred = GT.copy()
    pred[1] = _translate(-1, -1, 0)  # camera 1 moved to (1, 1, 0): baseline to camera 0 is 45° off
    e = relative_pose_errors(pred, GT)
    assert e.translation_deg[0] == pytest.approx(45.0)
    scaled = GT.copy()
    scaled[:, :3, 3] *= 3.7  # a global scale changes nothing
    assert relative_pose_errors(scaled, GT).max_deg.max() == pytest.approx(0.0, abs=1e-6)
    flipped = GT.copy()
    flipped[1] = _translate(1, 0, 0)  # baseline pointing the other way: direction error taken mod 180°
    assert relative_pose_errors(flipped, GT).translation_deg[0] == pytest.approx(0.0, abs=1e-6)


def test_relative_errors_ignore_a_common_world_similarity() -> None:
    rng = np.random.default_rng(0)
    A = np.eye(4)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    A[:3, :3] = q * np.sign(np.linalg.det(q))
    A[:3, 3] = rng.normal(size=3)
    pred = GT @ np.linalg.inv(A)  # same cameras, world frame moved by A
    assert relative_pose_errors(pred, GT).max_deg.max() == pytest.approx(0.0, abs=1e-5)


def test_unregistered_views_count_as_180_degrees() -> None:
    e = relative_pose_errors(GT, GT, registered=np.array([True, True, False]))
    np.testing.assert_allclose(e.rotation_deg, [0, 180, 180])
    np.testing.assert_allclose(e.translation_deg, [0, 180, 180])
    assert pose_auc(e) == pytest.approx(1 / 3)


def test_accuracy_and_summary() -> None:
    assert accuracy_at(np.array([1.0, 5.0, 20.0, 40.0]), 15) == pytest.approx(0.5)
    s = relative_pose_errors(GT, GT).summary()
    assert s["auc30"] == pytest.approx(1.0) and s["rra15"] == 1.0 and s["rta5"] == 1.0


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="pred_world_to_camera must be"):
        relative_pose_errors(np.zeros((3, 4)), GT)
    with pytest.raises(ValueError, match="same number of views"):
        relative_pose_errors(GT[:2], GT)
    with pytest.raises(ValueError, match="registered must be"):
        relative_pose_errors(GT, GT, registered=np.array([True]))
    with pytest.raises(ValueError, match="num_views must be >= 2"):
        relative_pose_errors(GT[:1], GT[:1])

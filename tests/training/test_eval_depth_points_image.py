"""Depth, point-cloud and image metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from models.eval.depth import depth_metrics, median_scale_per_view
from models.eval.image import psnr, ssim
from models.eval.points import Sim3, align_points_sim3, chamfer_distance

GT_DEPTH = np.array([[[1.0, 2.0], [4.0, 8.0]]])  # one 2×2 view
PRED_DEPTH = np.ones((1, 2, 2))


def test_depth_without_scaling() -> None:
    m = depth_metrics(PRED_DEPTH, GT_DEPTH, scaling="none")
    assert m["abs_rel"] == pytest.approx((0 + 1 / 2 + 3 / 4 + 7 / 8) / 4)
    assert m["delta1"] == pytest.approx(0.25)  # ratios 1, 2, 4, 8
    assert m["num_pixels"] == 4


def test_depth_with_median_scaling() -> None:
    assert median_scale_per_view(PRED_DEPTH, GT_DEPTH)[0] == pytest.approx(3.0)  # median(1,2,4,8) = 3
    m = depth_metrics(PRED_DEPTH, GT_DEPTH, scaling="median")
    assert m["abs_rel"] == pytest.approx((2 + 1 / 2 + 1 / 4 + 5 / 8) / 4)
    assert m["delta1"] == 0.0  # ratios 3, 1.5, 1.33, 2.67


def test_depth_with_global_scale_and_mask() -> None:
    m = depth_metrics(PRED_DEPTH, GT_DEPTH, scaling="global", scale=2.0)
    assert m["abs_rel"] == pytest.approx((1 + 0 + 1 / 2 + 3 / 4) / 4)
    assert m["delta1"] == pytest.approx(0.25)
    valid = np.array([[[False, True], [True, True]]])
    assert depth_metrics(PRED_DEPTH * 2, GT_DEPTH, valid, scaling="none")["num_pixels"] == 3


def test_median_scaling_is_per_view() -> None:
    gt = np.stack([GT_DEPTH[0], GT_DEPTH[0] * 10])
    pred = np.stack([GT_DEPTH[0] * 0.5, GT_DEPTH[0] * 7])  # each view right up to its own scale
    assert depth_metrics(pred, gt, scaling="median")["abs_rel"] == pytest.approx(0.0)
    # One factor 2 fits view 0 exactly and leaves view 1 at 14/10 of the truth: AbsRel (0 + 0.4) / 2.
    assert depth_metrics(pred, gt, scaling="global", scale=2.0)["abs_rel"] == pytest.approx(0.2)


def test_depth_bad_inputs() -> None:
    with pytest.raises(ValueError, match="scaling must be"):
        depth_metrics(PRED_DEPTH, GT_DEPTH, scaling="mean")
    with pytest.raises(ValueError, match="needs a finite positive scale"):
        depth_metrics(PRED_DEPTH, GT_DEPTH, scaling="global")
    with pytest.raises(ValueError, match=r"\[S, H, W\]"):
        depth_metrics(PRED_DEPTH[0], GT_DEPTH[0])
    with pytest.raises(ValueError, match="no pixel has valid ground truth"):
        depth_metrics(PRED_DEPTH, np.zeros_like(GT_DEPTH))


def test_sim3_alignment_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    src = rng.normal(size=(500, 3))
    dst = 2.5 * src @ R.T + np.array([1.0, -2.0, 0.5])
    sim = align_points_sim3(src, dst)
    assert sim.scale == pytest.approx(2.5)
    np.testing.assert_allclose(sim.R, R, atol=1e-9)
    np.testing.assert_allclose(sim.apply(src), dst, atol=1e-9)


def test_sim3_moves_cameras_consistently_with_points() -> None:
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    sim = Sim3(scale=0.5, R=q * np.sign(np.linalg.det(q)), t=np.array([0.3, 0.1, -1.0]))
    T_dst = np.eye(4)
    T_dst[:3, 3] = [0.2, -0.4, 3.0]
    x_src = rng.normal(size=(10, 3))
    T_src = sim.world_to_camera_into_source(T_dst)
    cam_src = x_src @ T_src[:3, :3].T + T_src[:3, 3]
    cam_dst = sim.apply(x_src) @ T_dst[:3, :3].T + T_dst[:3, 3]
    np.testing.assert_allclose(cam_src * sim.scale, cam_dst, atol=1e-12)  # same rays, scaled depth


def test_chamfer_hand_value() -> None:
    a = np.array([[0.0, 0.0, 0.0]])
    b = np.array([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    c = chamfer_distance(a, b)
    assert c == {"accuracy": 1.0, "completeness": 2.0, "chamfer": 1.5}
    with pytest.raises(ValueError, match="point set b has no finite points"):
        chamfer_distance(a, np.full((2, 3), np.nan))


def test_psnr_and_ssim_hand_values() -> None:
    gt = np.zeros((16, 16, 3))
    assert psnr(gt + 0.1, gt) == pytest.approx(20.0)
    assert psnr(gt, gt) == float("inf")
    # Constant images: SSIM reduces to the luminance term (2ab + C1) / (a² + b² + C1), C1 = 0.01².
    a, b, c1 = 0.5, 0.25, 1e-4
    assert ssim(np.full((16, 16, 3), a), np.full((16, 16, 3), b)) == pytest.approx(
        (2 * a * b + c1) / (a * a + b * b + c1)
    )
    noisy = np.clip(gt + np.random.default_rng(0).normal(0.5, 0.2, gt.shape), 0, 1)
    assert ssim(noisy, noisy) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        psnr(gt[..., 0], gt[..., 0])
    with pytest.raises(ValueError, match="at least 11×11"):
        ssim(gt[:5, :5], gt[:5, :5])


def test_voxel_downsample_and_capped_chamfer() -> None:
    from models.eval.points import voxel_downsample

    pts = np.array([[0.01, 0.01, 0.01], [0.03, 0.03, 0.03], [1.05, 0.0, 0.0]])
    np.testing.assert_allclose(voxel_downsample(pts, 0.1), [[0.02, 0.02, 0.02], [1.05, 0.0, 0.0]])
    far = np.array([[10.0, 0.0, 0.0]])
    c = chamfer_distance(np.zeros((1, 3)), far, cap=2.0)
    assert c == {"accuracy": 2.0, "completeness": 2.0, "chamfer": 2.0}
    cloud = np.random.default_rng(0).normal(size=(1000, 3))
    assert chamfer_distance(cloud, cloud.copy(), voxel=0.05)["chamfer"] == 0.0

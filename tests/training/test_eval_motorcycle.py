"""The Middlebury Motorcycle pair: calibration and depth are consistent with the images themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.eval.motorcycle import MOTORCYCLE_CALIBRATION, disparity_to_depth, load_motorcycle
from renderer.conventions import project_points, unproject_depth


def test_disparity_to_depth_formula() -> None:
    z = disparity_to_depth(
        np.array([68.914, np.inf, -40.0]), focal_px=1000.0, baseline_m=0.2, doffs_px=31.086
    )
    assert z[0] == pytest.approx(0.2 * 1000.0 / 100.0)
    assert np.isnan(z[1]) or z[1] == 0.0  # unknown disparity never becomes a depth
    assert np.isnan(z[2])


def test_left_depth_reprojects_into_the_right_image() -> None:
    gt = load_motorcycle()
    assert gt.images.shape == (2, 500, 741, 3) and gt.valid[0].mean() > 0.9 and not gt.valid[1].any()
    assert 2.0 < np.median(gt.depth[0][gt.valid[0]]) < 3.5  # metres: a motorcycle ~2.75 m from the rig
    # Unproject the left depth, project into the right camera, sample the right image: it must match the
    # left image far better than the unwarped right image does (validates f, cx's, doffs, baseline, signs).
    pts = unproject_depth(
        torch.from_numpy(gt.depth[:1]), torch.from_numpy(gt.K[:1]), torch.from_numpy(gt.world_to_camera[:1])
    )
    uv, _ = project_points(
        pts.reshape(-1, 3), torch.from_numpy(gt.world_to_camera[1]), torch.from_numpy(gt.K[1])
    )
    u = np.nan_to_num(uv[:, 0].numpy(), nan=0.0)  # invalid pixels have depth 0 → no projection
    cols = np.clip(np.round(u - 0.5).astype(int), 0, 740).reshape(500, 741)
    rows = np.arange(500)[:, None].repeat(741, 1)
    warped = gt.images[1][rows, cols]
    m = gt.valid[0]
    err_warped = np.abs(warped - gt.images[0])[m].mean()
    err_identity = np.abs(gt.images[1] - gt.images[0])[m].mean()
    assert err_warped < 0.4 * err_identity
    assert MOTORCYCLE_CALIBRATION["baseline_m"] == pytest.approx(0.193001)

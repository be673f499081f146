"""The COLMAP peer really reconstructs one of our procedural scenes (~2 s on one core)."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.procedural import make_scene
from models.eval.camera import relative_pose_errors
from models.eval.colmap_peer import run_colmap


def test_colmap_registers_a_procedural_scene_with_accurate_poses() -> None:
    scene = make_scene(7, views=4, width=224, height=224, kind="forward")
    images = [np.clip(np.round(im * 255), 0, 255).astype(np.uint8) for im in scene.images]
    res = run_colmap(images)
    assert res.registration_rate == 1.0
    assert res.points.shape[0] > 50
    errors = relative_pose_errors(res.world_to_camera, scene.world_to_camera, res.registered)
    assert errors.summary()["auc30"] > 0.8
    assert set(res.timings) == {"extract_s", "match_s", "map_s"} and res.runtime_s > 0


def test_colmap_rejects_bad_images() -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        run_colmap([np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"images\[1\] must be an \[H, W, 3\] uint8 array"):
        run_colmap([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32)])

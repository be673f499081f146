"""bench.camera_turns: rotation error binned by the true turn from view 0, on the shipped weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.camera_turns import _angle_deg, main, turn_rows
from models.eval.suite import procedural_ground_truth

WEIGHTS = "models/weights/onepass-tiny.safetensors"


def test_angle_of_a_known_rotation() -> None:
    a = math.radians(150.0)
    R = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    assert _angle_deg(R) == pytest.approx(150.0)
    assert _angle_deg(R @ R.T) == pytest.approx(0.0, abs=1e-6)


def test_rows_hold_the_true_turns_and_errors_within_range(capsys) -> None:
    seed = 102  # an orbit scene (kinds go objects, room, orbit, forward by seed)
    rows = turn_rows(WEIGHTS, [seed], views=4)
    gt = procedural_ground_truth(seed, 4, 224, 0).world_to_camera
    true = [_angle_deg(gt[i, :3, :3] @ gt[0, :3, :3].T) for i in (1, 2, 3)]
    assert rows.shape == (3, 3)
    np.testing.assert_allclose(rows[:, 0], true, atol=1e-6)
    assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 180)).all()
    assert main([WEIGHTS, "--scenes", "1", "--first-seed", "100"]) == 0
    out = capsys.readouterr().out
    assert "orbit scenes, seeds 102–102 (1)" in out and "| onepass-tiny.safetensors |" in out

"""The viewer's OpenCV → three.js camera conversion, checked under Node against renderer.conventions.

A point projected by three.js through the viewer's camera (pose from ``world_to_camera``, projection from
``K``) must land on the pixel ``renderer.conventions.project_points`` gives, for off-centre principal
points, fx != fy, skew, and viewports of another aspect (the photo is letterboxed into the canvas).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer.conventions import look_at, project_points


def _random_cameras(rng: np.random.Generator, n: int) -> list[dict]:
    cams = []
    for _ in range(n):
        eye = torch.tensor(rng.uniform(-3, 3, 3))
        target = torch.tensor(rng.uniform(-0.3, 0.3, 3))
        w2c = look_at(eye, target).numpy()
        # Roll the camera about its axis so "up" is not special.
        a = rng.uniform(-math.pi, math.pi)
        roll = np.eye(4)
        roll[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
        w2c = roll @ w2c
        width, height = int(rng.integers(160, 640)), int(rng.integers(120, 480))
        fx = rng.uniform(0.7, 1.5) * width
        K = np.array(
            [
                [fx, rng.uniform(-2, 2), width / 2 + rng.uniform(-20, 20)],
                [0, fx * rng.uniform(0.9, 1.1), height / 2 + rng.uniform(-20, 20)],
                [0, 0, 1],
            ]
        )
        cams.append({"K": K.tolist(), "world_to_camera": w2c.tolist(), "width": width, "height": height})
    return cams


def _expected_uv(cam: dict, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f64 = torch.float64
    uv, z = project_points(
        torch.tensor(points, dtype=f64),
        torch.tensor(cam["world_to_camera"], dtype=f64),
        torch.tensor(cam["K"], dtype=f64),
    )
    return uv.numpy(), z.numpy()


@pytest.mark.parametrize("viewport", ["image", "wide", "tall"])
def test_three_projection_matches_opencv(run_js, viewport: str) -> None:
    rng = np.random.default_rng(7)
    cams = _random_cameras(rng, 6)
    points = rng.uniform(-0.5, 0.5, (40, 3))
    for c in cams:
        scale = {"image": (1.0, 1.0), "wide": (1.7, 1.1), "tall": (0.9, 1.6)}[viewport]
        c["view_width"] = round(c["width"] * scale[0])
        c["view_height"] = round(c["height"] * scale[1])
    got = run_js("project", {"cameras": cams, "points": points.tolist()})["uv"]
    for c, uv_three in zip(cams, got, strict=True):
        uv, z = _expected_uv(c, points)
        # Letterbox: the photo is scaled by s and centred in the viewport.
        s = min(c["view_width"] / c["width"], c["view_height"] / c["height"])
        offset = np.array([(c["view_width"] - s * c["width"]) / 2, (c["view_height"] - s * c["height"]) / 2])
        expected = offset + s * uv
        in_front = z > 0.05
        assert in_front.sum() > 10
        err = np.abs(np.asarray(uv_three)[in_front] - expected[in_front]).max()
        assert err < 2e-3, f"{viewport}: max pixel error {err:.2e} between three.js and project_points"


def test_world_to_camera_round_trip(run_js) -> None:
    cams = _random_cameras(np.random.default_rng(3), 8)
    back = run_js("roundtrip", {"cameras": cams})["world_to_camera"]
    for c, b in zip(cams, back, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(c["world_to_camera"]), atol=1e-5)

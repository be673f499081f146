"""Camera paths: orbit, spiral and input interpolation keep their geometric promises."""

from __future__ import annotations

import math

import pytest
import torch

from renderer.camera_paths import input_path, orbit_path, scene_center, spiral_path, world_up
from renderer.conventions import camera_centers, look_at


def _ring(count: int = 6, radius: float = 3.0, height: float = 0.5):
    target = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)  # y-down world, like OpenCV captures
    poses = []
    for i in range(count):
        a = 2 * math.pi * i / count * 0.5  # half circle
        eye = target + torch.tensor(
            [radius * math.sin(a), -height, -radius * math.cos(a)], dtype=torch.float64
        )
        poses.append(look_at(eye, target, up))
    K = torch.tensor([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]], dtype=torch.float64).expand(count, 3, 3)
    return torch.stack(poses), K.clone(), target, up


def test_scene_center_and_up_of_an_inward_ring():
    w2c, _, target, up = _ring()
    torch.testing.assert_close(scene_center(w2c), target, atol=1e-9, rtol=0)
    assert torch.dot(world_up(w2c), up) > 0.98


def test_orbit_circles_the_centre_level_and_looks_at_it():
    w2c, K, target, up = _ring()
    poses, Ks = orbit_path(w2c, K, 24)
    assert poses.shape == (24, 4, 4) and Ks.shape == (24, 3, 3)
    centres = camera_centers(poses)
    offsets = centres - target
    heights = offsets @ world_up(w2c)
    assert heights.std() < 1e-9  # level
    flat = offsets - heights[:, None] * world_up(w2c)
    assert flat.norm(dim=1).std() < 1e-9  # on a circle
    torch.testing.assert_close(
        flat.norm(dim=1).mean(), (camera_centers(w2c) - target).norm(dim=1).mean() * 0 + flat.norm(dim=1)[0]
    )
    # every frame's optical axis passes through the centre
    to_centre = (target - centres) / (target - centres).norm(dim=1, keepdim=True)
    torch.testing.assert_close(poses[:, 2, :3], to_centre, atol=1e-9, rtol=0)
    # the first frame starts at the first input camera's bearing
    first = camera_centers(w2c)[0] - target
    first = first - torch.dot(first, world_up(w2c)) * world_up(w2c)
    assert torch.dot(flat[0] / flat[0].norm(), first / first.norm()) > 0.999
    torch.testing.assert_close(Ks[5], K[0])


def test_output_intrinsics_keep_the_vertical_field_of_view():
    w2c, K, _, _ = _ring()
    _, Ks = orbit_path(w2c, K, 4, image_hw=[(96, 128)] * 6, out_hw=(200, 300))
    f = 100 / 96 * 200
    expected = torch.tensor([[f, 0, 150], [0, f, 100], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(Ks[0], expected)
    with pytest.raises(ValueError, match="image_hw"):
        orbit_path(w2c, K, 4, out_hw=(200, 300))


def test_spiral_stays_near_the_average_camera_and_looks_at_the_focus():
    w2c, K, target, _ = _ring(count=5)
    poses, _ = spiral_path(w2c, K, 30, focus_distance=3.0)
    centres = camera_centers(poses)
    mean_pos = camera_centers(w2c).mean(0)
    spread = (camera_centers(w2c) - mean_pos).norm(dim=1).max()
    assert (centres - mean_pos).norm(dim=1).max() <= 1.8 * spread
    forward = w2c[:, 2, :3].mean(0)
    focus = mean_pos + 3.0 * forward / forward.norm()
    to_focus = (focus - centres) / (focus - centres).norm(dim=1, keepdim=True)
    torch.testing.assert_close(poses[:, 2, :3], to_focus, atol=1e-9, rtol=0)
    assert (centres[1:] - centres[:-1]).norm(dim=1).min() > 1e-3  # it moves every frame


def test_input_path_passes_through_every_input_camera():
    w2c, K, _, _ = _ring(count=4)
    K = K.clone()
    K[:, 0, 0] = torch.tensor([90.0, 100.0, 110.0, 120.0], dtype=torch.float64)
    poses, Ks = input_path(w2c, K, 7)  # samples at 0, 0.5, 1, ..., 3
    for i in range(4):
        torch.testing.assert_close(poses[2 * i], w2c[i], atol=1e-9, rtol=0)
        torch.testing.assert_close(Ks[2 * i], K[i])
    assert Ks[1, 0, 0].item() == pytest.approx(95.0)


def test_bad_arguments_name_them():
    w2c, K, _, _ = _ring()
    with pytest.raises(ValueError, match="num must be a positive int, got 0"):
        orbit_path(w2c, K, 0)
    with pytest.raises(ValueError, match="K must have shape \\[6, 3, 3\\]"):
        spiral_path(w2c, K[:2], 5)
    with pytest.raises(ValueError, match="world_to_camera must have shape \\[S, 4, 4\\]"):
        input_path(w2c[:, :3], K, 5)

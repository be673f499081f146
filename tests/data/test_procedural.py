"""The procedural scene API: determinism, sanity of every kind, batches, save/load, argument checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.data import (
    KINDS,
    ProceduralDataset,
    kind_for_seed,
    load_scene,
    make_batch,
    make_scene,
    make_target_views,
    render_views,
    save_scene,
)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_scene_other_seed_other_scene(kind):
    a = make_scene(21, views=2, width=48, height=40, kind=kind)
    b = make_scene(21, views=2, width=48, height=40, kind=kind)
    c = make_scene(22, views=2, width=48, height=40, kind=kind)
    for name in ("images", "depth", "valid", "K", "world_to_camera"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.allclose(a.world_to_camera, c.world_to_camera)
    assert not np.allclose(a.images, c.images)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_gives_sane_views(kind):
    for seed in range(3):
        s = make_scene(seed, views=3, width=64, height=48, kind=kind)
        assert s.images.shape == (3, 48, 64, 3) and s.images.dtype == np.float32
        assert s.depth.shape == s.valid.shape == (3, 48, 64) and s.depth.dtype == np.float32
        assert s.K.shape == (3, 3, 3) and s.world_to_camera.shape == (3, 4, 4)
        assert 0.0 <= s.images.min() and s.images.max() <= 1.0
        assert np.isfinite(s.depth).all()
        assert (s.depth[s.valid] > 0).all() and (s.depth[~s.valid] == 0).all()
        for v in range(3):
            assert s.valid[v].mean() > 0.02, (kind, seed, v)  # every view sees the scene
            assert s.images[v][s.valid[v]].std() > 0.02, (kind, seed, v)  # textured, not flat
        if kind in ("room", "forward"):
            assert s.valid.all(), "closed scenes have a surface behind every pixel"
        # Rotations are proper, intrinsics centred with square pixels.
        R = s.world_to_camera[:, :3, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
        np.testing.assert_allclose(s.K[:, 0, 2], 32.0)
        np.testing.assert_allclose(s.K[:, 1, 2], 24.0)
        np.testing.assert_allclose(s.K[:, 0, 0], s.K[:, 1, 1])


def test_render_views_reproduces_the_input_views():
    s = make_scene(4, views=2, width=56, height=40, kind="objects")
    v = render_views(s.spec, s.world_to_camera, s.K, 56, 40)
    np.testing.assert_array_equal(v.rgb.numpy(), s.images)
    np.testing.assert_array_equal(v.depth.numpy(), s.depth)


def test_target_views_are_new_cameras_of_the_same_scene():
    s = make_scene(9, views=2, width=40, height=32, kind="orbit")
    t1 = make_target_views(s, 3)
    t2 = make_target_views(s, 3, salt=1)
    assert t1.images.shape == (3, 32, 40, 3) and t1.kind == "orbit" and t1.seed == 9
    assert not np.allclose(t1.world_to_camera, t2.world_to_camera)
    np.testing.assert_array_equal(make_target_views(s, 3).images, t1.images)
    for w2c in t1.world_to_camera:
        assert np.abs(s.world_to_camera - w2c).max() > 1e-6


def test_make_batch_matches_make_scene_and_the_dataset():
    seeds = [3, 4]
    batch = make_batch(seeds, views=2, width=40, height=24)
    assert batch["images"].shape == (2, 2, 3, 24, 40)
    assert batch["depth"].shape == batch["valid"].shape == (2, 2, 24, 40)
    assert batch["K"].shape == (2, 2, 3, 3) and batch["world_to_camera"].shape == (2, 2, 4, 4)
    assert batch["valid"].dtype == torch.bool and batch["images"].dtype == torch.float32
    for b, seed in enumerate(seeds):
        ref = make_scene(seed, views=2, width=40, height=24, kind=kind_for_seed(seed))
        np.testing.assert_array_equal(batch["images"][b].permute(0, 2, 3, 1).numpy(), ref.images)
        np.testing.assert_array_equal(batch["depth"][b].numpy(), ref.depth)
        np.testing.assert_allclose(
            batch["world_to_camera"][b].numpy(), ref.world_to_camera, rtol=1e-6, atol=1e-6
        )
    loader = torch.utils.data.DataLoader(ProceduralDataset(seeds, views=2, width=40, height=24), batch_size=2)
    (collated,) = list(loader)
    for key in batch:
        assert torch.equal(collated[key], batch[key]), key


def test_kinds_take_turns_by_seed():
    assert [kind_for_seed(s) for s in range(5)] == [*KINDS, KINDS[0]]
    batch = make_batch([0, 1], views=1, width=16, height=16, kinds="room")
    assert batch["valid"].all()  # rooms are closed


def test_save_load_round_trip(tmp_path):
    s = make_scene(6, views=3, width=40, height=30, kind="objects")
    out = save_scene(s, tmp_path / "scene")
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["convention"] == "opencv"
    assert [f["image"] for f in doc["frames"]] == ["000.png", "001.png", "002.png"]
    assert doc["generator"]["seed"] == 6 and doc["generator"]["kind"] == "objects"
    back = load_scene(out)
    np.testing.assert_array_equal(back.depth, s.depth)
    np.testing.assert_array_equal(back.valid, s.valid)
    np.testing.assert_allclose(back.K, s.K, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.world_to_camera, s.world_to_camera, rtol=0, atol=1e-12)
    assert np.abs(back.images - s.images).max() <= 0.5 / 255 + 1e-6
    assert back.kind == "objects" and back.seed == 6 and back.spec is not None
    again = render_views(back.spec, back.world_to_camera, back.K, 40, 30)
    np.testing.assert_array_equal(again.depth.numpy(), s.depth)


def test_load_scene_reports_the_broken_file(tmp_path):
    out = save_scene(make_scene(1, views=2, width=16, height=12, kind="room"), tmp_path / "s")
    np.save(out / "depth" / "001.npy", np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match="001.npy"):
        load_scene(out)
    (out / "images" / "000.png").unlink()
    with pytest.raises(FileNotFoundError, match="000.png"):
        load_scene(out)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"seed": 0, "views": 0}, ValueError, "views must be >= 1"),
        ({"seed": 0, "width": 0}, ValueError, "width must be >= 1"),
        ({"seed": 0, "height": -2}, ValueError, "height must be >= 1"),
        ({"seed": 0, "kind": "cave"}, ValueError, "kind must be one of"),
    ],
)
def test_make_scene_rejects_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_scene(**kwargs)


def test_make_batch_and_render_views_reject_bad_arguments():
    with pytest.raises(ValueError, match="seeds must not be empty"):
        make_batch([], views=1, width=8, height=8)
    with pytest.raises(ValueError, match="kinds must be None, one kind, or one per seed"):
        make_batch([0, 1], views=1, width=8, height=8, kinds=["room"])
    s = make_scene(0, views=1, width=8, height=8)
    with pytest.raises(ValueError, match=r"world_to_camera must be \[C, 4, 4\]"):
        render_views(s.spec, np.eye(4), s.K, 8, 8)
    with pytest.raises(ValueError, match=r"K must be \[C, 3, 3\]"):
        render_views(s.spec, s.world_to_camera, s.K[0], 8, 8)
    with pytest.raises(ValueError, match="width and height must be >= 1"):
        render_views(s.spec, s.world_to_camera, s.K, 0, 8)

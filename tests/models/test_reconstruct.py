"""Reconstructor on procedural scenes: cameras per view, caller-given intrinsics/poses, batching, failures."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models.align import align_cameras
from models.reconstruct import NonFiniteOutputError, ReconstructionInput, Reconstructor
from renderer.conventions import look_at, pixel_grid, project_points
from tests.models.conftest import images_uint8


def test_reconstruct_gives_every_view_a_camera_at_its_original_size(tiny_reconstructor, scene):
    imgs = images_uint8(scene)
    imgs[1] = np.ascontiguousarray(np.repeat(imgs[1], 2, axis=1))  # one view 224×448: a different size
    rec = tiny_reconstructor.reconstruct(imgs)
    S = len(imgs)
    assert rec.world_to_camera.shape == (S, 4, 4) and np.isfinite(rec.world_to_camera).all()
    assert rec.image_hw == [(224, 224), (224, 448), (224, 224), (224, 224)]
    # model input is 224 wide: view 1 shrinks ×0.5 and is padded into the 224×224 batch
    np.testing.assert_allclose(rec.K[1, 0, 0], 2 * rec.K_model[1, 0, 0])
    np.testing.assert_allclose(rec.K[1, 0, 2], 2 * rec.K_model[1, 0, 2])
    assert rec.depth.shape == (S, 224, 224) and rec.world_points.shape == (S, 224, 224, 3)
    assert not rec.valid[1].all() and rec.valid[0].all() and (rec.depth_conf[~rec.valid] == 0).all()
    assert rec.anchors == [0, 1, 2, 3] and rec.report["compression"] == "none"
    assert set(rec.report["inference_stages_s"]) == {"embed", "select", "trunk", "heads", "camera_head"}
    assert len(rec.gaussians) > 0 and torch.isfinite(rec.gaussians.means).all()
    assert rec.report["gaussians"]["source"] == "gaussian_head"
    assert any("random weights" in w for w in rec.report["warnings"])


def test_many_views_compress_to_anchors(tiny_reconstructor):
    g = np.random.default_rng(0)
    imgs = [g.integers(0, 256, (112, 140, 3), dtype=np.uint8) for _ in range(10)]
    rec = tiny_reconstructor.reconstruct(imgs, max_anchors=3)
    assert rec.report["compression"] == "zpressor" and len(rec.anchors) == 3 and rec.anchors[0] == 0
    assert rec.report["gaussians"]["from_views"] == rec.anchors
    h, w = rec.depth.shape[1:]  # model resolution: 112×140 → 182×224
    assert (h, w) == (182, 224) and 0 < len(rec.gaussians) <= 3 * h * w  # 3 anchors' pixels, not 10 views'
    assert np.isfinite(rec.world_to_camera).all() and rec.world_to_camera.shape == (10, 4, 4)
    assert set(rec.assignment) == set(rec.anchors)
    stages = rec.report["inference_stages_s"]  # every stage of the compressed path ran and was timed
    assert set(stages) == {"embed", "select", "zpressor", "trunk", "heads", "registration_trunk",
                           "registration_heads", "camera_head"}  # fmt: skip
    assert all(t >= 0 for t in stages.values())
    assert sum(stages.values()) <= rec.report["timings_s"]["inference"]
    assert rec.report["registration"] == "all"


def test_pair_registration_is_chosen_reported_and_checked(tiny_model):
    from models.reconstruct import Reconstructor

    g = np.random.default_rng(1)
    imgs = [g.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(6)]
    try:
        rec = Reconstructor(model=tiny_model, registration="pair").reconstruct(imgs, max_anchors=3)
        assert rec.report["registration"] == "pair" and np.isfinite(rec.world_to_camera).all()
        few = Reconstructor(model=tiny_model, registration="pair").reconstruct(imgs[:3], max_anchors=3)
        assert few.report["registration"] is None  # every view an anchor: no registration pass
        with pytest.raises(ValueError, match="registration must be one of all, pair, got 'some'"):
            Reconstructor(model=tiny_model, registration="some")
    finally:
        tiny_model.registration = "all"  # the module-scoped model is shared with other tests


def test_given_poses_and_intrinsics_put_the_result_in_the_callers_frame(tiny_reconstructor, scene):
    imgs = images_uint8(scene)
    pred = tiny_reconstructor.reconstruct(imgs)
    rec = tiny_reconstructor.reconstruct(imgs, intrinsics=scene.K, poses=scene.world_to_camera)
    np.testing.assert_allclose(rec.world_to_camera, scene.world_to_camera)
    np.testing.assert_allclose(rec.K, scene.K)
    info = rec.report["poses"]
    assert rec.report["intrinsics"] == "given" and info["source"] == "given"
    assert info["alignment"]["method"] == "sim3"
    # depth is the prediction scaled by the fitted similarity
    np.testing.assert_allclose(rec.depth, pred.depth * info["alignment"]["scale"], rtol=1e-5)
    # points are re-derived from depth with the given cameras: they project back onto their pixels
    pts = torch.from_numpy(rec.world_points).double().reshape(4, -1, 3)
    uv, z = project_points(pts, torch.from_numpy(rec.world_to_camera), torch.from_numpy(rec.K_model))
    grid = pixel_grid(224, 224, dtype=torch.float64).reshape(-1, 2)
    torch.testing.assert_close(uv, grid.expand_as(uv), rtol=0, atol=1e-3)
    torch.testing.assert_close(
        z.reshape(4, 224, 224), torch.from_numpy(rec.depth).double(), rtol=1e-5, atol=1e-5
    )


def test_alignment_recovers_a_known_similarity():
    eyes = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0.5], [1, 1, -0.3]], dtype=torch.float64)
    pred = torch.stack([look_at(e, torch.tensor([0.5, 0.5, 5.0], dtype=torch.float64)) for e in eyes])
    s, angle = 2.5, 0.4
    R = torch.tensor([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    t = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    sim = torch.eye(4, dtype=torch.float64)
    sim[:3, :3], sim[:3, 3] = s * R, t
    # world points map X' = sim X; a camera world→camera T becomes diag(s)·T·sim⁻¹ (rigid part)
    given = []
    for T in pred:
        G = T @ torch.linalg.inv(sim)
        G[:3, :3] = G[:3, :3] * s
        G[:3, 3] = G[:3, 3] * s
        given.append(G)
    a = align_cameras(pred, torch.stack(given))
    assert a.method == "sim3" and a.scale == pytest.approx(s, rel=1e-9) and a.rms_error < 1e-9
    two = align_cameras(pred[:2], torch.stack(given[:2]))
    assert two.method == "baseline-scale" and two.scale == pytest.approx(s, rel=1e-9)
    assert align_cameras(pred[:1], torch.stack(given[:1])).method == "none"


def test_batch_matches_single_scenes(tiny_reconstructor, scene):
    imgs = images_uint8(scene)
    flipped = [np.ascontiguousarray(im[:, ::-1]) for im in imgs]
    batch = tiny_reconstructor.reconstruct_batch([ReconstructionInput(imgs), ReconstructionInput(flipped)])
    assert [r.report["batch_size"] for r in batch] == [2, 2]
    single = tiny_reconstructor.reconstruct(flipped)
    np.testing.assert_allclose(batch[1].world_to_camera, single.world_to_camera, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batch[1].depth, single.depth, rtol=1e-4, atol=1e-5)


def test_per_scene_resolution_sets_the_model_width_and_never_shares_a_pass(tiny_reconstructor, scene):
    imgs = images_uint8(scene)[:2]
    wide = [np.ascontiguousarray(np.repeat(im, 2, axis=1)) for im in imgs]  # 224×448 photos
    small, default, small_wide = tiny_reconstructor.reconstruct_batch(
        [
            ReconstructionInput(imgs, resolution=112),
            ReconstructionInput(imgs),
            ReconstructionInput(wide, resolution=112),
        ]
    )
    assert small.depth.shape == (2, 112, 112) and small.report["model_hw"] == [112, 112]
    assert default.depth.shape == (2, 224, 224) and small_wide.depth.shape == (2, 56, 112)
    # 112-wide scenes of different heights and the 224-wide scene: three forward passes.
    assert [r.report["batch_size"] for r in (small, default, small_wide)] == [1, 1, 1]
    # K at the original size is the model-size K scaled back: 224 / 112 = 2.
    np.testing.assert_allclose(small.K[:, :2], 2 * small.K_model[:, :2], rtol=1e-9)
    assert small.world_points.shape == (2, 112, 112, 3) and np.isfinite(small.world_to_camera).all()
    # Same resolution, same shape: one pass, and the same result as alone.
    pair = tiny_reconstructor.reconstruct_batch([ReconstructionInput(imgs, resolution=112)] * 2)
    assert [r.report["batch_size"] for r in pair] == [2, 2]
    np.testing.assert_allclose(pair[1].depth, small.depth, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("resolution", [100, 14, 1050, 0, True, 112.0, "112"])
def test_bad_resolution_is_refused_with_the_rule(tiny_reconstructor, scene, resolution):
    with pytest.raises(
        ValueError, match=r"resolution must be a multiple of the patch size 14 from 28 to 1036"
    ):
        tiny_reconstructor.reconstruct(images_uint8(scene)[:1], resolution=resolution)


def test_non_finite_outputs_raise(tiny_model, scene):
    broken = copy.deepcopy(tiny_model)
    with torch.no_grad():
        broken.depth_head.scratch.output_conv2[2].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError, match="depth of views"):
        Reconstructor(model=broken).reconstruct(images_uint8(scene)[:2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_all_finite_catches_nan_and_both_infinities(dtype):
    from models.reconstruct import _all_finite

    x = torch.randn(4, 33, 17).to(dtype)
    assert _all_finite(x) and _all_finite(x[:0])
    for bad in (float("nan"), float("inf"), -float("inf")):
        for where in ((0, 0, 0), (3, 32, 16), (2, 5, 7)):
            y = x.clone()
            y[where] = bad
            assert not _all_finite(y), (bad, where)


def test_bad_inputs(tiny_reconstructor, scene):
    imgs = images_uint8(scene)
    with pytest.raises(ValueError, match="images is empty"):
        tiny_reconstructor.reconstruct([])
    with pytest.raises(ValueError, match=r"intrinsics must be \[3, 3\] or \[4, 3, 3\]"):
        tiny_reconstructor.reconstruct(imgs, intrinsics=np.eye(4))
    with pytest.raises(ValueError, match="positive focal"):
        tiny_reconstructor.reconstruct(imgs, intrinsics=np.diag([-1.0, 1.0, 1.0]))
    bad = scene.world_to_camera.copy()
    bad[2, :3, :3] *= 2
    with pytest.raises(ValueError, match=r"poses: views \[2\] do not have a proper rotation"):
        tiny_reconstructor.reconstruct(imgs, poses=bad)
    with pytest.raises(ValueError, match=r"poses must be \[4, 4, 4\]"):
        tiny_reconstructor.reconstruct(imgs, poses=scene.world_to_camera[:3])
    with pytest.raises(ValueError, match="max_anchors must be an integer >= 1"):
        tiny_reconstructor.reconstruct(imgs, max_anchors=0)
    with pytest.raises(ValueError, match="NaN"):
        tiny_reconstructor.reconstruct(imgs, intrinsics=np.full((3, 3), np.nan))


def test_world_points_are_lifted_on_demand_and_points_at_matches_them(tiny_reconstructor, scene):
    from app.services.outputs import select_points
    from renderer.conventions import project_points

    rec = tiny_reconstructor.reconstruct(images_uint8(scene))
    assert rec._world_points is None  # reconstruct itself does not build every view's points
    pts, colors, conf = select_points(rec, max_points=5000)
    assert rec._world_points is None and pts.shape == (5000, 3) and pts.dtype == np.float32
    # each exported point projects back onto its own pixel of its own view, at its depth
    rng = np.random.default_rng(0)
    idx = rng.choice(rec.depth.size, 3000, replace=False)
    subset = rec.points_at(idx)
    view, pixel = np.divmod(idx, rec.depth[0].size)
    for s in range(rec.num_views):
        sel = view == s
        uv, z = project_points(
            torch.from_numpy(subset[sel]).double(),
            torch.from_numpy(rec.world_to_camera[s]),
            torch.from_numpy(rec.K_model[s]),
        )
        w = rec.depth.shape[2]
        want = np.stack([pixel[sel] % w + 0.5, pixel[sel] // w + 0.5], -1)
        np.testing.assert_allclose(uv.numpy(), want, atol=2e-3)
        np.testing.assert_allclose(z.numpy(), rec.depth[s].reshape(-1)[pixel[sel]], rtol=1e-5, atol=1e-6)
    full = rec.world_points  # on first use: every pixel, and the same values
    assert full.shape == rec.depth.shape + (3,) and rec._world_points is full
    np.testing.assert_allclose(full.reshape(-1, 3)[idx], subset, rtol=1e-6, atol=1e-6)


def test_uint8_and_float_inputs_give_the_same_reconstruction(tiny_reconstructor, scene):
    imgs = images_uint8(scene)
    as_float = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0  # the same pixels
    a = tiny_reconstructor.reconstruct(imgs)
    b = tiny_reconstructor.reconstruct(as_float)
    np.testing.assert_array_equal(a.depth, b.depth)  # k / 255 either way: bit-identical network input
    np.testing.assert_array_equal(a.world_to_camera, b.world_to_camera)
    assert a.rgb.dtype == b.rgb.dtype == np.uint8 and np.array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.rgb, np.stack(imgs))
    assert a.colors.dtype == np.float32 and np.array_equal(a.colors, np.stack(imgs) / np.float32(255))
    assert torch.equal(a.gaussians.sh, b.gaussians.sh) and torch.equal(a.gaussians.means, b.gaussians.means)
    # two dtypes never share a forward pass (stacking would promote the uint8 scene to float)
    both = tiny_reconstructor.reconstruct_batch([ReconstructionInput(imgs), ReconstructionInput(as_float)])
    assert [r.report["batch_size"] for r in both] == [1, 1]

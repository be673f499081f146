"""Camera refinement (models.refine): exact geometry on procedural ground truth, and the trained model's
cameras made better through ``Reconstructor.reconstruct(refine=True)``."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.procedural import make_scene
from models.depth_field import FieldOptions
from models.eval.camera import pose_auc, relative_pose_errors
from models.reconstruct import Reconstructor
from models.refine import RefineOptions, match_descriptors, match_pairs, refine_cameras
from tests.models.conftest import images_uint8

WEIGHTS = "models/weights/onepass-tiny.safetensors"


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _relative_to_view0(w2c: np.ndarray) -> np.ndarray:
    return w2c @ np.linalg.inv(w2c[0])


@pytest.fixture(scope="module")
def room():
    """A textured room seen from 4 views (seed 1 matches well), with exact depth and cameras."""
    return make_scene(1, views=4, width=224, height=224, kind="room")


def test_refinement_recovers_exact_cameras_from_perturbed_ones(room):
    gt = _relative_to_view0(room.world_to_camera.astype(np.float64))  # view 0 = identity
    rng = np.random.default_rng(0)
    noisy = gt.copy()
    for v in range(1, 4):  # ~8° of rotation and 30 % of the baseline in translation off
        noisy[v, :3, :3] = _rotation(rng.normal(size=3), 8.0) @ gt[v, :3, :3]
        noisy[v, :3, 3] += 0.3 * np.linalg.norm(gt[v, :3, 3]) * rng.normal(size=3) / np.sqrt(3)
    true_scale = np.array([1.0, 0.7, 1.4, 1.2])  # each view's depth off by its own factor
    depth = room.depth / true_scale[:, None, None]
    rgb = images_uint8(room)
    before = relative_pose_errors(noisy, gt)
    res = refine_cameras(np.stack(rgb), depth, room.valid, room.K.astype(np.float64), noisy)
    after = relative_pose_errors(res.world_to_camera, gt)
    assert res.refined == [1, 2, 3] and res.report["kept_views"] == []
    # registration started from the best-matched view (3, not 0) and was moved back into view 0's frame
    assert res.report["seed_view"] == 3 and res.report["reference_view"] == 0
    # SIFT at 224 px localises to a few tenths of a pixel: sub-degree rotations, ~1-2° directions
    assert before.rotation_deg.max() > 5 and after.rotation_deg.max() < 1.0, after.rotation_deg
    assert after.translation_deg.max() < 3.0, after.translation_deg
    # view 0 is the frame and keeps its depth; the others' depth comes back to the true scale
    np.testing.assert_allclose(res.world_to_camera[0], noisy[0], atol=1e-9)
    np.testing.assert_allclose(res.depth_scale, true_scale, rtol=0.03)
    # the true scene's scale: camera centres within 5 % of their distance from view 0
    centres = lambda T: -np.einsum("sji,sj->si", T[:, :3, :3], T[:, :3, 3])  # noqa: E731
    gap = np.linalg.norm(centres(res.world_to_camera) - centres(gt), axis=1)[1:]
    assert (gap < 0.05 * np.linalg.norm(centres(gt), axis=1)[1:]).all(), gap
    ba = res.report["bundle_adjustment"]
    assert ba["shared_camera"] and ba["reprojection_error_px"][1] < 0.5 and ba["points_kept"] > 100
    # shared, exact intrinsics: bundle adjustment leaves the focal length where it was (within 1 %)
    np.testing.assert_allclose(res.K[:, 0, 0], room.K[:, 0, 0], rtol=0.01)


def test_a_smooth_depth_error_is_corrected_not_just_rescaled(room):
    """Depth maps wrong by a tilt across the image (the network's typical low-frequency error): after
    bundle adjustment each view's depth follows the adjusted points, where one scale per view cannot."""
    gt = _relative_to_view0(room.world_to_camera.astype(np.float64))
    S, h, w = room.depth.shape
    xs = (np.arange(w) + 0.5) / w
    tilt = np.exp(np.array([0.3, -0.3, 0.25, -0.2])[:, None, None] * (xs[None, None, :] - 0.5))  # ×0.86-1.16
    depth = room.depth * tilt
    rgb = np.stack(images_uint8(room))
    K = room.K.astype(np.float64)
    fitted = refine_cameras(rgb, depth, room.valid, K, gt)
    single = refine_cameras(
        rgb, depth, room.valid, K, gt, options=RefineOptions(depth_field=FieldOptions(grid=1))
    )
    assert single.report["depth_correction"]["samples"] == {}
    assert set(fitted.report["depth_correction"]["samples"]) == {"0", "1", "2", "3"}

    def errors(res) -> np.ndarray:  # per view: mean |log(corrected / true)| after the view's own scale
        out = []
        for v in range(S):
            log_err = (
                np.log(depth[v] * res.depth_factor[v])[room.valid[v]] - np.log(room.depth[v])[room.valid[v]]
            )
            out.append(np.abs(log_err - np.median(log_err)).mean())
        return np.array(out)

    # one scale per view leaves the tilt (5-8 % mean error); the fitted field removes about half of it.
    # (In view 2 the adjusted points themselves keep part of the tilt, so it gains nothing there.)
    before, after = errors(single), errors(fitted)
    assert before.min() > 0.045 and after.mean() < 0.75 * before.mean(), (before, after)
    assert (after < 0.7 * before).sum() >= 3, (before, after)
    np.testing.assert_allclose(
        single.depth_factor, single.depth_scale[:, None, None] * np.ones((S, h, w)), rtol=1e-6
    )


def test_refinement_without_bundle_adjustment_is_pnp_only(room):
    gt = _relative_to_view0(room.world_to_camera.astype(np.float64))
    res = refine_cameras(
        np.stack(images_uint8(room)), room.depth, room.valid, room.K.astype(np.float64), gt,
        options=RefineOptions(bundle_adjust=False),
    )  # fmt: skip
    assert res.report["method"] == "sift+pnp" and res.report["bundle_adjustment"] is None
    assert relative_pose_errors(res.world_to_camera, gt).rotation_deg.max() < 1.0  # exact depth, SIFT noise
    np.testing.assert_array_equal(res.K, room.K)


def test_textureless_views_keep_their_predicted_cameras():
    gray = np.full((3, 112, 112, 3), 128, np.uint8)
    depth = np.ones((3, 112, 112), np.float32)
    K = np.tile(np.array([[100.0, 0, 56], [0, 100.0, 56], [0, 0, 1]]), (3, 1, 1))
    w2c = np.tile(np.eye(4), (3, 1, 1))
    w2c[1, 0, 3], w2c[2, 0, 3] = 0.1, 0.2
    res = refine_cameras(gray, depth, np.ones((3, 112, 112), bool), K, w2c)
    assert res.refined == [] and res.report["kept_views"] == [1, 2]
    np.testing.assert_array_equal(res.world_to_camera, w2c)
    np.testing.assert_array_equal(res.depth_scale, [1.0, 1.0, 1.0])


def test_views_that_match_each_other_register_when_view_0_matches_nothing(room):
    """Registration starts from the best-matched pair, not from view 0: with a blank view 0, views 1-3
    still get their relative poses right, following the predicted pose of the view they started from."""
    gt = _relative_to_view0(room.world_to_camera.astype(np.float64))
    rng = np.random.default_rng(1)
    noisy = gt.copy()
    for v in range(1, 4):
        noisy[v, :3, :3] = _rotation(rng.normal(size=3), 8.0) @ gt[v, :3, :3]
    rgb = np.stack(images_uint8(room))
    rgb[0] = 128  # no features in view 0
    res = refine_cameras(rgb, room.depth, room.valid, room.K.astype(np.float64), noisy)
    seed = res.report["seed_view"]
    assert seed != 0 and res.report["reference_view"] == seed
    assert res.refined == sorted({1, 2, 3} - {seed}) and res.report["kept_views"] == []
    np.testing.assert_array_equal(res.world_to_camera[0], noisy[0])  # view 0 is never moved
    np.testing.assert_allclose(res.world_to_camera[seed], noisy[seed], atol=1e-9)  # nor the reference
    errors = relative_pose_errors(res.world_to_camera[1:], gt[1:])  # pairs among views 1-3
    assert relative_pose_errors(noisy[1:], gt[1:]).rotation_deg.max() > 5
    assert errors.rotation_deg.max() < 1.0 and errors.translation_deg.max() < 3.0, errors
    assert res.depth_scale[seed] == pytest.approx(1.0)


def test_reanchoring_keeps_relative_poses_and_sets_the_reference():
    from models.refine import _reanchor

    rng = np.random.default_rng(2)
    w2c = np.tile(np.eye(4), (3, 1, 1))
    for v in range(3):
        w2c[v, :3, :3] = _rotation(rng.normal(size=3), 30.0 * v)
        w2c[v, :3, 3] = rng.normal(size=3)
    scale = np.array([2.0, 0.5, 1.5])
    target = np.eye(4)
    target[:3, 3] = [0.1, 0.2, 0.3]
    moved, new_scale = w2c.copy(), scale.copy()
    _reanchor(moved, new_scale, [0, 1, 2], 1, target)
    np.testing.assert_allclose(moved[1], target, atol=1e-12)
    np.testing.assert_allclose(new_scale, scale / 0.5)
    # same relative rotations; relative translations scaled by 1 / scale[ref]
    errors = relative_pose_errors(moved, w2c)
    assert errors.rotation_deg.max() < 1e-6 and errors.translation_deg.max() < 1e-4
    rel = lambda T, a, b: T[b] @ np.linalg.inv(T[a])  # noqa: E731
    np.testing.assert_allclose(rel(moved, 0, 2)[:3, 3], rel(w2c, 0, 2)[:3, 3] / 0.5, atol=1e-9)


def test_mutual_ratio_matching():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 128)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    perm = rng.permutation(50)
    b = a[perm] + 0.01 * rng.normal(size=(50, 128)).astype(np.float32)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    m = match_descriptors(a, b, ratio=0.8)
    assert len(m) == 50 and (perm[m[:, 1]] == m[:, 0]).all()
    # an ambiguous descriptor (two near-identical candidates) fails the ratio test
    b2 = np.concatenate([b, b[:1] + 1e-4])
    b2 /= np.linalg.norm(b2, axis=1, keepdims=True)
    assert perm[0] not in match_descriptors(a, b2, ratio=0.8)[:, 0]


def test_match_pairs_are_exhaustive_then_linear():
    assert len(match_pairs(4, [0], 2)) == 6
    many = match_pairs(100, [0, 50], 2)
    assert len(many) < 100 * 6 and (0, 99) in many and (49, 50) in many and (3, 40) not in many


@pytest.fixture(scope="module")
def trained():
    return Reconstructor("tiny", weights=WEIGHTS, device="cpu")


def test_refine_improves_the_trained_models_cameras(trained):
    scene = make_scene(3, views=4, width=224, height=224, kind="forward")
    images = images_uint8(scene)
    plain = trained.reconstruct(images)
    refined = trained.reconstruct(images, refine=True)
    auc_plain = pose_auc(relative_pose_errors(plain.world_to_camera, scene.world_to_camera))
    auc_refined = pose_auc(relative_pose_errors(refined.world_to_camera, scene.world_to_camera))
    assert auc_refined > auc_plain + 0.2, (auc_plain, auc_refined)
    report = refined.report["refinement"]
    assert report["status"] == "done" and report["refined_views"] == [1, 2, 3]
    assert refined.pose_sources == ["reference", "refined", "refined", "refined"]
    assert plain.pose_sources == ["predicted"] * 4
    assert refined.report["timings_s"]["refine"] > 0 and plain.report["refinement"] == {"status": "off"}
    # each view's depth map was corrected by a smooth factor fitted to the adjusted points, within ×1.28 of
    # the points' median ratio either way, and closer to the true depth's shape than the network's
    assert set(report["depth_correction"]["samples"]) == {"0", "1", "2", "3"}
    has = plain.depth > 0
    for v in range(4):
        factor = refined.depth[v][has[v]] / plain.depth[v][has[v]]
        assert factor.max() / factor.min() < np.exp(0.5) + 1e-4 and factor.std() / factor.mean() > 0.01, v

    def abs_rel(depth: np.ndarray) -> float:  # per view median-scaled, as the eval scores it
        errs = []
        for v in range(4):
            d, g = depth[v][has[v]], scene.depth[v][has[v]]
            errs.append(np.mean(np.abs(d * np.median(g / d) - g) / g))
        return float(np.mean(errs))

    assert abs_rel(refined.depth) < abs_rel(plain.depth) - 0.02, (
        abs_rel(plain.depth),
        abs_rel(refined.depth),
    )
    np.testing.assert_allclose(refined.world_to_camera[0], plain.world_to_camera[0], atol=1e-6)
    # the Gaussians were built from the refined cameras and depth
    assert not np.allclose(refined.gaussians.means.numpy(), plain.gaussians.means.numpy())


def test_refine_options_reach_the_refinement_one_scale_per_view(trained):
    """``Reconstructor(refine_options=...)``: with a 1×1 lattice each depth map is rescaled as a whole."""
    scene = make_scene(3, views=4, width=224, height=224, kind="forward")
    images = images_uint8(scene)
    single = Reconstructor(
        model=trained.model, refine_options=RefineOptions(depth_field=FieldOptions(grid=1))
    )
    plain = single.reconstruct(images)
    refined = single.reconstruct(images, refine=True)
    assert refined.report["refinement"]["depth_correction"] == {"grid": 1, "samples": {}}
    has = plain.depth > 0
    per_view = [np.median(refined.depth[v][has[v]] / plain.depth[v][has[v]]) for v in range(4)]
    assert per_view[0] == pytest.approx(1.0) and len(set(np.round(per_view, 6))) > 1
    for v in range(4):
        np.testing.assert_allclose(refined.depth[v], plain.depth[v] * per_view[v], rtol=1e-5)


def test_refine_keeps_given_poses_and_given_intrinsics(trained, room):
    images = images_uint8(room)
    posed = trained.reconstruct(images, poses=room.world_to_camera, refine=True)
    # given poses: only the depth is fitted to them (models.pose_depth, tested in test_pose_depth.py)
    assert posed.report["refinement"]["method"] == "sift+triangulation (given cameras)"
    assert posed.pose_sources == ["given"] * 4
    np.testing.assert_allclose(posed.world_to_camera, room.world_to_camera, atol=1e-6)
    fixed = trained.reconstruct(images, intrinsics=room.K, refine=True)
    assert fixed.report["refinement"]["status"] == "done"
    np.testing.assert_allclose(fixed.K, room.K, atol=1e-6)  # given intrinsics are never refined


def test_views_share_one_camera_only_when_their_intrinsics_agree():
    from models.refine import _share_camera

    K = np.tile(np.array([[200.0, 0, 112], [0, 200.0, 112], [0, 0, 1]]), (3, 1, 1))
    assert _share_camera(K, "auto")
    K2 = K.copy()
    K2[2, 0, 0] = 250.0  # one phone zoomed in: 25 % longer focal length
    assert not _share_camera(K2, "auto") and _share_camera(K2, "yes") and not _share_camera(K, "no")
    K3 = K.copy()
    K3[2, 0, 0] = 220.0  # 6 % from the mean: within the network's scatter for one camera, so shared
    assert _share_camera(K3, "auto") and not _share_camera(K3, "auto", focal_tolerance=0.05)
    with pytest.raises(ValueError, match="shared_camera"):
        _share_camera(K, "sometimes")


def test_many_views_match_linearly_and_still_register():
    """Past EXHAUSTIVE_MAX_VIEWS each view is matched with the anchors and its index neighbours only; the
    views still chain into one registration."""
    from models.refine import EXHAUSTIVE_MAX_VIEWS

    S = EXHAUSTIVE_MAX_VIEWS + 4
    scene = make_scene(1, views=S, width=160, height=160, kind="room")
    gt = _relative_to_view0(scene.world_to_camera.astype(np.float64))
    res = refine_cameras(
        np.stack(images_uint8(scene)),
        scene.depth,
        scene.valid,
        scene.K.astype(np.float64),
        gt,
        anchors=[0, 18],
    )
    assert res.report["matched_pairs"] <= len(match_pairs(S, [0, 18], 2)) < S * (S - 1) // 2
    assert len(res.refined) >= 0.9 * (S - 1), res.report["kept_views"]
    errors = relative_pose_errors(res.world_to_camera, gt)
    assert np.median(errors.rotation_deg) < 1.0, np.median(errors.rotation_deg)

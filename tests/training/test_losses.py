"""The translation-direction camera term: what it measures, its invariances, and how it joins the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.eval.camera import relative_pose_errors
from models.training.losses import camera_loss, relative_translations, translation_direction_loss
from renderer.conventions import (
    extrinsics_intrinsics_to_pose_encoding,
    pose_encoding_to_extrinsics_intrinsics,
)


def _random_encodings(batch: int, views: int, seed: int) -> torch.Tensor:
    """Pose encodings of random world→camera rigs (random rotations, translations of ~unit size)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, views, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    q = q * torch.sign(q[..., 3:4])  # scalar-last, w >= 0 as the encoding stores it
    t = torch.randn(batch, views, 3, generator=g, dtype=torch.float64)
    fov = torch.full((batch, views, 2), 0.9, dtype=torch.float64)
    return torch.cat([t, q, fov], -1)


def test_relative_translations_are_the_ones_the_pose_auc_scores() -> None:
    enc = _random_encodings(1, 5, seed=0)
    w2c, _ = pose_encoding_to_extrinsics_intrinsics(enc[0], (64, 64))
    i, j = torch.triu_indices(5, 5, 1)
    expected = (w2c[i] @ torch.linalg.inv(w2c[j]))[:, :3, 3]
    torch.testing.assert_close(relative_translations(enc)[0], expected)


def test_direction_term_is_zero_when_right_blind_to_baseline_length_and_two_when_reversed() -> None:
    gt = _random_encodings(2, 4, seed=1)
    assert float(translation_direction_loss(gt, gt)) == pytest.approx(0.0, abs=1e-9)
    longer = gt.clone()
    longer[..., :3] *= 7.5  # every baseline 7.5x longer: same directions
    assert float(translation_direction_loss(longer, gt)) == pytest.approx(0.0, abs=1e-9)
    reversed_ = gt.clone()
    reversed_[..., :3] *= -1  # every camera on the other side: opposite directions
    assert float(translation_direction_loss(reversed_, gt)) == pytest.approx(2.0, abs=1e-9)


def test_direction_term_is_the_chord_of_the_evaluated_angle() -> None:
    """For one pair, the term is 2·sin(θ/2) with θ the translation angle of models.eval.camera."""
    gt = _random_encodings(1, 2, seed=2)
    pred = gt.clone()
    pred[..., 1, :3] += torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    w2c_pred, _ = pose_encoding_to_extrinsics_intrinsics(pred[0], (64, 64))
    w2c_gt, _ = pose_encoding_to_extrinsics_intrinsics(gt[0], (64, 64))
    theta = float(relative_pose_errors(w2c_pred.numpy(), w2c_gt.numpy()).translation_deg[0])
    assert 1.0 < theta < 90.0
    expected = 2 * math.sin(math.radians(theta) / 2)
    assert float(translation_direction_loss(pred, gt)) == pytest.approx(expected, rel=1e-6)


def test_pairs_without_a_baseline_are_skipped() -> None:
    gt = _random_encodings(1, 3, seed=3)
    gt[0, 2] = gt[0, 1]  # views 1 and 2 are the same camera: their pair has no direction
    pred = _random_encodings(1, 3, seed=4)
    rel_gt, rel_pred = relative_translations(gt)[0], relative_translations(pred)[0]
    assert float(rel_gt[2].norm()) < 1e-12  # pair (1, 2) in triu order (0,1), (0,2), (1,2)
    unit = torch.nn.functional.normalize
    expected = (unit(rel_pred[:2], dim=-1) - unit(rel_gt[:2], dim=-1)).norm(dim=-1).mean()
    torch.testing.assert_close(translation_direction_loss(pred, gt), expected)
    assert float(translation_direction_loss(pred[:, :1], gt[:, :1])) == 0.0  # one view: no pairs


def test_camera_loss_adds_the_weighted_direction_term_and_trains_rotation_and_translation() -> None:
    gt = _random_encodings(2, 4, seed=5).float()
    pred = (gt + 0.1 * torch.randn_like(gt)).requires_grad_(True)
    plain = camera_loss([pred.detach()], gt)
    assert float(plain["loss_Tdir"]) == 0.0  # weight 0: VGGT's loss exactly, term not computed
    with_dir = camera_loss([pred.detach()], gt, direction_weight=0.5)
    direction = translation_direction_loss(pred, gt)
    assert float(with_dir["loss_Tdir"]) == pytest.approx(float(direction.detach()), rel=1e-6)
    assert float(with_dir["loss_camera"]) == pytest.approx(
        float(plain["loss_camera"]) + 5.0 * 0.5 * float(direction.detach()), rel=1e-6
    )
    (grad,) = torch.autograd.grad(direction, pred)
    assert grad[..., :3].abs().sum() > 0 and grad[..., 3:7].abs().sum() > 0
    assert grad[..., 7:].abs().sum() == 0  # field of view plays no part in directions
    with pytest.raises(ValueError, match="direction_weight"):
        camera_loss([pred], gt, direction_weight=-1.0)


def test_encoding_round_trip_used_by_the_tests_is_exact() -> None:
    enc = _random_encodings(1, 3, seed=6)[0]
    w2c, K = pose_encoding_to_extrinsics_intrinsics(enc, (64, 64))
    np.testing.assert_allclose(extrinsics_intrinsics_to_pose_encoding(w2c, K, (64, 64)).numpy(), enc.numpy())


def test_sign_invariant_rotation_scores_q_and_minus_q_alike() -> None:
    gt = _random_encodings(1, 3, seed=7).float()
    negated = gt.clone()
    negated[..., 3:7] *= -1  # the same rotations, written with w <= 0
    assert float(camera_loss([negated], gt)["loss_R"]) > 0.1  # VGGT's L1 calls them far apart
    assert float(camera_loss([negated], gt, sign_invariant_rotation=True)["loss_R"]) == 0.0
    nearby = gt + 0.01  # away from the sign flip both forms agree
    plain, invariant = camera_loss([nearby], gt), camera_loss([nearby], gt, sign_invariant_rotation=True)
    assert float(invariant["loss_R"]) == pytest.approx(float(plain["loss_R"]), rel=1e-5)
    # Turns of 179.9° and 180.1° about z differ by 0.2°, but with w >= 0 their quaternions have opposite
    # axes: predicting one for the other costs VGGT's L1 ~0.5 and the invariant loss ~4e-4.
    half = math.radians(179.9) / 2
    pred, target = gt.clone(), gt.clone()
    pred[0, 1, 3:7] = torch.tensor([0.0, 0.0, math.sin(half), math.cos(half)])
    target[0, 1, 3:7] = torch.tensor([0.0, 0.0, -math.sin(half), math.cos(half)])
    assert float(camera_loss([pred], target)["loss_R"]) > 0.15  # 2/4 on one of 3 views
    assert float(camera_loss([pred], target, sign_invariant_rotation=True)["loss_R"]) < 1e-3

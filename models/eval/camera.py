"""Camera-pose metrics as VGGT reports them: RRA, RTA and AUC@30 over all view pairs.

For every unordered pair ``i < j`` the relative transform ``T_i · T_j⁻¹`` (world→camera matrices) is formed
for prediction and ground truth. The rotation error is the geodesic angle between the two relative
rotations; the translation error is the angle between the two relative translation *directions*, taken
sign-agnostic (``min(θ, 180° − θ)``) because the direction of a unit baseline is what a scale-free method can
recover. AUC@T is the mean, over the thresholds ``1°, 2°, …, T°``, of the fraction of pairs whose
``max(rotation error, translation error)`` is below the threshold — identical to VGGT's ``calculate_auc_np``
(a 1° histogram on ``[0, T]`` and the mean of its cumulative sum).

A view a method failed to register (COLMAP) gets 180° for both errors in every pair it takes part in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PoseErrors", "pair_indices", "relative_pose_errors", "pose_auc", "accuracy_at"]

#: Error assigned to pairs that involve an unregistered view (degrees).
UNREGISTERED_ERROR_DEG = 180.0


@dataclass
class PoseErrors:
    """Per-pair errors in degrees, each ``[M]`` with ``M = S·(S−1)/2``."""

    rotation_deg: np.ndarray
    translation_deg: np.ndarray

    @property
    def max_deg(self) -> np.ndarray:
        return np.maximum(self.rotation_deg, self.translation_deg)

    def summary(self, max_threshold: int = 30) -> dict[str, float]:
        """AUC@``max_threshold``, RRA/RTA at 5/15/30° and median errors, as plain floats."""
        out = {f"auc{max_threshold}": pose_auc(self, max_threshold)}
        for t in (5, 15, 30):
            out[f"rra{t}"] = accuracy_at(self.rotation_deg, t)
            out[f"rta{t}"] = accuracy_at(self.translation_deg, t)
        out["rot_err_median_deg"] = float(np.median(self.rotation_deg))
        out["trans_err_median_deg"] = float(np.median(self.translation_deg))
        return out


def pair_indices(num_views: int) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs ``i < j`` of ``num_views`` views, as two ``[M]`` index arrays."""
    if num_views < 2:
        raise ValueError(f"num_views must be >= 2 to form pairs, got {num_views}")
    i, j = np.triu_indices(num_views, k=1)
    return i, j


def _check_poses(name: str, T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{name} must be [S, 4, 4] or [S, 3, 4] world-to-camera matrices, got {T.shape}")
    if T.shape[1] == 3:
        bottom = np.tile(np.array([[[0.0, 0.0, 0.0, 1.0]]]), (T.shape[0], 1, 1))
        T = np.concatenate([T, bottom], 1)
    return T


def _rigid_inverse(T: np.ndarray) -> np.ndarray:
    R, t = T[:, :3, :3], T[:, :3, 3:]
    out = np.zeros_like(T)
    out[:, :3, :3] = R.transpose(0, 2, 1)
    out[:, :3, 3:] = -R.transpose(0, 2, 1) @ t
    out[:, 3, 3] = 1
    return out


def _rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotation matrices ``[M, 3, 3]`` → ``[M]`` degrees.

    Uses ``‖Ra − Rb‖_F = 2√2·sin(θ/2)``, which stays accurate for small angles (the trace/arccos form loses
    half the digits there).
    """
    chord = np.linalg.norm(Ra - Rb, axis=(-2, -1)) / (2.0 * np.sqrt(2.0))
    return np.degrees(2.0 * np.arcsin(np.clip(chord, 0.0, 1.0)))


def _direction_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sign-agnostic angle between vectors ``[M, 3]`` → ``[M]`` in [0, 90]; a zero vector gives 90°."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > 1e-12) & (nb > 1e-12)
    # atan2(|a×b|, |a·b|) is accurate at all angles, unlike arccos near 0.
    ang = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.abs((a * b).sum(-1))))
    return np.where(ok, ang, 90.0)


def relative_pose_errors(
    pred_world_to_camera: np.ndarray,
    gt_world_to_camera: np.ndarray,
    registered: np.ndarray | None = None,
) -> PoseErrors:
    """Relative rotation and translation-direction errors over all view pairs.

    Args:
        pred_world_to_camera: ``[S, 4, 4]`` (or ``[S, 3, 4]``) predicted world→camera; any world frame and
            scale (relative poses are invariant to a common Sim(3)).
        gt_world_to_camera: ``[S, 4, 4]`` ground truth.
        registered: optional ``[S]`` bool; pairs touching a ``False`` view score 180° on both errors.

    Returns:
        :class:`PoseErrors` with ``[S·(S−1)/2]`` arrays in degrees.
    """
    pred = _check_poses("pred_world_to_camera", pred_world_to_camera)
    gt = _check_poses("gt_world_to_camera", gt_world_to_camera)
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(
            f"pred and gt must have the same number of views, got {pred.shape[0]} and {gt.shape[0]}"
        )
    i, j = pair_indices(gt.shape[0])
    rel_pred = pred[i] @ _rigid_inverse(pred[j])
    rel_gt = gt[i] @ _rigid_inverse(gt[j])
    rot = _rotation_angle_deg(rel_pred[:, :3, :3], rel_gt[:, :3, :3])
    trans = _direction_angle_deg(rel_pred[:, :3, 3], rel_gt[:, :3, 3])
    bad = ~np.isfinite(rot) | ~np.isfinite(trans)
    if registered is not None:
        registered = np.asarray(registered, dtype=bool)
        if registered.shape != (gt.shape[0],):
            raise ValueError(f"registered must be [S] = [{gt.shape[0]}] bools, got shape {registered.shape}")
        bad |= ~(registered[i] & registered[j])
    rot = np.where(bad, UNREGISTERED_ERROR_DEG, rot)
    trans = np.where(bad, UNREGISTERED_ERROR_DEG, trans)
    return PoseErrors(rotation_deg=rot, translation_deg=trans)


def pose_auc(errors: PoseErrors, max_threshold: int = 30) -> float:
    """AUC of the accuracy curve of ``max(rot, trans)`` error over thresholds ``1..max_threshold`` degrees."""
    if max_threshold < 1:
        raise ValueError(f"max_threshold must be >= 1 degree, got {max_threshold}")
    err = errors.max_deg
    if err.size == 0:
        raise ValueError("pose_auc needs at least one pair of views")
    hist, _ = np.histogram(err, bins=np.arange(max_threshold + 1))
    return float(np.mean(np.cumsum(hist / err.size)))


def accuracy_at(errors_deg: np.ndarray, threshold_deg: float) -> float:
    """Fraction of errors strictly below ``threshold_deg`` (RRA@t / RTA@t)."""
    errors_deg = np.asarray(errors_deg, dtype=np.float64)
    if errors_deg.size == 0:
        raise ValueError("accuracy_at needs at least one error value")
    return float(np.mean(errors_deg < threshold_deg))

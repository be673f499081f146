"""Bringing a prediction into the caller's frame when the caller gives camera poses.

The network predicts cameras in its own frame (view 0 at the origin) and at its own, relative scale. Given
world→camera poses, we fit the similarity ``pred → given`` on the camera centres (Umeyama; two views fix only
the scale, one view nothing), scale the predicted depth by its factor, and then use the given cameras, so
points and Gaussians re-derived from depth land in the caller's frame and scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from renderer.conventions import camera_centers, transform_points, umeyama_sim3


@dataclass(frozen=True)
class Alignment:
    """``given ≈ scale · R · pred + t`` on camera centres, and the fit's quality."""

    scale: float
    R: Tensor  # [3, 3]
    t: Tensor  # [3]
    method: str  # "sim3" | "baseline-scale" | "none"
    rms_error: float  # RMS centre distance after alignment, in the caller's units
    relative_error: float  # rms_error / RMS distance of the given centres to their mean (0 when undefined)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "scale": self.scale,
            "rms_error": self.rms_error,
            "relative_error": self.relative_error,
        }


def align_cameras(pred_world_to_camera: Tensor, given_world_to_camera: Tensor) -> Alignment:
    """Fit the similarity taking predicted camera centres onto the given ones.

    Args:
        pred_world_to_camera, given_world_to_camera: ``[S, 4, 4]``.
    """
    pred = camera_centers(pred_world_to_camera.double())
    given = camera_centers(given_world_to_camera.double())
    S = pred.shape[0]
    spread = (given - given.mean(0)).norm(dim=-1)
    eye = torch.eye(3, dtype=torch.float64)
    if S >= 3 and float(spread.max()) > 1e-9 and float((pred - pred.mean(0)).norm(dim=-1).max()) > 1e-12:
        s, R, t = umeyama_sim3(pred, given)
        method = "sim3"
    elif S >= 2 and float((pred[1:] - pred[:1]).norm(dim=-1).max()) > 1e-12:
        j = int((pred[1:] - pred[:1]).norm(dim=-1).argmax()) + 1
        s = (given[j] - given[0]).norm() / (pred[j] - pred[0]).norm()
        R, t, method = eye, given[0] - s * pred[0], "baseline-scale"
    else:
        s, R, t, method = torch.tensor(1.0, dtype=torch.float64), eye, given[0] - pred[0], "none"
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3], T[:3, 3] = float(s) * R, t
    moved = transform_points(T, pred)
    rms = float(((moved - given) ** 2).sum(-1).mean().sqrt())
    ref = float((spread**2).mean().sqrt())
    return Alignment(float(s), R, t, method, rms, rms / ref if ref > 1e-12 else 0.0)

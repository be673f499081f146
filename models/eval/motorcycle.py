"""The Middlebury 2014 *Motorcycle* stereo pair bundled with scikit-image, as a real-photo benchmark scene.

``skimage.data.stereo_motorcycle()`` returns the left and right images (500×741, RGB uint8, the benchmark's
default exposure down-sampled 4× by ``downscale_local_mean``) and the left view's ground-truth disparity
(``inf`` where unknown). Calibration for these down-sampled images, quoted in scikit-image's docstring and
equal to the benchmark's ``calib.txt`` for *Motorcycle* divided by 4:

=====================  ============  =========================================
focal length ``f``     994.978 px    (3979.911 / 4)
principal point x      311.193 px    left camera ``cx0`` (1244.772 / 4)
principal point y      254.877 px    both cameras ``cy`` (1019.507 / 4)
``doffs``              31.086 px     ``cx1 − cx0`` (124.343 / 4)
baseline               193.001 mm    right camera centre at ``+x`` in the left camera frame
=====================  ============  =========================================

Depth follows the benchmark's README: ``Z = baseline · f / (d + doffs)``; a right-image column is
``x_right = x_left − d`` (checked: warping the right image by ``−d`` matches the left image to 7.3 grey levels
mean absolute error, ``+d`` to 44.8 — scikit-image's docstring example writes the sign the other way).
Middlebury's principal points are 0-based pixel indices; our convention puts pixel centres at +0.5, so we
add 0.5 (the 4× down-sampling itself shifts centres by 0.375 px, below the calibration's precision).
Ground-truth depth exists for the left view only; the right view's depth is marked invalid.
"""

from __future__ import annotations

import numpy as np

from models.eval.ground_truth import GroundTruth

__all__ = ["MOTORCYCLE_CALIBRATION", "load_motorcycle", "disparity_to_depth"]

#: Calibration of scikit-image's down-sampled Motorcycle pair (see module docstring), baseline in metres.
MOTORCYCLE_CALIBRATION = {
    "focal_px": 994.978,
    "cx0_px": 311.193,
    "cy_px": 254.877,
    "doffs_px": 31.086,
    "baseline_m": 0.193001,
}


def disparity_to_depth(
    disparity: np.ndarray, focal_px: float, baseline_m: float, doffs_px: float
) -> np.ndarray:
    """``Z = baseline · f / (d + doffs)`` in metres; non-finite or non-positive denominators give ``nan``."""
    d = np.asarray(disparity, dtype=np.float64) + doffs_px
    with np.errstate(divide="ignore", invalid="ignore"):
        z = baseline_m * focal_px / d
    return np.where(np.isfinite(z) & (d > 0), z, np.nan)


def load_motorcycle() -> GroundTruth:
    """The two views with intrinsics, world→camera (left camera = world) and the left depth in metres."""
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    c = MOTORCYCLE_CALIBRATION
    H, W = disparity.shape
    depth = np.zeros((2, H, W), dtype=np.float64)
    z = disparity_to_depth(disparity, c["focal_px"], c["baseline_m"], c["doffs_px"])
    valid = np.zeros((2, H, W), dtype=bool)
    valid[0] = np.isfinite(z)
    depth[0] = np.nan_to_num(z, nan=0.0)
    K = np.tile(np.eye(3), (2, 1, 1))
    K[:, 0, 0] = K[:, 1, 1] = c["focal_px"]
    K[0, 0, 2] = c["cx0_px"] + 0.5
    K[1, 0, 2] = c["cx0_px"] + c["doffs_px"] + 0.5
    K[:, 1, 2] = c["cy_px"] + 0.5
    w2c = np.tile(np.eye(4), (2, 1, 1))
    w2c[1, 0, 3] = -c["baseline_m"]  # right camera centre at (+B, 0, 0)
    images = np.stack([left, right]).astype(np.float32) / 255.0
    return GroundTruth(images=images, depth=depth, valid=valid, K=K, world_to_camera=w2c, name="motorcycle")

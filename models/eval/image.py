"""Image metrics for novel-view synthesis: PSNR and SSIM on images in [0, 1].

SSIM follows Wang et al. 2004 as used by 3DGS/NVS papers: Gaussian window σ = 1.5 (11×11), K1 = 0.01,
K2 = 0.03, population covariances, data range 1, averaged over channels and pixels. We call scikit-image's
implementation with exactly those options rather than re-deriving it.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

__all__ = ["psnr", "ssim"]


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be [H, W, 3] images, got {pred.shape} and {gt.shape}")
    return np.clip(pred, 0.0, 1.0), np.clip(gt, 0.0, 1.0)


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """``10·log10(1 / MSE)`` in dB for ``[H, W, 3]`` images in [0, 1] (inf when identical)."""
    pred, gt = _check(pred, gt)
    mse = float(np.mean((pred - gt) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean structural similarity of ``[H, W, 3]`` images in [0, 1] (needs H, W ≥ 11)."""
    pred, gt = _check(pred, gt)
    if min(pred.shape[:2]) < 11:
        raise ValueError(f"ssim needs images of at least 11×11 pixels, got {pred.shape[:2]}")
    return float(
        structural_similarity(
            pred, gt, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )
    )  # fmt: skip

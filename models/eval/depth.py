"""Depth metrics: AbsRel and δ<1.25, after per-view median scaling or one global scale.

Scale-free methods predict depth up to an unknown factor, so predictions are rescaled before scoring:

* ``"median"`` — each view by its own ``median(gt) / median(pred)`` over valid pixels (monocular protocol);
* ``"global"`` — every view by one shared factor, usually the scale of the Sim(3) that aligns the predicted
  point cloud to the ground truth (:func:`models.eval.points.align_points_sim3`); a rigid motion does not
  change depths, only the scale does.

Shapes: ``[S, H, W]`` (``S`` views). Pixels count when ``valid`` is set and both depths are finite and > 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["depth_metrics", "median_scale_per_view"]

DELTA_THRESHOLD = 1.25


def _check(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, ...]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"pred and gt depth must both be [S, H, W], got {pred.shape} and {gt.shape}")
    mask = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred > 0)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != gt.shape:
            raise ValueError(f"valid must match the depth shape {gt.shape}, got {valid.shape}")
        mask &= valid
    return pred, gt, mask


def median_scale_per_view(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``[S]`` factors ``median(gt)/median(pred)`` over each view's valid pixels (NaN for an empty view)."""
    pred, gt, mask = _check(pred, gt, valid)
    out = np.full(pred.shape[0], np.nan)
    for s in range(pred.shape[0]):
        m = mask[s]
        if m.any():
            out[s] = np.median(gt[s][m]) / np.median(pred[s][m])
    return out


def depth_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    scaling: str = "median",
    scale: float | None = None,
) -> dict[str, float]:
    """AbsRel = mean(|s·pred − gt| / gt) and δ<1.25 = mean(max(s·pred/gt, gt/(s·pred)) < 1.25).

    Args:
        pred, gt: ``[S, H, W]`` z-depths.
        valid: optional ``[S, H, W]`` bool mask of pixels with ground truth.
        scaling: ``"median"`` (per view), ``"global"`` (one factor ``scale`` for all views) or ``"none"``.
        scale: the shared factor for ``"global"`` (required then, ignored otherwise).

    Returns:
        ``{"abs_rel", "delta1", "num_pixels"}``; means over all valid pixels of all views.
    """
    pred, gt, mask = _check(pred, gt, valid)
    if scaling == "median":
        factors = median_scale_per_view(pred, gt, mask)
    elif scaling == "global":
        if scale is None or not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scaling='global' needs a finite positive scale, got {scale}")
        factors = np.full(pred.shape[0], float(scale))
    elif scaling == "none":
        factors = np.ones(pred.shape[0])
    else:
        raise ValueError(f"scaling must be 'median', 'global' or 'none', got {scaling!r}")
    n = int(mask.sum())
    if n == 0:
        raise ValueError("depth_metrics: no pixel has valid ground truth and a positive prediction")
    scaled = pred * np.nan_to_num(factors, nan=1.0)[:, None, None]
    p, g = scaled[mask], gt[mask]
    abs_rel = float(np.mean(np.abs(p - g) / g))
    delta1 = float(np.mean(np.maximum(p / g, g / p) < DELTA_THRESHOLD))
    return {"abs_rel": abs_rel, "delta1": delta1, "num_pixels": n}

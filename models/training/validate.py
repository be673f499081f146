"""Periodic validation during training: a few held-out procedural scenes scored like the benchmark.

Validation seeds are :data:`VAL_SEEDS` (900,000 + i): below the training range (≥ 1,000,000) and far from
the benchmark's default seeds (0 …), so neither training nor the reported benchmark touches them. Each scene
is reconstructed with :class:`models.reconstruct.Reconstructor` exactly as users run the model (eval mode,
no gradients), and scored by :func:`models.eval.scoring.score_reconstruction`. RNG state is forked, so
validating never changes the training trajectory (resume stays exact).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["VAL_SEEDS", "VAL_COLUMNS", "validate"]

VAL_SEEDS = tuple(900_000 + i for i in range(8))
VAL_COLUMNS = (
    "step",
    "elapsed_s",
    "val_s",
    "views",
    "auc30",
    "rra15",
    "rta15",
    "abs_rel_median",
    "psnr",
    "ssim",
)


def validate(
    model: nn.Module, *, views: int = 4, size: int = 224, seeds: tuple[int, ...] = VAL_SEEDS
) -> dict[str, Any]:
    """Mean metrics over ``seeds`` (pooled-pair AUC@30) with ``views`` input views at ``size`` px."""
    from models.eval.camera import PoseErrors, pose_auc, relative_pose_errors
    from models.eval.scoring import score_reconstruction
    from models.eval.suite import procedural_ground_truth
    from models.reconstruct import Reconstructor

    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    rows, pairs = [], []
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            rec = Reconstructor(model.cfg.name, model=model)
            for seed in seeds:
                gt = procedural_ground_truth(seed, views, size, targets=1)
                images = [np.clip(np.round(im * 255), 0, 255).astype(np.uint8) for im in gt.images]
                r = rec.reconstruct(images)
                rows.append(score_reconstruction(r, gt))
                pairs.append(relative_pose_errors(r.world_to_camera, gt.world_to_camera).max_deg)
    finally:
        model.train(was_training)
    err = np.concatenate(pairs)
    out: dict[str, Any] = {"views": views, "auc30": pose_auc(PoseErrors(err, err), 30)}
    for key in ("rra15", "rta15", "abs_rel_median", "psnr", "ssim"):
        vals = [r[key] for r in rows if np.isfinite(r.get(key, np.nan))]
        out[key] = float(np.mean(vals)) if vals else float("nan")
    out["val_s"] = round(time.perf_counter() - t0, 2)
    return out

"""Gaussian head: a DPT head whose per-pixel output parameterises one 3D Gaussian.

Raw channels per pixel (see :func:`models.gaussians.head_gaussians` for the activations):
``[depth offset (1), opacity logit (1), log scale (3), rotation (4), SH coefficients (3·(deg+1)²)]``.
Everything is camera-relative (offset along the pixel ray, scale in units of the pixel footprint, rotation in
the camera frame), so Gaussians follow whatever cameras are finally used (predicted or caller-given).
"""

from __future__ import annotations

from models.config import GaussianHeadConfig
from models.heads.dpt_head import DPTHead


def gaussian_channels(sh_degree: int) -> int:
    """Raw channels per pixel for an SH degree."""
    return 1 + 1 + 3 + 4 + 3 * (sh_degree + 1) ** 2


class GaussianHead(DPTHead):
    def __init__(self, dim_in: int, cfg: GaussianHeadConfig, *, patch_size: int) -> None:
        super().__init__(dim_in, cfg.dpt, gaussian_channels(cfg.sh_degree), patch_size=patch_size)
        self.sh_degree = cfg.sh_degree

"""Typed containers passed between packages. Shapes use the renderer's letters (N Gaussians, K SH bases)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class Gaussians:
    """A set of 3D Gaussians in world coordinates, in gsplat's activated parameterisation.

    Attributes:
        means: ``[N, 3]`` world positions.
        quats: ``[N, 4]`` rotations, **wxyz**, need not be unit.
        scales: ``[N, 3]`` linear (not log) standard deviations along the rotated axes.
        opacities: ``[N]`` in [0, 1] (activated, not logits).
        sh: ``[N, K, 3]`` spherical-harmonic coefficients, ``K = (degree + 1)²``; band 0 is the DC term with
            gsplat's convention ``rgb = 0.28209479 · sh0 + 0.5``.
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"Gaussians.{name} must have shape {list(shape)}, got {list(got)}")
        if self.sh.dim() != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ValueError(f"Gaussians.sh must have shape [N, K, 3] with N={n}, got {list(self.sh.shape)}")
        k = self.sh.shape[1]
        if int(round(k**0.5)) ** 2 != k or k > 16:
            raise ValueError(f"Gaussians.sh has K={k} bases; K must be 1, 4, 9 or 16")

    @property
    def sh_degree(self) -> int:
        return int(round(self.sh.shape[1] ** 0.5)) - 1

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def rgb(self) -> Tensor:
        """``[N, 3]`` base colour in [0, 1] from the DC band."""
        return (SH_C0 * self.sh[:, 0] + 0.5).clamp(0, 1)

    @staticmethod
    def rgb_to_sh0(rgb: Tensor) -> Tensor:
        """``[N, 3]`` colour → ``[N, 1, 3]`` DC coefficients."""
        return ((rgb - 0.5) / SH_C0)[:, None, :]

    def to(self, *args, **kwargs) -> Gaussians:
        return Gaussians(**{f.name: getattr(self, f.name).to(*args, **kwargs) for f in fields(self)})

    def select(self, mask_or_index: Tensor) -> Gaussians:
        return Gaussians(**{f.name: getattr(self, f.name)[mask_or_index] for f in fields(self)})

    @staticmethod
    def concat(items: list[Gaussians]) -> Gaussians:
        return Gaussians(
            **{f.name: torch.cat([getattr(g, f.name) for g in items], 0) for f in fields(Gaussians)}
        )


#: Zeroth-order real spherical harmonic, 1 / (2·sqrt(pi)).
SH_C0 = 0.28209479177387814

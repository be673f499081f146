"""Random Gaussian scenes for the renderer tests (small, seeded, float64 unless asked otherwise)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from renderer.conventions import look_at


@dataclass
class Scene:
    """Tensors in :func:`renderer.rasterize`'s argument order; ``batch`` leading dims, ``C`` cameras."""

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor
    viewmats: Tensor
    Ks: Tensor
    width: int
    height: int

    def args(self) -> tuple:
        return (
            self.means, self.quats, self.scales, self.opacities, self.colors, self.viewmats, self.Ks,
            self.width, self.height,
        )  # fmt: skip

    def params(self) -> list[Tensor]:
        return [self.means, self.quats, self.scales, self.opacities, self.colors]


def make_scene(
    seed: int = 0,
    n: int = 80,
    cameras: int = 2,
    batch: tuple[int, ...] = (),
    width: int = 40,
    height: int = 30,
    sh_degree: int | None = None,
    channels: int = 3,
    dtype: torch.dtype = torch.float64,
    scale: float = 0.12,
) -> Scene:
    """Gaussians in a unit ball 4 units in front of cameras that look at it from nearby positions."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*batch, *shape, generator=g, dtype=torch.float64)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*batch, *shape, generator=g, dtype=torch.float64)

    means = randn(n, 3) * 0.5
    quats = randn(n, 4)
    scales = scale * torch.exp(randn(n, 3) * 0.4)
    opacities = 0.15 + 0.8 * rand(n)
    if sh_degree is None:
        colors = rand(n, channels)
    else:
        colors = randn(n, 16, 3) * 0.4
    views, Ks = [], []
    for c in range(cameras):
        angle = 0.35 * c
        eye = torch.tensor([4.0 * math.sin(angle), -0.3 * c, -4.0 * math.cos(angle)], dtype=torch.float64)
        views.append(look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, -1.0, 0.0])))
        f = 0.9 * width
        Ks.append(torch.tensor([[f, 0, width / 2 + c], [0, f * 1.05, height / 2 - c], [0, 0, 1]]))
    viewmats = torch.stack(views).to(torch.float64).expand(*batch, cameras, 4, 4).clone()
    Ks_t = torch.stack(Ks).to(torch.float64).expand(*batch, cameras, 3, 3).clone()
    to = lambda t: t.to(dtype)  # noqa: E731
    return Scene(
        to(means), to(quats), to(scales), to(opacities), to(colors), to(viewmats), to(Ks_t), width, height
    )


def flatten_batch(s: Scene, batch: tuple[int, ...]) -> list[Tensor]:
    """means, quats, scales, opacities, viewmats, Ks with the batch dims merged into one ``B``."""
    B = math.prod(batch)
    tensors = (s.means, s.quats, s.scales, s.opacities, s.viewmats, s.Ks)
    return [t.reshape(B, *t.shape[len(batch) :]) for t in tensors]


def pull(outputs: list[Tensor], params: list[Tensor], seed: int = 0, masks: list | None = None) -> list:
    """Gradients of ``Σ <output, v>`` for one seeded random cotangent ``v`` per output (gsplat's test idiom).

    ``masks`` (broadcastable to each output, or None) zero the cotangent where an output is undefined.
    """
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for i, out in enumerate(outputs):
        v = torch.randn(out.shape, generator=g, dtype=out.dtype)
        if masks is not None and masks[i] is not None:
            v = v * masks[i]
        total = total + (out * v).sum()
    return list(torch.autograd.grad(total, params, allow_unused=True))

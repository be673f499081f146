"""Convenience layer over :func:`renderer.rasterize` for :class:`~renderer.types.Gaussians` and warm-up."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from renderer.backends import resolve_backend
from renderer.options import RasterMeta
from renderer.rasterize import rasterize
from renderer.types import Gaussians

log = logging.getLogger("renderer")


@dataclass
class RenderResult:
    """Images of ``C`` cameras.

    Attributes:
        rgb: ``[C, H, W, 3]`` colour over the background (not clamped).
        alpha: ``[C, H, W]`` accumulated opacity.
        depth: ``[C, H, W]`` expected z-depth (Σ w·z / alpha; 0 where nothing was hit).
        meta: the :class:`RasterMeta` of the call.
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    meta: RasterMeta


def render_gaussians(
    gaussians: Gaussians,
    world_to_camera: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    background: Tensor | None = None,  # [3] or [C, 3]
    backend: str = "auto",
) -> RenderResult:
    """Render a :class:`Gaussians` set (SH degree taken from it) into ``C`` cameras, RGB + expected depth.

    Differentiable w.r.t. the Gaussians' tensors on every backend.
    """
    if not isinstance(gaussians, Gaussians):
        raise TypeError(f"gaussians must be a renderer.types.Gaussians, got {type(gaussians).__name__}")
    g = gaussians
    dtype = g.means.dtype
    viewmats = world_to_camera.to(g.means.device, dtype)
    Ks = K.to(g.means.device, dtype)
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"world_to_camera must have shape [C, 4, 4], got {list(world_to_camera.shape)}")
    if Ks.shape != (viewmats.shape[0], 3, 3):
        raise ValueError(f"K must have shape [{viewmats.shape[0]}, 3, 3], got {list(K.shape)}")
    bg = None
    if background is not None:
        bg = torch.as_tensor(background, dtype=dtype, device=g.means.device)
        if bg.shape not in ((3,), (viewmats.shape[0], 3)):
            raise ValueError(f"background must have shape [3] or [C, 3], got {list(bg.shape)}")
        bg = bg.expand(viewmats.shape[0], 3)
    colors, alpha, meta = rasterize(
        g.means,
        g.quats,
        g.scales,
        g.opacities,
        g.sh,
        viewmats,
        Ks,
        width,
        height,
        sh_degree=g.sh_degree,
        backgrounds=bg,
        render_mode="RGB+ED",
        backend=backend,
    )
    a = alpha[..., 0]
    depth = torch.where(a > 0, colors[..., 3], torch.zeros_like(a))
    return RenderResult(rgb=colors[..., :3], alpha=a, depth=depth, meta=meta)


def warmup(device: str | torch.device = "cpu", backend: str = "auto") -> str:
    """Render a tiny scene once on ``device`` so JIT compilation (numba cache load, gsplat kernels) happens
    now rather than inside the first request. Returns the backend name that rendered it."""
    device = torch.device(device)
    name, reason = resolve_backend(backend, device)
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    n = 64
    means = (torch.rand(n, 3, generator=g) - 0.5) + torch.tensor([0.0, 0.0, 3.0])
    gauss = Gaussians(
        means=means,
        quats=torch.randn(n, 4, generator=g),
        scales=torch.full((n, 3), 0.05),
        opacities=torch.full((n,), 0.7),
        sh=torch.randn(n, 4, 3, generator=g) * 0.3,
    ).to(device)
    K = torch.tensor([[[40.0, 0, 32], [0, 40.0, 32], [0, 0, 1]]], device=device)
    w2c = torch.eye(4, device=device)[None]
    out = render_gaussians(gauss, w2c, K, 64, 64, backend=name)
    float(out.rgb.sum())  # forces completion on asynchronous devices
    log.info(
        "renderer: warm-up on %s with backend %s (%s) took %.2f s",
        device,
        name,
        reason,
        time.perf_counter() - t0,
    )
    return name

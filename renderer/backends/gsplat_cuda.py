"""The gsplat backend: a thin adapter onto ``gsplat.rasterization`` for CUDA tensors.

gsplat's PyPI wheel ships no compiled kernels; the first kernel call JIT-compiles them (minutes, needs
nvcc), which is why :func:`renderer.warmup` exists. Availability is probed once per process.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from renderer.options import RasterMeta, RenderOptions


@functools.lru_cache(maxsize=1)
def gsplat_status() -> tuple[bool, str]:
    """``(available, reason)``: whether gsplat's CUDA kernels can run in this process, and why not."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available to torch"
    try:
        import gsplat  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return False, f"gsplat is not importable ({type(e).__name__}: {e})"
    try:
        from gsplat.cuda._backend import _C
    except Exception as e:  # JIT compilation failure surfaces here
        return False, f"gsplat's CUDA kernels failed to load ({type(e).__name__}: {e})"
    if _C is None:
        return False, "gsplat found no compiled kernels and no CUDA toolkit (nvcc) to build them"
    return True, "gsplat CUDA kernels loaded"


def rasterize_gsplat(
    means: Tensor,  # [..., N, 3]
    quats: Tensor,  # [..., N, 4]
    scales: Tensor,  # [..., N, 3]
    opacities: Tensor,  # [..., N]
    colors: Tensor,  # [..., (C,) N, D] or [..., (C,) N, K, 3]
    viewmats: Tensor,  # [..., C, 4, 4]
    Ks: Tensor,  # [..., C, 3, 3]
    backgrounds: Tensor | None,  # [..., C, D] colour channels (gsplat adds the depth channel's zero)
    opts: RenderOptions,
) -> tuple[Tensor, Tensor, RasterMeta]:
    """Render with ``gsplat.rasterization`` (dense, ``packed=False``, classic mode) on CUDA."""
    from gsplat import rasterization

    dtype = means.dtype  # gsplat's kernels are float32: cast in (differentiably) and results back
    f32 = [t.float() for t in (means, quats, scales, opacities, colors, viewmats, Ks)]
    backgrounds = None if backgrounds is None else backgrounds.float()
    render, alpha, info = rasterization(
        *f32,
        opts.width,
        opts.height,
        near_plane=opts.near_plane,
        far_plane=opts.far_plane,
        eps2d=opts.eps2d,
        sh_degree=opts.sh_degree,
        backgrounds=backgrounds,
        render_mode=opts.render_mode,
        packed=False,
        tile_size=opts.tile_size,
    )
    keys = (
        "radii",
        "means2d",
        "depths",
        "conics",
        "opacities",
        "tiles_per_gauss",
        "isect_offsets",
        "flatten_ids",
    )
    meta = RasterMeta(
        backend="gsplat",
        width=opts.width,
        height=opts.height,
        tile_size=opts.tile_size,
        tile_width=info["tile_width"],
        tile_height=info["tile_height"],
        n_batches=math.prod(means.shape[:-2]),
        n_cameras=viewmats.shape[-3],
        **{k: info.get(k) for k in keys},
        extra={k: v for k, v in info.items() if k not in keys and k not in ("width", "height", "tile_size")},
    )
    return render.to(dtype), alpha.to(dtype), meta

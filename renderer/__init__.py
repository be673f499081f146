"""onepass renderer: camera conventions, 3D Gaussian rasterization (CPU and gsplat), exporters.

The lowest layer: imports only torch, numpy and file-format libraries, never ``models`` or ``app``.
Shape letters follow gsplat: ``N`` Gaussians, ``C`` render cameras, ``K`` SH bases, ``D`` channels,
leading ``...`` batch dims.

Public API:

* :func:`rasterize` — gsplat-compatible rasterization, ``backend`` "auto" | "cpu" | "gsplat" | "torch".
* :func:`render_gaussians` → :class:`RenderResult` — RGB, alpha and expected depth of a :class:`Gaussians`.
* :func:`warmup` — one tiny render so JIT compilation happens at start-up; returns the backend used.
"""

from renderer.options import RasterMeta, RenderOptions
from renderer.rasterize import rasterize
from renderer.render import RenderResult, render_gaussians, warmup
from renderer.types import SH_C0, Gaussians

__all__ = [
    "SH_C0",
    "Gaussians",
    "RasterMeta",
    "RenderOptions",
    "RenderResult",
    "rasterize",
    "render_gaussians",
    "warmup",
]

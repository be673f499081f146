"""onepass renderer: camera conventions, 3D Gaussian rasterization (CPU and gsplat), exporters.

The lowest layer: imports only torch, numpy and file-format libraries, never ``models`` or ``app``.
Shape letters follow gsplat: ``N`` Gaussians, ``C`` render cameras, ``K`` SH bases, ``D`` channels,
leading ``...`` batch dims.
"""

from renderer.types import SH_C0, Gaussians

__all__ = ["SH_C0", "Gaussians"]

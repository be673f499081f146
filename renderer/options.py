"""Typed options, constants and the result metadata of :func:`renderer.rasterize`.

The constants are gsplat's (v1.5 CUDA kernels, also the INRIA rasterizer's), so a scene renders the same
through either backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from torch import Tensor

#: A Gaussian whose alpha at a pixel is below this is skipped there (1/255, gsplat's ``ALPHA_THRESHOLD``).
ALPHA_THRESHOLD = 1.0 / 255.0
#: Per-Gaussian alpha is capped here so transmittance never reaches exactly 0 (gsplat: 0.999).
ALPHA_MAX = 0.999
#: A pixel stops when adding the next Gaussian would drop its transmittance to this or below; that
#: Gaussian is not composited (gsplat's exclusive ``next_T <= 1e-4`` stop).
TRANSMITTANCE_MIN = 1e-4
#: Screen-space extent in standard deviations of the 2D footprint (gsplat: 3.33), tightened per Gaussian
#: to ``sqrt(2 ln(255 · opacity))`` when opacities are known (beyond it alpha < 1/255 anyway).
EXTENT_SIGMAS = 3.33
#: Side of the square screen tiles used for binning (pixels).
TILE_SIZE = 16
#: Largest accepted image side; larger values are almost always a units mistake.
MAX_IMAGE_SIDE = 8192

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
RENDER_MODES: tuple[str, ...] = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
BACKENDS: tuple[str, ...] = ("auto", "cpu", "gsplat", "torch")


@dataclass(frozen=True)
class RenderOptions:
    """Everything :func:`renderer.rasterize` needs besides tensors, validated once.

    Attributes:
        width, height: image size in pixels (1 … 8192).
        near_plane, far_plane: Gaussians whose camera-space z is outside ``(near, far)`` are culled.
        eps2d: added to the diagonal of every 2D covariance (pixels², a low-pass filter).
        sh_degree: ``None`` when colours are post-activation features, else the SH degree to evaluate.
        render_mode: ``"RGB"``, ``"D"`` (accumulated z), ``"ED"`` (expected z), ``"RGB+D"``, ``"RGB+ED"``.
        tile_size: binning tile side in pixels.
    """

    width: int
    height: int
    near_plane: float = 0.01
    far_plane: float = 1e10
    eps2d: float = 0.3
    sh_degree: int | None = None
    render_mode: str = "RGB"
    tile_size: int = TILE_SIZE

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if not 1 <= value <= MAX_IMAGE_SIDE:
                raise ValueError(f"{name} must be in [1, {MAX_IMAGE_SIDE}], got {value}")
        if self.render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {self.render_mode!r}")
        if self.sh_degree is not None and (
            isinstance(self.sh_degree, bool)
            or not isinstance(self.sh_degree, int)
            or not 0 <= self.sh_degree <= 3
        ):
            raise ValueError(f"sh_degree must be None or an int in [0, 3], got {self.sh_degree!r}")
        if not (0.0 <= self.near_plane < self.far_plane):
            raise ValueError(
                f"near_plane and far_plane must satisfy 0 <= near_plane < far_plane, "
                f"got near_plane={self.near_plane}, far_plane={self.far_plane}"
            )
        if not self.eps2d >= 0.0:
            raise ValueError(f"eps2d must be >= 0, got {self.eps2d}")

    @property
    def with_depth(self) -> bool:
        """Whether a z channel is composited (all modes except ``"RGB"``)."""
        return self.render_mode != "RGB"

    @property
    def expected_depth(self) -> bool:
        """Whether the depth channel is divided by alpha (``"ED"``, ``"RGB+ED"``)."""
        return self.render_mode in ("ED", "RGB+ED")

    @property
    def tiles_wh(self) -> tuple[int, int]:
        """``(tile_width, tile_height)``: tiles across and down."""
        ts = self.tile_size
        return (self.width + ts - 1) // ts, (self.height + ts - 1) // ts


@dataclass
class RasterMeta:
    """Intermediate results of one :func:`renderer.rasterize` call (gsplat's ``meta``, typed).

    Also readable like gsplat's dict (``meta["radii"]``, ``"means2d" in meta``, ``meta.keys()``), so code
    written for gsplat keeps working. ``means2d`` is the tensor the images were rendered from: call
    ``meta.means2d.retain_grad()`` before ``backward()`` to read screen-space gradients (densification).

    Shapes (``...`` are the batch dims of the call, ``C`` cameras, ``N`` Gaussians):
        radii ``[..., C, N, 2]`` int32 (0 = culled), means2d ``[..., C, N, 2]``, depths ``[..., C, N]``,
        conics ``[..., C, N, 3]`` (upper triangle of the inverse 2D covariance), opacities ``[..., C, N]``,
        tiles_per_gauss ``[..., C, N]``, isect_offsets ``[..., C, tile_height, tile_width]``,
        flatten_ids ``[n_isects]`` (indices into the flattened ``[..., C, N]``, grouped by tile, front to
        back within a tile).
    """

    backend: str
    width: int
    height: int
    tile_size: int
    tile_width: int
    tile_height: int
    n_batches: int
    n_cameras: int
    n_nonfinite: int = 0
    radii: Tensor | None = None
    means2d: Tensor | None = None
    depths: Tensor | None = None
    conics: Tensor | None = None
    opacities: Tensor | None = None
    tiles_per_gauss: Tensor | None = None
    isect_offsets: Tensor | None = None
    flatten_ids: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def keys(self) -> list[str]:
        names = [f.name for f in fields(self) if f.name != "extra"]
        return names + list(self.extra)

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key == "extra" or key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

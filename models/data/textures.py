"""Textures for procedural scenes: real photos shipped with scikit-image, procedural patterns, mip sampling.

Every texture is a ``[S, S, 3]`` float32 RGB image in ``[0, 1]``, ``S = TEXTURE_SIZE``. Surfaces address it
in *tile units* (1.0 = one texture width) with **mirrored-repeat** wrapping, so any image, tileable or not, is
continuous across tile borders. Sampling is trilinear over a box-filtered mip pyramid; the level comes from
each pixel's footprint on the surface, which keeps far and grazing surfaces from aliasing.

Photos come only from files bundled inside the scikit-image wheel (no download at run time): see
:data:`PHOTO_NAMES`. Grey photos (brick, grass, gravel, …) are tinted per material.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = [
    "PHOTO_NAMES",
    "PROCEDURAL_KINDS",
    "TEXTURE_SIZE",
    "TextureStack",
    "load_photo",
    "lod_from_footprint",
    "cached_photo",
    "cached_photo_pyramid",
    "mip_pyramid",
    "procedural_texture",
    "random_color",
]

#: Side of every texture's finest mip level, in texels.
TEXTURE_SIZE = 256

#: scikit-image sample images that ship inside the package (checked: none of these triggers a download).
PHOTO_NAMES: tuple[str, ...] = (
    "brick",
    "grass",
    "gravel",
    "coffee",
    "chelsea",
    "astronaut",
    "camera",
    "rocket",
    "coins",
    "moon",
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
    "page",
    "text",
    "clock",
)

#: Photos that are mostly texture (good for large surfaces such as floors and walls).
SURFACE_PHOTOS: tuple[str, ...] = ("brick", "grass", "gravel", "moon", "coins", "immunohistochemistry")

#: Names of the procedural pattern generators, see :func:`procedural_texture`.
PROCEDURAL_KINDS: tuple[str, ...] = (
    "checker",
    "stripes",
    "noise",
    "dots",
    "bricks",
    "voronoi",
    "marble",
    "grid",
)


# ------------------------------------------------------------------------------------------------ photos
def load_photo(name: str, size: int = TEXTURE_SIZE) -> np.ndarray:
    """One bundled scikit-image photo as a ``[size, size, 3]`` float32 texture in ``[0, 1]``.

    The largest centred square is cropped and resized with Pillow's antialiasing filter; grey images are
    replicated to three channels and an alpha channel, if any, is dropped.
    """
    if name not in PHOTO_NAMES:
        raise ValueError(f"name must be one of {PHOTO_NAMES}, got {name!r}")
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, -1)
    arr = arr[..., :3].astype(np.uint8)
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = Image.fromarray(arr[top : top + s, left : left + s]).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


@functools.cache
def cached_photo(name: str) -> np.ndarray:
    """:func:`load_photo` at :data:`TEXTURE_SIZE`, decoded once per process and name (read-only array)."""
    arr = load_photo(name)
    arr.flags.writeable = False
    return arr


# ----------------------------------------------------------------------------------- procedural patterns
def random_color(rng: np.random.Generator, *, sat: tuple[float, float] = (0.2, 0.9)) -> np.ndarray:
    """A random saturated-ish RGB colour ``[3]`` in ``[0, 1]`` (uniform hue, bounded saturation/value)."""
    h = rng.random()
    s = rng.uniform(*sat)
    v = rng.uniform(0.35, 1.0)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return (v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)).astype(np.float32)


def _periodic_value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise ``[size, size]`` in ``[0, 1]`` on a ``cells×cells`` lattice that wraps around."""
    lattice = rng.random((cells, cells))
    x = np.arange(size) * (cells / size)
    i0 = np.floor(x).astype(np.int64)
    f = x - i0
    f = f * f * (3 - 2 * f)
    i1 = (i0 + 1) % cells
    i0 = i0 % cells
    rows0, rows1 = lattice[i0], lattice[i1]  # [size, cells] interpolated along y first
    rows = rows0 * (1 - f)[:, None] + rows1 * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]


def _fbm(rng: np.random.Generator, size: int, base_cells: int, octaves: int) -> np.ndarray:
    """Fractal sum of periodic value noise, normalised to ``[0, 1]``."""
    out = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = min(base_cells * 2**o, size)
        out += amp * _periodic_value_noise(rng, size, cells)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.stack([random_color(rng) for _ in range(n)])


def _lerp_colors(t: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Map ``t [H, W]`` in ``[0, 1]`` through a piecewise-linear colour ramp ``[n, 3]`` → ``[H, W, 3]``."""
    grid = np.linspace(0.0, 1.0, colors.shape[0])
    return np.stack([np.interp(t, grid, colors[:, ch]) for ch in range(3)], -1)


def procedural_texture(rng: np.random.Generator, kind: str, size: int = TEXTURE_SIZE) -> np.ndarray:
    """One random texture of pattern ``kind`` (see :data:`PROCEDURAL_KINDS`) as ``[size, size, 3]`` float32.

    Patterns repeat an integer number of times across the tile, so they also tile seamlessly without
    mirroring. All randomness comes from ``rng``.
    """
    if kind not in PROCEDURAL_KINDS:
        raise ValueError(f"kind must be one of {PROCEDURAL_KINDS}, got {kind!r}")
    u = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(u, u, indexing="ij")
    if kind == "checker":
        n = int(rng.choice([2, 4, 6, 8]))
        c = _palette(rng, 2)
        mask = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(bool)
        img = np.where(mask[..., None], c[0], c[1])
    elif kind == "stripes":
        a, b = int(rng.integers(0, 4)), int(rng.integers(1, 4))
        freq = int(rng.integers(1, 5))
        c = _palette(rng, int(rng.integers(2, 4)))
        phase = (a * xx + b * yy) * freq % 1.0
        sharp = rng.uniform(4, 40)
        t = 0.5 + 0.5 * np.tanh(sharp * np.sin(2 * np.pi * phase))
        img = _lerp_colors(t, c)
    elif kind == "noise":
        t = _fbm(rng, size, int(rng.choice([2, 4, 8])), int(rng.integers(3, 6)))
        img = _lerp_colors(t, _palette(rng, int(rng.integers(2, 4))))
    elif kind == "dots":
        n = int(rng.choice([2, 3, 4, 6, 8]))
        r = rng.uniform(0.15, 0.45)
        c = _palette(rng, 2)
        d = np.hypot((xx * n) % 1.0 - 0.5, (yy * n) % 1.0 - 0.5)
        t = np.clip((d - r) * size / n * 0.5 + 0.5, 0, 1)  # ~2-texel soft edge
        img = c[0] * (1 - t[..., None]) + c[1] * t[..., None]
    elif kind == "bricks":
        rows = int(rng.choice([4, 6, 8]))
        cols = int(rng.choice([2, 3, 4]))
        mortar = rng.uniform(0.04, 0.12)
        base = random_color(rng)
        mortar_c = random_color(rng, sat=(0.0, 0.2))
        ry = yy * rows
        row = np.floor(ry).astype(np.int64)
        rx = xx * cols + 0.5 * (row % 2)
        col = np.floor(rx).astype(np.int64) % cols
        jitter = rng.uniform(0.75, 1.15, size=(rows, cols, 1))
        fy, fx = ry - row, rx - np.floor(rx)
        in_mortar = (np.minimum(fy, 1 - fy) < mortar / 2) | (
            np.minimum(fx, 1 - fx) < mortar / 2 * cols / rows
        )
        img = np.where(in_mortar[..., None], mortar_c, np.clip(base * jitter[row % rows, col], 0, 1))
    elif kind == "voronoi":
        n = int(rng.integers(6, 24))
        pts = rng.random((n, 2))
        c = _palette(rng, n)
        # Wrap-around distances from every texel to every seed point, separable in x and y: [n, S, S].
        dx = np.abs(u[None, :] - pts[:, 0, None]).astype(np.float32)
        dy = np.abs(u[None, :] - pts[:, 1, None]).astype(np.float32)
        dx, dy = np.minimum(dx, 1 - dx), np.minimum(dy, 1 - dy)
        d2 = dy[:, :, None] ** 2 + dx[:, None, :] ** 2
        label = d2.argmin(0)
        best = np.sqrt(np.take_along_axis(d2, label[None], 0)[0])
        np.put_along_axis(d2, label[None], np.inf, 0)
        second = np.sqrt(d2.min(0))
        edge = np.clip((second - best) * size / 3.0, 0, 1)[..., None]
        img = c[label] * (0.35 + 0.65 * edge)
    elif kind == "marble":
        noise = _fbm(rng, size, 4, 5)
        a, b = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (a * xx + b * yy) + rng.uniform(3, 9) * noise)
        img = _lerp_colors(t, _palette(rng, 2))
    else:  # grid
        n = int(rng.choice([2, 4, 8]))
        w = rng.uniform(0.03, 0.15)
        c = _palette(rng, 2)
        fx, fy = (xx * n) % 1.0, (yy * n) % 1.0
        line = (np.minimum(fx, 1 - fx) < w / 2) | (np.minimum(fy, 1 - fy) < w / 2)
        img = np.where(line[..., None], c[0], c[1])
    return np.clip(img, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------ mip sampling
def mip_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """Box-filtered mip levels of one ``[S, S, 3]`` texture (``S`` a power of two ≥ 4) down to ``4×4``.

    Levels are returned channels-first, ``[3, S_l, S_l]`` float32, the layout :class:`TextureStack` gathers
    from.
    """
    levels = [np.ascontiguousarray(np.moveaxis(np.asarray(image, dtype=np.float32), -1, 0))]
    while levels[-1].shape[1] > 4:
        x = levels[-1]
        levels.append(0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]))
    return levels


@functools.cache
def cached_photo_pyramid(name: str) -> tuple[np.ndarray, ...]:
    """:func:`mip_pyramid` of :func:`cached_photo` (built once per process and name)."""
    levels = tuple(mip_pyramid(cached_photo(name)))
    for lv in levels:
        lv.flags.writeable = False
    return levels


def _fold(u: Tensor) -> Tensor:
    """Mirrored-repeat wrap of a coordinate in tile units onto ``[0, 1]`` (period 2, continuous)."""
    return 1.0 - (torch.remainder(u, 2.0) - 1.0).abs()


class TextureStack:
    """``T`` textures of side ``S`` with their mip pyramids, laid out for fast gathers on one device.

    Level ``l`` has side ``S_l = S / 2**l`` (box filtered) down to 4 texels and is stored channels-first and
    flattened, ``[3, T * S_l * S_l]``. Built from per-texture pyramids as returned by :func:`mip_pyramid`.
    """

    def __init__(self, pyramids: list[list[np.ndarray] | tuple[np.ndarray, ...]], device=None) -> None:
        if not pyramids:
            raise ValueError("a texture stack needs at least one texture")
        shapes = {p[0].shape for p in pyramids}
        if len(shapes) != 1:
            raise ValueError(f"all textures must have the same size, got {sorted(shapes)}")
        self.sizes = [lv.shape[1] for lv in pyramids[0]]
        self.flat: list[Tensor] = []
        for level in range(len(self.sizes)):
            flat = np.concatenate([p[level].reshape(3, -1) for p in pyramids], 1)
            self.flat.append(torch.as_tensor(flat, device=device))

    @staticmethod
    def from_images(images: np.ndarray, device=None) -> TextureStack:
        """Build from ``[T, S, S, 3]`` float images (``S`` a power of two ≥ 4)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
            raise ValueError(f"images must be [T, S, S, 3], got {list(images.shape)}")
        size = images.shape[1]
        if size < 4 or size & (size - 1):
            raise ValueError(f"texture size must be a power of two >= 4, got {size}")
        return TextureStack([mip_pyramid(im) for im in images], device=device)

    @property
    def size(self) -> int:
        return self.sizes[0]

    @property
    def num_levels(self) -> int:
        return len(self.sizes)

    def _bilinear(self, level: int, tex: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """``[3, n]`` bilinear samples at folded coordinates ``u, v`` in ``[0, 1]`` (edge texels clamp, which
        is exactly mirrored-repeat addressing after the fold)."""
        s = self.sizes[level]
        x = u * s - 0.5
        y = v * s - 0.5
        x0f, y0f = torch.floor(x), torch.floor(y)
        fx, fy = x - x0f, y - y0f
        x0 = x0f.long()
        y0 = y0f.long()
        xa, xb = x0.clamp(0, s - 1), (x0 + 1).clamp(0, s - 1)
        ya, yb = y0.clamp(0, s - 1) * s, (y0 + 1).clamp(0, s - 1) * s
        base = tex * (s * s)
        row_a, row_b = base + ya, base + yb
        idx = torch.cat([row_a + xa, row_a + xb, row_b + xa, row_b + xb])
        c = self.flat[level].index_select(1, idx).view(3, 4, -1)
        top = c[:, 0] + (c[:, 1] - c[:, 0]) * fx
        bottom = c[:, 2] + (c[:, 3] - c[:, 2]) * fx
        return top + (bottom - top) * fy

    def sample(self, tex: Tensor, u: Tensor, v: Tensor, lod: Tensor) -> Tensor:
        """Trilinear samples ``[N, 3]``.

        Args:
            tex: ``[N]`` long texture index.
            u, v: ``[N]`` coordinates in tile units (1.0 = one texture width), any real value; wrapped with
                mirrored repeat.
            lod: ``[N]`` mip level as a real number (0 = finest); clamped to the pyramid.
        """
        n_levels = self.num_levels
        u, v = _fold(u), _fold(v)
        lod = lod.clamp(0, n_levels - 1)
        l0 = torch.floor(lod).long()
        frac = lod - l0.to(lod.dtype)
        out = torch.empty(3, tex.shape[0], dtype=self.flat[0].dtype, device=tex.device)
        for level in range(n_levels):
            sel = l0 == level
            idx = torch.nonzero(sel).squeeze(1)
            if idx.numel() == 0:
                continue
            if idx.numel() == tex.shape[0]:  # common case: one level for everything
                t, uu, vv, f = tex, u, v, frac
            else:
                t, uu, vv, f = (x.index_select(0, idx) for x in (tex, u, v, frac))
            c0 = self._bilinear(level, t, uu, vv)
            if level + 1 < n_levels:
                c0 = c0 + (self._bilinear(level + 1, t, uu, vv) - c0) * f
            if idx.numel() == tex.shape[0]:
                out = c0
            else:
                out.index_copy_(1, idx, c0)
        return out.T


def lod_from_footprint(footprint: Tensor, tile_world: Tensor, size: int) -> Tensor:
    """Mip level for a pixel footprint (world units) on a texture whose tile spans ``tile_world`` units."""
    texels = footprint * (size / tile_world.clamp_min(1e-9))
    return torch.log2(texels.clamp_min(1e-9)).clamp_min(0)

"""Image loading and VGGT-style preprocessing.

:func:`load_image` turns any common file into ``[H, W, 3]`` uint8 RGB: EXIF orientation applied; grayscale,
palette, CMYK converted; alpha composited on white (as VGGT does); 16-bit and 32-bit integer or float images
rescaled to 8 bits.

:func:`preprocess_images` follows VGGT's "crop" mode: width := ``target_width``, height := ``round(h ·
target_width / w / patch) · patch`` (bicubic), then a centre crop of the height to ``target_width`` if it is
larger (so portrait images become square). Images of different resulting sizes are padded with white,
centred, to the largest height and width. Each image's :class:`ImageTransform` maps its original pixel
coordinates to model-input coordinates, so intrinsics can be carried both ways.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from renderer.conventions import crop_intrinsics, scale_intrinsics

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageLoadError(ValueError):
    """An image file could not be read or converted (the message names the file)."""


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Rescale a single-channel array of any depth to uint8 (by the dtype's range; floats by [0, 1])."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16 or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        top = 65535.0 if arr.max(initial=0) <= 65535 else float(np.iinfo(arr.dtype).max)
        return np.clip(np.round(arr.astype(np.float64) / top * 255.0), 0, 255).astype(np.uint8)
    if arr.dtype.kind == "f":
        finite = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        scale = 255.0 if finite.max(initial=0) <= 1.0 else 1.0
        return np.clip(np.round(finite * scale), 0, 255).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """A decoded PIL image (EXIF already applied) → ``[H, W, 3]`` uint8 RGB."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _to_uint8(np.asarray(im))
        return np.repeat(gray[..., None], 3, -1)
    if mode == "P":
        im = im.convert("RGBA")
    elif mode == "LA" or mode == "PA":
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def decoded_to_rgb(im: Image.Image) -> np.ndarray:
    """A loaded PIL image → ``[H, W, 3]`` uint8 RGB with its EXIF orientation applied: what
    :func:`load_image` returns for the file (the service uses it on images it already decoded)."""
    return pil_to_rgb(ImageOps.exif_transpose(im))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file → ``[H, W, 3]`` uint8 RGB (see module doc for the conversions).

    Raises:
        FileNotFoundError: naming the path.
        ImageLoadError: the file is not a decodable image.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            im.load()
            rgb = decoded_to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"{p}: cannot read as an image ({e})") from e
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageLoadError(f"{p}: image is empty ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb


def list_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand directories (sorted image files inside) and keep files in the given order."""
    out: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        else:
            out.append(p)
    return out


@dataclass(frozen=True)
class ImageTransform:
    """How one original image became its model-input image: resize, crop, pad (in that order).

    Model coordinates ``x_m = x_o · sx − crop_left + pad_left`` (likewise y), with pixel centres at +0.5.
    """

    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    crop_top: int
    crop_left: int
    content_hw: tuple[int, int]  # after the crop
    pad_top: int
    pad_left: int
    model_hw: tuple[int, int]  # after the padding

    def K_to_model(self, K: Tensor) -> Tensor:
        """Intrinsics ``[..., 3, 3]`` of the original image → of the model-input image."""
        K = scale_intrinsics(K, self.original_hw, self.resized_hw)
        K = crop_intrinsics(K, self.crop_top, self.crop_left)
        return crop_intrinsics(K, -self.pad_top, -self.pad_left)

    def K_to_original(self, K: Tensor) -> Tensor:
        """Intrinsics ``[..., 3, 3]`` of the model-input image → of the original image."""
        K = crop_intrinsics(K, self.pad_top, self.pad_left)
        K = crop_intrinsics(K, -self.crop_top, -self.crop_left)
        return scale_intrinsics(K, self.resized_hw, self.original_hw)

    def valid_mask(self) -> np.ndarray:
        """``[H_m, W_m]`` bool: True on image content, False on padding."""
        m = np.zeros(self.model_hw, dtype=bool)
        h, w = self.content_hw
        m[self.pad_top : self.pad_top + h, self.pad_left : self.pad_left + w] = True
        return m


def as_unit_float(images: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` (what :func:`preprocess_images` gives for uint8 images) → float32 ``[0, 1]``
    (``k / 255``, the same values as decoding to float first); float images pass through."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


def _target_hw(h: int, w: int, target_width: int, patch: int) -> tuple[int, int]:
    new_h = round(h * target_width / w / patch) * patch  # Python round, as VGGT
    return max(new_h, patch), target_width


def _resize(img: np.ndarray | Tensor, hw: tuple[int, int]) -> np.ndarray | Tensor:
    """uint8 ``[H, W, 3]`` (PIL bicubic) → uint8 ``[h, w, 3]``; float ``[3, H, W]`` (bicubic, antialias) →
    float ``[3, h, w]``. Already ``h×w``: as is (bicubic at scale 1 samples the pixel centres)."""
    if isinstance(img, np.ndarray):
        if img.shape[:2] == hw:
            return img
        return np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))
    if tuple(img.shape[-2:]) == hw:
        return img.float().clamp(0, 1)
    out = F.interpolate(img[None].float(), size=hw, mode="bicubic", antialias=True, align_corners=False)
    return out[0].clamp(0, 1)


def preprocess_images(
    images: list[np.ndarray] | Tensor, *, target_width: int, patch: int = 14
) -> tuple[Tensor, list[ImageTransform]]:
    """Images → model input ``[S, 3, H, W]`` and one :class:`ImageTransform` each.

    uint8 arrays give a uint8 batch (padding 255: white), which the network makes float ``k / 255`` a few
    views at a time (a quarter of the memory of a float batch: 10 MB instead of 39 MB for 64 views at
    224²); a float tensor gives a float batch in [0, 1]. Each image is resized straight into its slot of
    the batch, so no second copy of the whole scene exists at any time.

    Args:
        images: list of ``[H, W, 3]`` uint8 arrays (any sizes), or a float tensor ``[S, 3, H, W]`` in [0, 1].
        target_width: model input width (518 for vggt-1b, 224 for tiny); a multiple of ``patch``.
        patch: patch size.
    """
    if isinstance(images, Tensor):
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"images tensor must be float [S, 3, H, W] in [0, 1], got {list(images.shape)} {images.dtype}"
            )
        items: list[np.ndarray | Tensor] = list(images.detach().cpu())
        sizes = [tuple(t.shape[-2:]) for t in items]
    elif isinstance(images, (list, tuple)):
        items = []
        for i, img in enumerate(images):
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                got = f"{type(img).__name__} {getattr(img, 'dtype', '')} {list(getattr(img, 'shape', []))}"
                raise ValueError(f"images[{i}] must be a [H, W, 3] uint8 array, got {got}")
            items.append(img)
        sizes = [img.shape[:2] for img in items]
    else:
        raise TypeError(
            f"images must be a list of uint8 arrays or a [S, 3, H, W] tensor, got {type(images).__name__}"
        )
    if len(items) == 0:
        raise ValueError("images is empty: need at least one image")
    if target_width % patch:
        raise ValueError(f"target_width={target_width} must be a multiple of patch={patch}")

    parts = []  # sizes first: the batch is allocated once and every image resized straight into it
    for h, w in sizes:
        if h < 1 or w < 1:
            raise ValueError(f"image of size {w}x{h} is empty")
        rh, rw = _target_hw(h, w, target_width, patch)
        crop_top = (rh - target_width) // 2 if rh > target_width else 0
        content = (target_width if crop_top else rh, rw)
        parts.append(((h, w), (rh, rw), crop_top, content))
    Hm = max(p[3][0] for p in parts)
    Wm = max(p[3][1] for p in parts)
    uint8 = not isinstance(images, Tensor)
    batch = torch.full((len(items), 3, Hm, Wm), 255 if uint8 else 1.0, dtype=torch.uint8 if uint8 else None)
    slots = batch.numpy() if uint8 else batch  # uint8: copy with numpy (the arrays may be read-only)
    transforms = []
    for i, (img, (orig, rs, crop_top, content)) in enumerate(zip(items, parts, strict=True)):
        t = _resize(img, rs)
        t = t.transpose(2, 0, 1) if uint8 else t  # [3, h, w]
        top, left = (Hm - content[0]) // 2, (Wm - content[1]) // 2
        slots[i, :, top : top + content[0], left : left + content[1]] = t[:, crop_top : crop_top + content[0]]
        transforms.append(ImageTransform(orig, rs, crop_top, 0, content, top, left, (Hm, Wm)))
    return batch, transforms

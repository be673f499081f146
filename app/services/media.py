"""What an uploaded file is, and whether an image is one we accept.

The client's ``Content-Type`` is ignored (it is whatever the client claims); the kind comes from the
file's first bytes, and images are opened with Pillow, header first (size check before any decoding, so
a decompression bomb costs nothing), then decoded once to prove the data is whole.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from app.core.errors import ApiError

IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sniff_kind(path: Path) -> str:
    """``"zip"``, ``"video"``, ``"image"`` or ``"unknown"`` from the first bytes of the file."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if (
        head[4:8] == b"ftyp"
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    ):
        return "video"
    if (
        head[:3] == b"\xff\xd8\xff"
        or head[:8] == b"\x89PNG\r\n\x1a\n"
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    ):
        return "image"
    return "unknown"


def video_suffix(path: Path) -> str:
    """A file extension matching the video container in ``path`` (uploads are stored without one)."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ".mkv"  # Matroska and WebM
    if head[:4] == b"RIFF":
        return ".avi"
    return ".mov" if head[8:10] == b"qt" else ".mp4"


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str  # JPEG, PNG or WEBP
    pixels: Any = None  # what ``check_image``'s ``decode`` made of the decoded image, if it was given one


def check_image(
    path: Path, name: str, max_pixels: int, decode: Callable[[Image.Image], Any] | None = None
) -> ImageInfo:
    """Open ``path`` (shown to the client as ``name``) and check it end to end.

    ``decode``, if given, is applied to the fully decoded image and its result kept in
    :attr:`ImageInfo.pixels` (the synchronous route hands the pixels to the worker: no second decode).

    Raises :class:`ApiError` 415 (not an accepted image format), 413 (more than ``max_pixels`` pixels or a
    decompression bomb) or 422 (a truncated or corrupt image).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ApiError(413, f"'{name}' is a decompression bomb (too many pixels for its size): {e}") from e
    except UnidentifiedImageError as e:
        raise ApiError(415, f"'{name}' is not an image Pillow can read; accepted: JPEG, PNG, WebP") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ApiError(422, f"'{name}' is a corrupt image: {e}") from e
    with im:
        if im.format not in IMAGE_FORMATS:
            raise ApiError(415, f"'{name}' is a {im.format} image; accepted: JPEG, PNG, WebP")
        w, h = im.size
        if w < 1 or h < 1:
            raise ApiError(422, f"'{name}' has an empty size {w}x{h}")
        if w * h > max_pixels:
            raise ApiError(
                413, f"'{name}' has {w}x{h} = {w * h} pixels, more than {max_pixels} (ONEPASS_MAX_PIXELS)"
            )
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise ApiError(422, f"'{name}' is a corrupt or truncated image: {e}") from e
        return ImageInfo(w, h, im.format, None if decode is None else decode(im))


def safe_name(filename: str, index: int, suffix: str | None = None) -> str:
    """A file name safe to use on disk and in URLs: last path component, ``[A-Za-z0-9._-]`` only.

    ``suffix`` (e.g. ``.jpg``) replaces the extension when the name has none we know.
    """
    base = PurePosixPath(filename.replace("\\", "/")).name
    base = _SAFE.sub("_", base).strip("._")
    if not base:
        base = f"image_{index:03d}"
    stem, dot, ext = base.rpartition(".")
    stem, ext = (stem, f".{ext.lower()}") if dot else (base, "")
    if suffix is not None and ext not in IMAGE_SUFFIXES:
        stem, ext = base, suffix
    return f"{stem[:100]}{ext}"


def unique_names(names: list[str]) -> list[str]:
    """Make names unique by stem (outputs are keyed by stem: ``depth/<stem>.npy``), keeping order."""
    seen: set[str] = set()
    out = []
    for name in names:
        p = PurePosixPath(name)
        stem, ext, k = p.stem, p.suffix, 1
        candidate = name
        while candidate.rsplit(".", 1)[0].lower() in seen:
            candidate = f"{stem}_{k}{ext}"
            k += 1
        seen.add(candidate.rsplit(".", 1)[0].lower())
        out.append(candidate)
    return out

"""The one on-disk scene layout, shared by generated scenes and reconstruction results.

::

    SCENE/
      images/000.png ...            RGB images
      cameras.json                  {"convention": "opencv", "frames": [{"image", "width", "height", "K",
                                     "world_to_camera", ...extra fields}], ...extra top-level fields}
      depth/000.npy ...             float32 H×W z-depth (0 or non-finite = no depth)

``K`` is in pixels of ``width × height`` with pixel centres at +0.5 (see ``renderer.conventions``).
Later stages add fields (``"anchor"``, ``"valid_mask"`` ...) and never change the ones above.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CAMERAS_FILE = "cameras.json"
IMAGES_DIR = "images"
DEPTH_DIR = "depth"


@dataclass
class Frame:
    """One view: image file name (relative to ``images/``), size, intrinsics and world→camera extrinsics."""

    image: str
    width: int
    height: int
    K: np.ndarray  # [3, 3] float64
    world_to_camera: np.ndarray  # [4, 4] float64
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "image": self.image,
            "width": int(self.width),
            "height": int(self.height),
            "K": np.asarray(self.K, dtype=np.float64).tolist(),
            "world_to_camera": np.asarray(self.world_to_camera, dtype=np.float64).tolist(),
        }
        out.update(self.extra)
        return out

    @staticmethod
    def from_json(d: dict[str, Any], where: str = CAMERAS_FILE) -> Frame:
        for key in ("image", "width", "height", "K", "world_to_camera"):
            if key not in d:
                raise ValueError(f"{where}: frame is missing the field '{key}'")
        K = np.asarray(d["K"], dtype=np.float64)
        T = np.asarray(d["world_to_camera"], dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"{where}: frame '{d['image']}' has K of shape {list(K.shape)}, expected [3, 3]")
        if T.shape != (4, 4):
            raise ValueError(
                f"{where}: frame '{d['image']}' has world_to_camera of shape {list(T.shape)}, expected [4, 4]"
            )
        extra = {k: v for k, v in d.items() if k not in ("image", "width", "height", "K", "world_to_camera")}
        return Frame(str(d["image"]), int(d["width"]), int(d["height"]), K, T, extra)

    @property
    def stem(self) -> str:
        return Path(self.image).stem


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_cameras(scene_dir: str | os.PathLike, frames: list[Frame], **extra: Any) -> Path:
    """Write ``cameras.json`` (atomically) and return its path."""
    doc: dict[str, Any] = {"convention": "opencv", "frames": [f.to_json() for f in frames]}
    doc.update(extra)
    path = Path(scene_dir) / CAMERAS_FILE
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
    return path


def read_cameras(scene_dir: str | os.PathLike) -> tuple[list[Frame], dict[str, Any]]:
    """Read ``cameras.json`` → (frames, other top-level fields). Errors name the file and the field."""
    path = Path(scene_dir) / CAMERAS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a scene folder needs {CAMERAS_FILE})")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if doc.get("convention", "opencv") != "opencv":
        raise ValueError(f"{path}: convention '{doc.get('convention')}' is not supported (expected 'opencv')")
    if not isinstance(doc.get("frames"), list) or not doc["frames"]:
        raise ValueError(f"{path}: 'frames' must be a non-empty list")
    frames = [Frame.from_json(d, str(path)) for d in doc["frames"]]
    rest = {k: v for k, v in doc.items() if k not in ("frames",)}
    return frames, rest


def write_image(scene_dir: str | os.PathLike, name: str, rgb: np.ndarray) -> Path:
    """Save ``[H, W, 3]`` uint8 or float in [0, 1] as ``images/<name>`` (format from the extension)."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    path = Path(scene_dir) / IMAGES_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def read_image(scene_dir: str | os.PathLike, name: str) -> np.ndarray:
    """``images/<name>`` → ``[H, W, 3]`` uint8 RGB."""
    with Image.open(Path(scene_dir) / IMAGES_DIR / name) as im:
        return np.asarray(im.convert("RGB"))


def write_depth(scene_dir: str | os.PathLike, stem: str, depth: np.ndarray) -> Path:
    """Save ``[H, W]`` float32 z-depth as ``depth/<stem>.npy``."""
    path = Path(scene_dir) / DEPTH_DIR / f"{stem}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(depth, dtype=np.float32))
    return path


def read_depth(scene_dir: str | os.PathLike, stem: str) -> np.ndarray:
    """``depth/<stem>.npy`` → ``[H, W]`` float32; raises naming the file when missing."""
    path = Path(scene_dir) / DEPTH_DIR / f"{stem}.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing depth map")
    return np.load(path).astype(np.float32)

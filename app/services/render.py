"""Render a cached scene: one camera to PNG, or a camera path to a zip of PNGs or an MP4.

Runs on the worker's device thread. Paths come from ``renderer.camera_paths`` (orbit, spiral, through the
inputs) at the first input image's size unless a size is given; frames are rasterized a few at a time
(``CHUNK``) and written out as they come, so memory does not grow with the number of frames.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from app.services.render_cache import LoadedScene

CHUNK = 8


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_frames(
    scene: LoadedScene,
    world_to_camera: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    background: tuple[float, float, float] | None,
) -> Iterator[np.ndarray]:
    """Yield ``[H, W, 3]`` uint8 frames for cameras ``world_to_camera [C, 4, 4]``, ``K [C, 3, 3]``."""
    import torch

    from renderer import render_gaussians

    device = scene.gaussians.means.device
    bg = None if background is None else torch.tensor(background, dtype=torch.float32, device=device)
    with torch.no_grad():
        for i in range(0, len(world_to_camera), CHUNK):
            T = torch.as_tensor(world_to_camera[i : i + CHUNK], dtype=torch.float32, device=device)
            Ks = torch.as_tensor(K[i : i + CHUNK], dtype=torch.float32, device=device)
            out = render_gaussians(scene.gaussians, T, Ks, width, height, background=bg)
            for frame in out.rgb.float().cpu().numpy():
                yield _to_uint8(frame)


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def render_camera_png(
    scene: LoadedScene,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    width: int,
    height: int,
    background: tuple[float, float, float] | None,
) -> bytes:
    frame = next(render_frames(scene, world_to_camera[None], K[None], width, height, background))
    return png_bytes(frame)


def path_cameras(
    scene: LoadedScene, kind: str, frames: int, width: int | None, height: int | None
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Cameras of a named path: (world_to_camera [N, 4, 4], K [N, 3, 3], width, height).

    The size defaults to the first input image's; with only one side given the other keeps its aspect
    ratio. ``renderer.camera_paths`` keeps the inputs' vertical field of view at that size.
    """
    import torch

    from renderer import camera_paths

    h0, w0 = scene.image_hw[0]
    if width is None and height is None:
        width, height = w0, h0
    elif height is None:
        height = max(1, round(width * h0 / w0))
    elif width is None:
        width = max(1, round(height * w0 / h0))
    T_in = torch.as_tensor(scene.world_to_camera, dtype=torch.float64)
    K_in = torch.as_tensor(scene.K, dtype=torch.float64)
    make = {
        "orbit": camera_paths.orbit_path,
        "spiral": camera_paths.spiral_path,
        "inputs": camera_paths.input_path,
    }
    T, K = make[kind](T_in, K_in, frames, image_hw=scene.image_hw, out_hw=(height, width))
    return T.numpy(), K.numpy(), int(width), int(height)


def write_zip(frames: Iterator[np.ndarray], out: Path) -> None:
    """``frame_0000.png`` … in a zip (PNG is already compressed: stored, not deflated)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, frame in enumerate(frames):
            zf.writestr(f"frame_{i:04d}.png", png_bytes(frame))


def write_mp4(frames: Iterator[np.ndarray], out: Path, fps: float) -> None:
    """H.264 MP4 through imageio's ffmpeg plugin (yuv420p, so sizes are padded to even numbers)."""
    import imageio.v2 as iio2

    with iio2.get_writer(out, format="FFMPEG", fps=fps, codec="libx264", quality=8, macro_block_size=2) as w:
        for frame in frames:
            w.append_data(frame)

"""Sample frames from an uploaded video (imageio's ffmpeg plugin) into PNG files.

Frames are taken at ``fps`` frames per second of video time; when that would give more than
``max_frames`` frames, the rate is lowered so the samples still span the whole video. Frames are decoded
one at a time and written straight away, so memory stays at one frame.
"""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
from PIL import Image

from app.core.errors import ApiError
from app.services.media import video_suffix


def sample_rate(duration_s: float | None, fps: float, max_frames: int) -> float:
    """Frames per second of video time to sample: ``fps``, lowered to fit ``max_frames`` in the duration."""
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        return fps
    return min(fps, max_frames / duration_s)


def extract_frames(
    video: Path, name: str, dest: Path, *, fps: float, max_frames: int, max_pixels: int
) -> list[Path]:
    """Write sampled frames of ``video`` (shown to the client as ``name``) as ``dest/frame_NNNN.png``.

    Raises :class:`ApiError` 422 (not decodable, or no frames), 413 (frames larger than ``max_pixels``).
    """
    ext = video_suffix(video)  # imageio picks its plugin by extension; ffmpeg then probes the content
    try:
        meta = iio.immeta(video, plugin="FFMPEG", extension=ext)
    except (OSError, RuntimeError, ValueError, StopIteration) as e:
        raise ApiError(422, f"'{name}' is not a video ffmpeg can read") from e
    w, h = (int(v) for v in meta.get("size", (0, 0)))
    if w * h > max_pixels:
        raise ApiError(
            413, f"video '{name}' has {w}x{h} frames, more than {max_pixels} pixels (ONEPASS_MAX_PIXELS)"
        )
    src_fps = float(meta.get("fps") or 0.0)
    if not math.isfinite(src_fps) or src_fps <= 0:
        raise ApiError(422, f"video '{name}' does not state its frame rate")
    rate = sample_rate(meta.get("duration"), fps, max_frames)
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    next_slot = 0
    frames = iio.imiter(video, plugin="FFMPEG", extension=ext)
    try:
        for i, frame in enumerate(frames):
            # Frame i shows time i / src_fps; take it when that time reaches the next sample slot.
            if i * rate / src_fps + 1e-9 < next_slot:
                continue
            next_slot += 1
            path = dest / f"frame_{len(out):04d}.png"
            Image.fromarray(frame[..., :3]).save(path, compress_level=1)
            out.append(path)
            if len(out) >= max_frames:
                break
    except (OSError, RuntimeError, ValueError) as e:
        raise ApiError(422, f"video '{name}' could not be decoded after {len(out)} frames") from e
    finally:
        frames.close()  # stops the ffmpeg reader when we leave early
    if not out:
        raise ApiError(422, f"video '{name}' has no frames")
    return out

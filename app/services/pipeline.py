"""The service's one bridge to ``models``: load a reconstructor, turn a job into a batchable input, write
the outputs of a reconstruction. The HTTP layer, the job store and the batcher never import ``models``.
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.batcher import BatchKey, JobInput

log = logging.getLogger("onepass.pipeline")

#: artifact groups a client may list in ``options.outputs`` (``app.services.outputs.OUTPUT_NAMES``)
OUTPUT_GROUPS: tuple[str, ...] = (
    "images",
    "cameras",
    "depth",
    "points",
    "splats_ply",
    "splats_spz",
    "glb",
    "colmap",
    "report",
)
#: always written: renders, the viewer and the synchronous answer read the cameras
ALWAYS = ("cameras",)
#: written when the client names no outputs (the input images are already on the server)
DEFAULT_OUTPUTS = tuple(g for g in OUTPUT_GROUPS if g != "images")


def load_reconstructor(
    preset: str, weights: Path | None, device: str, *, cpu_bf16: bool = False, registration: str = "all"
) -> Any:
    """Build the model once per worker (``models.Reconstructor``)."""
    from models import Reconstructor

    path = str(weights) if weights else None
    return Reconstructor(
        preset=preset, weights=path, device=device, cpu_bf16=cpu_bf16, registration=registration
    )


def preset_input_width(preset: str) -> tuple[int, int]:
    """(input width, patch size) of a preset, from its config (no model is built)."""
    from models.config import get_config

    cfg = get_config(preset)
    return cfg.input_width, cfg.patch_size


def check_resolution(resolution: int | None, preset: str) -> str | None:
    """None if ``resolution`` (model input width) can be served for ``preset``, else the reason (a 422).

    The rule is the model's own (``models.reconstruct.check_resolution``: a multiple of the patch size
    within bounds), checked at upload so a job never fails on it later.
    """
    if resolution is None:
        return None
    from models.reconstruct import check_resolution as model_check

    width, patch = preset_input_width(preset)
    try:
        model_check(resolution, width, patch)
    except ValueError as e:
        return f"options.{e}"
    return None


def model_input_hw(image_hw: Sequence[tuple[int, int]], width: int, patch: int) -> tuple[int, int]:
    """(H, W) the model runs a scene at, as ``models.preprocess`` computes it: each image resized to
    ``width`` with its height rounded to the patch size, taller ones centre-cropped to ``width``, all
    padded to the largest height."""
    heights = [min(max(patch, round(h * width / w / patch) * patch), width) for h, w in image_hw]
    return max(heights), width


def decode_loaded(image: Any) -> np.ndarray:
    """A decoded PIL image → the model's pixels, exactly as ``models.preprocess.load_image`` makes them
    from the file (EXIF orientation applied, converted to ``[H, W, 3]`` uint8 RGB)."""
    from models.preprocess import decoded_to_rgb

    return decoded_to_rgb(image)


def prepare(
    reconstructor: Any,
    job_id: str,
    paths: Sequence[Path],
    options: dict[str, Any],
    decoded: Sequence[np.ndarray] | None = None,
) -> JobInput:
    """Decode a scene's images (or take ``decoded``, the same pixels kept from the upload's check) and
    wrap them as one batchable input (key and token count included)."""
    from models import ReconstructionInput
    from models.preprocess import load_image

    if decoded is not None and len(decoded) == len(paths):
        images = list(decoded)
    else:
        images = [load_image(p) for p in paths]
    cfg = reconstructor.cfg
    width = options.get("resolution") or cfg.input_width
    height, width = model_input_hw([im.shape[:2] for im in images], width, cfg.patch_size)
    K, T = options.get("intrinsics"), options.get("poses")
    max_anchors = int(options.get("max_anchors", 8))
    payload = ReconstructionInput(
        images=images,
        intrinsics=None if K is None else np.asarray(K, dtype=np.float64),
        poses=None if T is None else np.asarray(T, dtype=np.float64),
        max_anchors=max_anchors,
        resolution=width,
        refine=bool(options.get("refine", False)),
    )
    key = BatchKey(cfg.name, height, width, len(images), max_anchors)
    tokens = len(images) * (height // cfg.patch_size) * (width // cfg.patch_size)
    return JobInput(job_id, key, tokens, payload)


def warmup(reconstructor: Any) -> dict[str, Any]:
    """One small forward pass, every output written once (to a temporary folder) and a renderer warm-up,
    so the first request pays no start-up cost (the exporters' imports and first calls took ~1.5 s)."""
    import tempfile

    import renderer

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(2)]
    recon = reconstructor.reconstruct(images, max_anchors=2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onepass-warmup-") as tmp:
        write_outputs(recon, Path(tmp), ["a.png", "b.png"], None, images)
    return {
        "renderer": renderer.warmup(str(reconstructor.device)),
        "outputs_s": round(time.perf_counter() - t0, 3),
    }


def write_outputs(
    recon: Any, out_dir: Path, image_names: Sequence[str], outputs: Sequence[str] | None, images: Any = None
) -> None:
    """Write the chosen artifact groups (cameras always) and ``colmap.zip`` next to the COLMAP folder."""
    from app.services.outputs import write_reconstruction

    wanted = list(DEFAULT_OUTPUTS if outputs is None else outputs)
    wanted = [g for g in OUTPUT_GROUPS if g in wanted or g in ALWAYS]
    write_reconstruction(
        recon, out_dir, list(image_names), outputs=wanted, images=images if "images" in wanted else None
    )
    colmap = out_dir / "colmap"
    if colmap.is_dir():
        zip_folder(colmap, out_dir / "colmap.zip")


#: zlib level of ``colmap.zip``: a 4-view scene's 5.1 MB COLMAP model zips to 1.75 MB in 69 ms at level 1
#: against 1.66 MB in 205 ms at the default 6 (float-heavy binaries gain little from harder work)
ZIP_LEVEL = 1


def zip_folder(folder: Path, dest: Path) -> None:
    """Zip ``folder`` (paths inside start with its name, e.g. ``colmap/sparse/0/cameras.bin``)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent).as_posix())
    os.replace(tmp, dest)

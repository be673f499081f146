"""The service's one bridge to ``models``: load a reconstructor, turn a job into a batchable input, write
the outputs of a reconstruction. The HTTP layer, the job store and the batcher never import ``models``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.batcher import BatchKey, JobInput

log = logging.getLogger("onepass.pipeline")

#: artifact groups a client may ask for in ``options.outputs`` (all by default), in writing order
OUTPUT_GROUPS: tuple[str, ...] = ("cameras", "depth", "points", "splats", "spz", "glb", "colmap", "report")


def load_reconstructor(preset: str, weights: Path | None, device: str) -> Any:
    """Build the model once per worker (``models.Reconstructor``)."""
    from models import Reconstructor

    return Reconstructor(preset=preset, weights=str(weights) if weights else None, device=device)


def load_images(inputs_dir: Path, image_names: Sequence[str]) -> list[np.ndarray]:
    """Decode a job's checked inputs with the model's loader (EXIF orientation, RGB uint8 ``[H, W, 3]``)."""
    from models.preprocess import load_image

    return [load_image(inputs_dir / name) for name in image_names]


def model_input_size(
    reconstructor: Any, images: Sequence[np.ndarray], resolution: int | None
) -> tuple[int, int]:
    """(H, W) the model runs these images at: width ``resolution`` (default the preset's), height kept
    to the first image's aspect and rounded to the patch size (VGGT's crop mode)."""
    cfg = reconstructor.config
    p = cfg.patch_size
    width = resolution or cfg.input_width
    h0, w0 = images[0].shape[:2]
    height = max(p, int(round(h0 * width / w0 / p)) * p)
    return height, width


def prepare(
    reconstructor: Any, job_id: str, inputs_dir: Path, image_names: Sequence[str], options: dict[str, Any]
) -> JobInput:
    """Decode a job's images and wrap them as one batchable scene (key and token count included)."""
    from models import ReconstructionInput

    images = load_images(inputs_dir, image_names)
    resolution = options.get("resolution")
    height, width = model_input_size(reconstructor, images, resolution)
    p = reconstructor.config.patch_size
    K = options.get("intrinsics")
    T = options.get("poses")
    payload = ReconstructionInput(
        images=images,
        intrinsics=None if K is None else np.asarray(K, dtype=np.float64),
        poses=None if T is None else np.asarray(T, dtype=np.float64),
        max_anchors=int(options.get("max_anchors", 8)),
    )
    key = BatchKey(options.get("preset") or reconstructor.config.name, height, width, len(images))
    return JobInput(job_id, key, len(images) * (height // p) * (width // p), payload)


def run_many(reconstructor: Any) -> Callable[[list[Any]], list[Any]]:
    """The batched model call a :class:`~app.jobs.batcher.Batcher` runs."""
    return reconstructor.reconstruct_batch


def warmup(reconstructor: Any) -> dict[str, Any]:
    """One tiny forward pass (and a renderer warm-up) so the first request pays no start-up cost."""
    import renderer

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(2)]
    reconstructor.reconstruct(images, max_anchors=2)
    backend = renderer.warmup(str(reconstructor.device))
    return {"renderer": backend}


def write_outputs(
    recon: Any,
    out_dir: Path,
    image_names: Sequence[str],
    outputs: Sequence[str] | None,
    on_group: Callable[[str, int, int], bool] | None = None,
) -> None:
    """Write the requested artifact groups one by one; ``on_group(name, i, n)`` reports progress and
    returns False to stop (job cancelled)."""
    from app.services.outputs import write_reconstruction

    groups = [g for g in OUTPUT_GROUPS if outputs is None or g in outputs]
    for i, group in enumerate(groups):
        if on_group is not None and not on_group(group, i, len(groups)):
            return
        write_reconstruction(recon, out_dir, list(image_names), outputs=[group])

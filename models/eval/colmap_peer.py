"""The classical peer: COLMAP structure-from-motion through pycolmap, on CPU.

Pipeline (COLMAP's standard one): SIFT extraction → exhaustive matching with geometric verification →
incremental mapping. Intrinsics are *not* given (our model does not get them either): one shared
``SIMPLE_RADIAL`` camera per scene when all views have the same size (COLMAP's usual setup for one capture),
else one camera per view. Thresholds are COLMAP's defaults except where small (224 px) images need less
evidence; every deviation is in :data:`MAPPER_OVERRIDES` and documented in ``docs/MODEL_CARD.md``.

The largest reconstructed model is scored; views it does not contain are *unregistered* and count as 180°
errors in the pose metrics (:func:`models.eval.camera.relative_pose_errors`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ColmapResult", "run_colmap", "MAPPER_OVERRIDES"]

#: Departures from pycolmap's IncrementalPipelineOptions defaults, and why.
MAPPER_OVERRIDES: dict[str, int | float | bool] = {
    # Default 10 would discard every model of a 2–8 view scene.
    "min_model_size": 2,
    # A scene of 2 views has only two-view tracks; ignoring them (the default) triangulates nothing and the
    # initial pair is always discarded.
    "triangulation.ignore_two_view_tracks": False,
    # Default 16° (relaxed by halving) rejects small-baseline pairs such as a stereo rig (~3° on the
    # Middlebury pair); COLMAP still halves this on relaxation.
    "mapper.init_min_tri_angle": 4.0,
    # SIFT on 224×224 renders yields hundreds, not thousands, of features; COLMAP's 100-inlier
    # initialisation threshold (tuned for megapixel photos) would reject good pairs.
    "mapper.init_min_num_inliers": 30,
    "mapper.abs_pose_min_num_inliers": 15,
}


@dataclass
class ColmapResult:
    """COLMAP's answer for ``S`` views; an unregistered view has identity pose and ``registered=False``."""

    world_to_camera: np.ndarray  # [S, 4, 4] float64
    K: np.ndarray  # [S, 3, 3] float64, our pixel convention (centres at +0.5)
    registered: np.ndarray  # [S] bool
    points: np.ndarray  # [N, 3] sparse 3D points of the scored model
    runtime_s: float
    num_models: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def registration_rate(self) -> float:
        return float(self.registered.mean())


def _set_option(options: object, dotted: str, value: object) -> None:
    *path, last = dotted.split(".")
    for name in path:
        options = getattr(options, name)
    setattr(options, last, value)


def _camera_K(camera) -> np.ndarray:
    """3×3 K of a pycolmap camera (radial terms dropped); COLMAP also puts pixel centres at +0.5."""
    return np.asarray(camera.calibration_matrix(), dtype=np.float64)


def run_colmap(
    images: list[np.ndarray], *, workdir: str | Path | None = None, num_threads: int = 1, seed: int = 0
) -> ColmapResult:
    """Run SIFT + exhaustive matching + incremental mapping on ``images`` (list of ``[H, W, 3]`` uint8).

    Args:
        images: the views, in order; their index is the view id.
        workdir: where the database and images are written (a temporary directory when ``None``).
        num_threads: CPU threads for extraction, matching and mapping.
        seed: COLMAP's random seed (RANSAC), for repeatable results.
    """
    import pycolmap

    if len(images) < 2:
        raise ValueError(f"run_colmap needs at least 2 images, got {len(images)}")
    for i, im in enumerate(images):
        if not (isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3):
            got = getattr(im, "shape", type(im).__name__), getattr(im, "dtype", "")
            raise ValueError(f"images[{i}] must be an [H, W, 3] uint8 array, got {got}")
    with tempfile.TemporaryDirectory(prefix="onepass-colmap-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        image_dir, sparse_dir = root / "images", root / "sparse"
        image_dir.mkdir(parents=True, exist_ok=True)
        sparse_dir.mkdir(parents=True, exist_ok=True)
        database = root / "database.db"
        if database.exists():
            database.unlink()
        names = [f"{i:03d}.png" for i in range(len(images))]
        for name, im in zip(names, images, strict=True):
            Image.fromarray(im).save(image_dir / name)

        same_size = len({im.shape[:2] for im in images}) == 1
        mode = pycolmap.CameraMode.SINGLE if same_size else pycolmap.CameraMode.PER_IMAGE
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = num_threads
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = num_threads
        pipeline = pycolmap.IncrementalPipelineOptions()
        pipeline.num_threads = num_threads
        pipeline.random_seed = seed
        pipeline.mapper.random_seed = seed
        pipeline.triangulation.random_seed = seed
        pipeline.mapper.num_threads = num_threads
        for key, value in MAPPER_OVERRIDES.items():
            _set_option(pipeline, key, value)

        cpu = pycolmap.Device.cpu
        old_level = pycolmap.logging.minloglevel
        pycolmap.logging.minloglevel = (
            3  # COLMAP logs every step at INFO; failures are reported by our result
        )
        try:
            t0 = time.perf_counter()
            pycolmap.extract_features(
                database, image_dir, image_names=names, camera_mode=mode, extraction_options=extraction,
                device=cpu,
            )  # fmt: skip
            t1 = time.perf_counter()
            pycolmap.match_exhaustive(database, matching_options=matching, device=cpu)
            t2 = time.perf_counter()
            models = pycolmap.incremental_mapping(database, image_dir, sparse_dir, options=pipeline)
            t3 = time.perf_counter()
        finally:
            pycolmap.logging.minloglevel = old_level

    S = len(images)
    w2c = np.tile(np.eye(4), (S, 1, 1))
    K = np.tile(np.eye(3), (S, 1, 1))
    registered = np.zeros(S, dtype=bool)
    points = np.zeros((0, 3))
    if models:
        best = max(models.values(), key=lambda rec: rec.num_reg_images())
        for image in best.images.values():
            if not image.has_pose:
                continue
            idx = names.index(image.name)
            registered[idx] = True
            w2c[idx, :3, :] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
            K[idx] = _camera_K(image.camera)
        points = np.array([p.xyz for p in best.points3D.values()], dtype=np.float64).reshape(-1, 3)
    return ColmapResult(
        world_to_camera=w2c,
        K=K,
        registered=registered,
        points=points,
        runtime_s=t3 - t0,
        num_models=len(models),
        timings={"extract_s": t1 - t0, "match_s": t2 - t1, "map_s": t3 - t2},
    )

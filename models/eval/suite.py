"""The benchmark suites: procedural scenes (exact ground truth), the Motorcycle pair, and scene folders.

**Seed split.** Evaluation scenes use seeds ``seed_offset … seed_offset + scenes − 1``, which must stay below
:data:`models.training.curriculum.TRAIN_SEED_MIN` (1,000,000): training draws its scenes from
``[1,000,000, 2³¹)``, so no evaluation scene is ever seen in training. The kind cycles with the seed
(objects, room, orbit, forward). Each scene is rendered at ``size × size`` with ``V`` input views for every
``V`` in ``views`` plus ``targets`` held-out views drawn independently from the same rig.

Each scene is scored for onepass (:func:`models.eval.scoring.score_reconstruction`) and, on the exact same
images, for the COLMAP peer (:func:`models.eval.colmap_peer.run_colmap`; pose metrics and registration).
For views above ``max_anchors`` the first ``full_attention_scenes`` scenes are also run with every view as an
anchor ("onepass-full") to measure what ZPressor saves and costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.eval.camera import relative_pose_errors
from models.eval.colmap_peer import run_colmap
from models.eval.ground_truth import GroundTruth
from models.eval.scoring import score_reconstruction

__all__ = [
    "generator_fingerprint",
    "SuiteConfig",
    "suite_seeds",
    "procedural_ground_truth",
    "run_procedural_suite",
    "run_motorcycle",
    "load_scene_folder",
    "run_folder_suite",
]

Row = dict[str, Any]


@dataclass(frozen=True)
class SuiteConfig:
    scenes: int = 50
    views: tuple[int, ...] = (2, 4, 8, 16, 32)
    seed_offset: int = 0
    size: int = 224
    targets: int = 2
    max_anchors: int = 8
    colmap: bool = True
    full_attention_scenes: int = 5
    refine: bool = False  # also score onepass with camera refinement (method "onepass+refine")
    # also run onepass with the true cameras given ("onepass+cameras") and with its depth then fitted to
    # them ("onepass+cameras+refine"), scoring depth in the cameras' units too (``abs_rel_given``)
    given_cameras: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generator_fingerprint() -> str:
    """A short hash of what the generator renders now (one small scene per kind), so results computed with
    different generator code are never compared side by side (``bench.eval`` checks it when reusing rows)."""
    import hashlib

    from models.data.procedural import GENERATOR_VERSION, KINDS, make_scene

    h = hashlib.sha256(f"v{GENERATOR_VERSION}".encode())
    for i, kind in enumerate(KINDS):
        sc = make_scene(i, views=2, width=32, height=32, kind=kind)
        h.update(np.ascontiguousarray(sc.images).tobytes())
        h.update(np.ascontiguousarray(sc.world_to_camera).tobytes())
    return h.hexdigest()[:16]


def suite_seeds(cfg: SuiteConfig) -> list[int]:
    """The evaluation seeds; refuses any that could collide with training seeds."""
    from models.training.curriculum import TRAIN_SEED_MIN

    if cfg.scenes < 1:
        raise ValueError(f"scenes must be >= 1, got {cfg.scenes}")
    if cfg.seed_offset < 0 or cfg.seed_offset + cfg.scenes > TRAIN_SEED_MIN:
        raise ValueError(
            f"seed_offset={cfg.seed_offset} with scenes={cfg.scenes} reaches seed "
            f"{cfg.seed_offset + cfg.scenes - 1}; "
            f"evaluation seeds must lie in [0, {TRAIN_SEED_MIN}) (training uses the seeds above)"
        )
    if not cfg.views or min(cfg.views) < 2:
        raise ValueError(f"views must be view counts >= 2, got {cfg.views}")
    return list(range(cfg.seed_offset, cfg.seed_offset + cfg.scenes))


def procedural_ground_truth(seed: int, views: int, size: int, targets: int) -> GroundTruth:
    return procedural_scene_ground_truth(seed, views, size, targets)[0]


def procedural_scene_ground_truth(
    seed: int, views: int, size: int, targets: int
) -> tuple[GroundTruth, Any, Any]:
    """:func:`procedural_ground_truth` with the generator's input-view and target-view scenes it was made
    from (the targets' scene is None without targets), for callers that need more of them (target depth)."""
    from models.data.procedural import kind_for_seed, make_scene, make_target_views

    kind = kind_for_seed(seed)
    sc = make_scene(seed, views=views, width=size, height=size, kind=kind)
    extra, tg = {}, None
    if targets > 0:
        tg = make_target_views(sc, targets)
        extra = {"target_images": tg.images, "target_K": tg.K, "target_world_to_camera": tg.world_to_camera}
    gt = GroundTruth(
        images=sc.images, depth=sc.depth, valid=sc.valid, K=sc.K, world_to_camera=sc.world_to_camera,
        name=f"{kind}-{seed}", **extra,
    )  # fmt: skip
    return gt, sc, tg


def _uint8(images: np.ndarray) -> list[np.ndarray]:
    return [np.clip(np.round(im * 255.0), 0, 255).astype(np.uint8) for im in images]


def _onepass_row(
    reconstructor: Any,
    gt: GroundTruth,
    max_anchors: int,
    method: str,
    refine: bool = False,
    given_cameras: bool = False,
) -> Row:
    """One onepass run scored; ``given_cameras`` passes the true intrinsics and poses to it."""
    cameras = {"intrinsics": gt.K, "poses": gt.world_to_camera} if given_cameras else {}
    t0 = time.perf_counter()
    recon = reconstructor.reconstruct(_uint8(gt.images), max_anchors=max_anchors, refine=refine, **cameras)
    runtime = time.perf_counter() - t0
    row: Row = {"method": method, "scene": gt.name, "runtime_s": runtime}
    row["compression"] = recon.report.get("compression", "")
    row["anchors"] = len(recon.anchors)
    if refine and not given_cameras:
        refinement = recon.report["refinement"]
        row["refined_fraction"] = len(refinement.get("refined_views", [])) / max(gt.num_views - 1, 1)
    row.update(score_reconstruction(recon, gt, given_cameras=given_cameras))
    if gt.num_views >= 2:
        row["_pair_max_deg"] = relative_pose_errors(recon.world_to_camera, gt.world_to_camera).max_deg
    return row


def _colmap_row(gt: GroundTruth) -> Row:
    res = run_colmap(_uint8(gt.images))
    errors = relative_pose_errors(res.world_to_camera, gt.world_to_camera, res.registered)
    row: Row = {"method": "colmap", "scene": gt.name, "views": gt.num_views, "runtime_s": res.runtime_s}
    row["registration_rate"] = res.registration_rate
    row.update(errors.summary())
    row["_pair_max_deg"] = errors.max_deg
    return row


def _iterate(cfg: SuiteConfig) -> Iterator[tuple[int, int]]:
    for views in cfg.views:
        for seed in suite_seeds(cfg):
            yield views, seed


def run_procedural_suite(
    reconstructor: Any, cfg: SuiteConfig, *, progress: Callable[[str], None] | None = None
) -> list[Row]:
    """Rows of per-scene metrics for onepass (and COLMAP, and onepass-full where applicable).

    ``reconstructor=None`` scores only the COLMAP peer.
    """
    rows: list[Row] = []
    for views, seed in _iterate(cfg):
        gt = procedural_ground_truth(seed, views, cfg.size, cfg.targets)
        if reconstructor is not None:
            rows.append(_onepass_row(reconstructor, gt, cfg.max_anchors, "onepass") | {"seed": seed})
            if cfg.refine:
                row = _onepass_row(reconstructor, gt, cfg.max_anchors, "onepass+refine", refine=True)
                rows.append(row | {"seed": seed})
            if cfg.given_cameras:
                for method, refine in (("onepass+cameras", False), ("onepass+cameras+refine", True)):
                    row = _onepass_row(reconstructor, gt, cfg.max_anchors, method, refine, given_cameras=True)
                    rows.append(row | {"seed": seed})
            if views > cfg.max_anchors and seed - cfg.seed_offset < cfg.full_attention_scenes:
                rows.append(_onepass_row(reconstructor, gt, views, "onepass-full") | {"seed": seed})
        if cfg.colmap:
            rows.append(_colmap_row(gt) | {"seed": seed})
        if progress:
            progress(f"{gt.name} views={views} done")
    return rows


def run_motorcycle(reconstructor: Any, *, colmap: bool = True, refine: bool = False) -> list[Row]:
    """The Middlebury pair: both views (pose, left depth, Chamfer) and left-only → right novel view; with
    ``refine`` also both views with camera refinement (``onepass+refine``)."""
    from models.eval.motorcycle import load_motorcycle

    gt = load_motorcycle()
    rows = []
    if reconstructor is not None:
        rows.append(_onepass_row(reconstructor, gt, 8, "onepass") | {"seed": -1})
        if refine:
            rows.append(_onepass_row(reconstructor, gt, 8, "onepass+refine", refine=True) | {"seed": -1})
        left_only = GroundTruth(
            images=gt.images[:1], depth=gt.depth[:1], valid=gt.valid[:1], K=gt.K[:1],
            world_to_camera=gt.world_to_camera[:1], name="motorcycle-left-to-right",
            target_images=gt.images[1:], target_K=gt.K[1:], target_world_to_camera=gt.world_to_camera[1:],
        )  # fmt: skip
        rows.append(_onepass_row(reconstructor, left_only, 8, "onepass") | {"seed": -1})
    if colmap:
        rows.append(_colmap_row(gt) | {"seed": -1})
    return rows


def load_scene_folder(folder: str | Path) -> GroundTruth:
    """A scene-layout folder with ground truth (``cameras.json`` + ``images/`` + ``depth/``).

    Raises ``FileNotFoundError`` naming the first missing ground-truth file.
    """
    from models.data.procedural import load_scene
    from renderer.io.scene_layout import read_cameras

    folder = Path(folder)
    cams = folder / "cameras.json"
    if not cams.is_file():
        raise FileNotFoundError(f"{cams}: missing (a benchmark scene needs cameras.json with ground truth)")
    frames, _ = read_cameras(folder)
    for f in frames:
        for path in (folder / "images" / f.image, folder / "depth" / f"{Path(f.image).stem}.npy"):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing ground-truth file")
    sc = load_scene(folder)
    return GroundTruth(
        images=sc.images, depth=sc.depth.astype(np.float64), valid=sc.valid, K=sc.K,
        world_to_camera=sc.world_to_camera, name=folder.name,
    )  # fmt: skip


def run_folder_suite(
    reconstructor: Any, folders: list[Path], *, max_anchors: int = 8, colmap: bool = True
) -> list[Row]:
    """Score scene folders saved in the scene layout (e.g. by ``onepass scenes``)."""
    gts = [load_scene_folder(f) for f in folders]  # fail before any work if one lacks ground truth
    rows: list[Row] = []
    for gt in gts:
        if reconstructor is not None:
            rows.append(_onepass_row(reconstructor, gt, max_anchors, "onepass") | {"seed": -1})
        if colmap:
            rows.append(_colmap_row(gt) | {"seed": -1})
    return rows

"""Procedural multi-view scenes with exact ground truth: the public API of ``models.data``.

* :func:`make_scene` renders one scene (``views`` images of the same geometry) to numpy arrays.
* :func:`make_batch` renders many scenes straight into training tensors (no disk round trip);
  :class:`ProceduralDataset` wraps the same for a ``torch.utils.data.DataLoader`` with worker processes.
* :func:`make_target_views` renders extra (held-out) views of a scene for novel-view evaluation, drawn
  from the scene's own camera distribution; :func:`models.data.render.render_views` renders any camera.
* :func:`save_scene` / :func:`load_scene` use the one on-disk scene layout (``renderer.io.scene_layout``).

A scene is a pure function of ``(seed, kind)``: the layout comes from :func:`models.data.kinds.make_spec`,
the input cameras from an independent random stream of the same seed. Conventions are those of
``renderer.conventions``: OpenCV axes, ``world_to_camera`` extrinsics, ``K`` with pixel centres at +0.5,
z-depth. Invalid pixels (the sky) have ``valid = False`` and depth 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.data.kinds import KINDS, make_spec, spec_rng
from models.data.render import Views, render_views
from models.data.spec import SceneSpec
from renderer.io.scene_layout import (
    Frame,
    read_cameras,
    read_depth,
    read_image,
    write_cameras,
    write_depth,
    write_image,
)

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "KINDS",
    "ProceduralDataset",
    "Scene",
    "kind_for_seed",
    "load_scene",
    "make_batch",
    "make_scene",
    "make_target_views",
    "save_scene",
]

GENERATOR_NAME = "onepass.procedural"
#: Bumped whenever the same (seed, kind) would give a different scene.
GENERATOR_VERSION = 1

_STREAM_CAMERAS = 100
_STREAM_TARGETS = 200


@dataclass
class Scene:
    """``S`` views of one scene.

    Attributes:
        images: ``[S, H, W, 3]`` float32 in ``[0, 1]``.
        depth: ``[S, H, W]`` float32 z-depth, 0 where invalid.
        valid: ``[S, H, W]`` bool, true where the pixel sees a surface (false on the sky).
        K: ``[S, 3, 3]`` float64 intrinsics in pixels (pixel centres at +0.5).
        world_to_camera: ``[S, 4, 4]`` float64 OpenCV extrinsics.
        kind: generator kind, or None for a scene folder not made by this generator.
        seed: generator seed, or None likewise.
        spec: the scene description, for rendering more views (None when unknown).
    """

    images: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    K: np.ndarray
    world_to_camera: np.ndarray
    kind: str | None
    seed: int | None
    spec: SceneSpec | None = field(default=None, repr=False, compare=False)

    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])


# ---------------------------------------------------------------------------------------------- checks
def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return str(kind)


def kind_for_seed(seed: int) -> str:
    """The kind used for ``seed`` when none is given: the four kinds in turn (``KINDS[seed % 4]``)."""
    return KINDS[_check_int("seed", seed, 0) % len(KINDS)]


# --------------------------------------------------------------------------------------------- making
def _render_scene(
    seed: int, views: int, width: int, height: int, kind: str, device: torch.device | str | None
) -> tuple[SceneSpec, np.ndarray, np.ndarray, Views]:
    spec = make_spec(seed, kind)
    w2c, K = spec.rig.sample(spec_rng(seed, _STREAM_CAMERAS), views, width, height, stratified=True)
    return spec, w2c, K, render_views(spec, w2c, K, width, height, device=device)


def make_scene(
    seed: int,
    *,
    views: int = 4,
    width: int = 224,
    height: int = 224,
    kind: str = "objects",
    device: torch.device | str | None = None,
) -> Scene:
    """Render ``views`` views of the procedural scene ``(seed, kind)``.

    Args:
        seed: non-negative int; the same seed and kind always give the same scene.
        views: number of views (≥ 1), spread evenly over the scene's camera rig.
        width, height: image size in pixels (≥ 1).
        kind: one of :data:`KINDS`.
        device: where to ray-cast (default CPU); results are returned as numpy either way.

    Returns:
        A :class:`Scene` (numpy arrays, ``spec`` set).
    """
    seed = _check_int("seed", seed, 0)
    views = _check_int("views", views, 1)
    width = _check_int("width", width, 1)
    height = _check_int("height", height, 1)
    kind = _check_kind(kind)
    spec, w2c, K, v = _render_scene(seed, views, width, height, kind, device)
    return Scene(
        images=v.rgb.cpu().numpy(),
        depth=v.depth.cpu().numpy(),
        valid=v.valid.cpu().numpy(),
        K=K,
        world_to_camera=w2c,
        kind=kind,
        seed=seed,
        spec=spec,
    )


def make_target_views(
    scene: Scene | SceneSpec,
    count: int,
    *,
    width: int | None = None,
    height: int | None = None,
    salt: int = 0,
    device: torch.device | str | None = None,
) -> Scene:
    """Render ``count`` extra views of the same scene, drawn independently from its camera rig.

    Different ``salt`` values give different, reproducible sets of views. The size defaults to the
    scene's own. The result is a :class:`Scene` of the target views (same ``spec``, ``kind``, ``seed``).
    """
    spec = scene.spec if isinstance(scene, Scene) else scene
    if not isinstance(spec, SceneSpec):
        raise ValueError(
            "scene has no spec (it was not made by this generator); pass a generated scene or spec"
        )
    count = _check_int("count", count, 1)
    salt = _check_int("salt", salt, 0)
    if width is None or height is None:
        if not isinstance(scene, Scene):
            raise ValueError("width and height are required when a SceneSpec is given")
        width, height = scene.width, scene.height
    width, height = _check_int("width", width, 1), _check_int("height", height, 1)
    w2c, K = spec.rig.sample(
        spec_rng(spec.seed, _STREAM_TARGETS + salt), count, width, height, stratified=False
    )
    v = render_views(spec, w2c, K, width, height, device=device)
    return Scene(
        v.rgb.cpu().numpy(), v.depth.cpu().numpy(), v.valid.cpu().numpy(), K, w2c, spec.kind, spec.seed, spec
    )


def _scene_tensors(
    seed: int, views: int, width: int, height: int, kind: str, device: torch.device | str | None
) -> dict[str, Tensor]:
    _, w2c, K, v = _render_scene(seed, views, width, height, kind, device)
    dev = v.rgb.device
    return {
        "images": v.rgb.permute(0, 3, 1, 2).contiguous(),
        "depth": v.depth,
        "valid": v.valid,
        "K": torch.as_tensor(K, dtype=torch.float32, device=dev),
        "world_to_camera": torch.as_tensor(w2c, dtype=torch.float32, device=dev),
        "seed": torch.tensor(seed, dtype=torch.long, device=dev),
    }


def _resolve_kinds(seeds: Sequence[int], kinds: str | Sequence[str] | None) -> list[str]:
    if kinds is None:
        return [kind_for_seed(s) for s in seeds]
    if isinstance(kinds, str):
        return [_check_kind(kinds)] * len(seeds)
    kinds = list(kinds)
    if len(kinds) != len(seeds):
        raise ValueError(f"kinds must be None, one kind, or one per seed ({len(seeds)}), got {len(kinds)}")
    return [_check_kind(k) for k in kinds]


def make_batch(
    seeds: Sequence[int],
    *,
    views: int,
    width: int,
    height: int,
    kinds: str | Sequence[str] | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """Render a training batch of ``B = len(seeds)`` scenes in memory.

    Args:
        seeds: ``B`` non-negative ints.
        views, width, height: ``S`` views of ``H × W`` pixels per scene.
        kinds: None (each seed picks :func:`kind_for_seed`), one kind for all, or one per seed.
        device: where to ray-cast and return the tensors (e.g. ``"cuda"``); default CPU.

    Returns:
        ``images [B, S, 3, H, W]`` float32 in ``[0, 1]``, ``depth [B, S, H, W]`` float32 (0 = invalid),
        ``valid [B, S, H, W]`` bool, ``K [B, S, 3, 3]`` and ``world_to_camera [B, S, 4, 4]`` float32,
        ``seed [B]`` long. Scene ``b`` equals ``make_scene(seeds[b], kind=kinds[b], ...)``.
    """
    seeds = [_check_int("seeds[i]", s, 0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    views = _check_int("views", views, 1)
    width = _check_int("width", width, 1)
    height = _check_int("height", height, 1)
    per_scene = [
        _scene_tensors(s, views, width, height, k, device)
        for s, k in zip(seeds, _resolve_kinds(seeds, kinds), strict=True)
    ]
    return {key: torch.stack([d[key] for d in per_scene]) for key in per_scene[0]}


class ProceduralDataset(torch.utils.data.Dataset):
    """Map-style dataset: item ``i`` is scene ``seeds[i]`` as the per-scene tensors of :func:`make_batch`.

    With ``torch.utils.data.DataLoader(ds, batch_size=B, num_workers=N)`` the default collation yields
    exactly :func:`make_batch`'s dict, rendered in ``N`` worker processes so training never waits on data.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        *,
        views: int,
        width: int,
        height: int,
        kinds: str | Sequence[str] | None = None,
    ) -> None:
        self.seeds = [_check_int("seeds[i]", s, 0) for s in seeds]
        self.kinds = _resolve_kinds(self.seeds, kinds)
        self.views = _check_int("views", views, 1)
        self.width = _check_int("width", width, 1)
        self.height = _check_int("height", height, 1)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return _scene_tensors(self.seeds[i], self.views, self.width, self.height, self.kinds[i], None)


# ------------------------------------------------------------------------------------------------ disk
def save_scene(scene: Scene, out_dir: str | os.PathLike) -> Path:
    """Write ``scene`` in the scene layout: ``images/000.png``…, ``depth/000.npy``…, ``cameras.json``.

    ``cameras.json`` also records ``"generator": {"name", "version", "kind", "seed"}`` so :func:`load_scene`
    can rebuild the spec. Depth is 0 where invalid. Returns the folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    S, H, W = scene.depth.shape
    digits = max(3, len(str(S - 1)))
    frames = []
    for i in range(S):
        stem = f"{i:0{digits}d}"
        write_image(out, f"{stem}.png", scene.images[i])
        write_depth(out, stem, np.where(scene.valid[i], scene.depth[i], 0.0))
        frames.append(Frame(f"{stem}.png", W, H, scene.K[i], scene.world_to_camera[i]))
    extra = {}
    if scene.kind is not None and scene.seed is not None:
        extra["generator"] = {
            "name": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "kind": scene.kind,
            "seed": scene.seed,
        }
    write_cameras(out, frames, **extra)
    return out


def load_scene(scene_dir: str | os.PathLike) -> Scene:
    """Read a scene folder (any source, e.g. a reconstruction) into a :class:`Scene`.

    Images become float32 in ``[0, 1]`` (8-bit quantised, as stored); ``valid`` is ``depth > 0`` and
    finite. Frames must all have the same size. ``kind``, ``seed`` and ``spec`` are filled in when the
    folder was written by :func:`save_scene` with this generator version.
    """
    path = Path(scene_dir)
    frames, meta = read_cameras(path)
    H, W = frames[0].height, frames[0].width
    images, depths = [], []
    for f in frames:
        if (f.height, f.width) != (H, W):
            raise ValueError(
                f"{path / 'cameras.json'}: frame '{f.image}' is {f.width}x{f.height}, "
                f"expected {W}x{H} like the first frame"
            )
        if not (path / "images" / f.image).is_file():
            raise FileNotFoundError(f"{path / 'images' / f.image}: missing image")
        img = read_image(path, f.image)
        if img.shape[:2] != (H, W):
            raise ValueError(
                f"{path / 'images' / f.image}: image is {img.shape[1]}x{img.shape[0]}, "
                f"cameras.json says {W}x{H}"
            )
        d = read_depth(path, f.stem)
        if d.shape != (H, W):
            raise ValueError(
                f"{path / 'depth' / (f.stem + '.npy')}: depth has shape {list(d.shape)}, expected [{H}, {W}]"
            )
        images.append(img.astype(np.float32) / 255.0)
        depths.append(d)
    depth = np.stack(depths)
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, 0.0).astype(np.float32)
    gen = meta.get("generator") or {}
    kind, seed, spec = None, None, None
    if gen.get("name") == GENERATOR_NAME:
        kind, seed = gen.get("kind"), gen.get("seed")
        if gen.get("version") == GENERATOR_VERSION and kind in KINDS and isinstance(seed, int):
            spec = make_spec(seed, kind)
    return Scene(
        images=np.stack(images),
        depth=depth,
        valid=valid,
        K=np.stack([f.K for f in frames]),
        world_to_camera=np.stack([f.world_to_camera for f in frames]),
        kind=kind,
        seed=seed,
        spec=spec,
    )

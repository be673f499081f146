"""Reconstruct a folder of scene folders on this machine, through the service's own pipeline.

Same steps as a served job (check images → decode → :class:`~app.jobs.batcher.BatchQueue` → write
artifacts into a hidden temporary folder → rename), without HTTP or a database. The output of scene
``NAME`` is ``OUT/NAME/`` and appears in one rename when complete, with a ``manifest.json``; a scene whose
output folder has a manifest is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ApiError
from app.jobs.batcher import Batcher, BatchQueue
from app.jobs.files import MANIFEST, write_manifest
from app.services import pipeline
from app.services.media import IMAGE_SUFFIXES, check_image


@dataclass
class SceneOutcome:
    name: str
    status: str  # done, skipped, failed
    seconds: float = 0.0
    error: str | None = None


@dataclass
class BatchSummary:
    outcomes: list[SceneOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def find_scenes(root: Path) -> list[tuple[str, list[Path]]]:
    """Scene folders of ``root`` (sorted) with their images: ``images/`` if present, else the folder's own
    image files. Folders without images are listed with no images (reported as failed)."""
    if not root.is_dir():
        raise ValueError(f"scenes folder '{root}' does not exist")
    scenes = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        src = d / "images" if (d / "images").is_dir() else d
        images = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        scenes.append((d.name, images))
    return scenes


def is_done(out_dir: Path) -> bool:
    return (out_dir / MANIFEST).is_file()


def check_scene(name: str, images: list[Path], max_pixels: int, max_files: int) -> None:
    if not images:
        raise ValueError(f"scene '{name}' has no .jpg/.png/.webp images")
    if len(images) > max_files:
        raise ValueError(f"scene '{name}' has {len(images)} images, more than {max_files}")
    stems = [p.stem.lower() for p in images]
    if len(set(stems)) != len(stems):
        raise ValueError(f"scene '{name}' has images with the same name stem (outputs are named by stem)")
    for p in images:
        try:
            check_image(p, f"{name}/{p.name}", max_pixels)
        except ApiError as e:
            raise ValueError(e.detail) from e


async def run_local_batch(
    scenes: list[tuple[str, list[Path]]],
    out_root: Path,
    reconstructor: Any,
    *,
    options: dict[str, Any],
    jobs: int,
    max_pixels: int,
    max_files: int,
    max_tokens: int,
    batching: bool,
    on_scene: Callable[[SceneOutcome], None] | None = None,
) -> BatchSummary:
    """Reconstruct every scene not done yet, up to ``jobs`` at a time (same-shape ones batched when
    ``batching``; otherwise the extra scenes only overlap their image decoding and writing)."""
    out_root.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    batcher = Batcher("local", reconstructor.reconstruct_batch)
    queue = BatchQueue(
        [batcher], max_tokens=max_tokens, max_scenes=max(1, jobs) if batching else 1, max_wait_ms=50.0
    )
    io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="onepass-batch-io")
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(max(1, jobs))

    def record(outcome: SceneOutcome) -> None:
        summary.outcomes.append(outcome)
        if on_scene is not None:
            on_scene(outcome)

    async def one(name: str, images: list[Path]) -> None:
        dest = out_root / name
        if is_done(dest):
            record(SceneOutcome(name, "skipped"))
            return
        async with slots:
            t0 = time.perf_counter()
            tmp = None
            try:
                await loop.run_in_executor(io, check_scene, name, images, max_pixels, max_files)
                inp = await loop.run_in_executor(io, pipeline.prepare, reconstructor, name, images, options)
                result = await queue.submit(inp)
                if result.error is not None:
                    raise RuntimeError(result.error)
                tmp = Path(tempfile.mkdtemp(dir=out_root, prefix=f".{name}-"))
                names = [p.name for p in images]
                await loop.run_in_executor(
                    io, pipeline.write_outputs, result.reconstruction, tmp, names, options.get("outputs")
                )
                await loop.run_in_executor(io, publish, tmp, dest)
                tmp = None
                record(SceneOutcome(name, "done", time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - one bad scene must not stop the batch
                record(SceneOutcome(name, "failed", time.perf_counter() - t0, f"{type(e).__name__}: {e}"))
            finally:
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)

    queue.start()
    try:
        await asyncio.gather(*(one(name, images) for name, images in scenes))
    finally:
        await queue.stop()
        batcher.close()
        io.shutdown(wait=True)
    return summary


def publish(tmp: Path, dest: Path) -> None:
    """Manifest, then one rename (an unfinished earlier output is replaced)."""
    write_manifest(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)

"""``POST /v1/reconstructions/{id}/render``: images of a finished scene from new cameras.

The scene's Gaussians stay cached on the worker that rendered it last, and renders share that worker's
device thread with reconstruction batches.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app.api.deps import FilesDep, PoolDep, SettingsDep, StoreDep
from app.core.errors import ApiError
from app.schemas import RenderRequest
from app.services import render as rs
from app.services.jobs import get_job_or_404

router = APIRouter(prefix="/v1/reconstructions", tags=["render"])


def _check_size(width: int, height: int, limit: int, where: str) -> None:
    if width > limit or height > limit:
        raise ApiError(
            422, f"{where}: {width}x{height} is larger than {limit} pixels per side (ONEPASS_MAX_RENDER_SIZE)"
        )


@router.post(
    "/{job_id}/render",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "application/zip": {}, "video/mp4": {}},
            "description": "PNG for a camera; zip of PNGs or MP4 for a path",
        },
        409: {"description": "the job has not succeeded, or wrote no splats"},
    },
)
async def render(
    job_id: str, body: RenderRequest, settings: SettingsDep, store: StoreDep, files: FilesDep, pool: PoolDep
) -> Response:
    """One camera (``K``, ``world_to_camera``, size) → PNG; or a named path (orbit, spiral, inputs) of N
    frames → zip of PNGs or MP4."""
    job = get_job_or_404(store, job_id)
    if job.status != "succeeded":
        raise ApiError(
            409, f"reconstruction '{job_id}' is {job.status}; it can be rendered once it has succeeded"
        )
    artifacts = files.artifacts_dir(job_id)
    if not (artifacts / "splats.ply").is_file():
        raise ApiError(
            409, f"reconstruction '{job_id}' has no splats.ply (it was run without the 'splats' output)"
        )
    try:
        worker = pool.worker_for_scene(job_id)
    except RuntimeError as e:
        raise ApiError(
            503, "no inference worker is ready to render; see /readyz", headers={"Retry-After": "5"}
        ) from e
    bg = body.background

    def scene():
        return worker.scenes.get(job_id, artifacts)

    if body.camera is not None:
        c = body.camera
        _check_size(c.width, c.height, settings.max_render_size, "camera")
        K, T = np.asarray(c.K, dtype=np.float64), np.asarray(c.world_to_camera, dtype=np.float64)
        try:
            png = await worker.batcher.call(
                lambda: rs.render_camera_png(scene(), K, T, c.width, c.height, bg)
            )
        except ValueError as e:
            raise ApiError(422, f"camera: {e}") from e
        return Response(png, media_type="image/png")

    p = body.path
    if p.frames > settings.max_render_frames:
        raise ApiError(
            422,
            f"path.frames: {p.frames} is more than {settings.max_render_frames} (ONEPASS_MAX_RENDER_FRAMES)",
        )
    for v, name in ((p.width, "width"), (p.height, "height")):
        if v is not None and v > settings.max_render_size:
            raise ApiError(
                422, f"path.{name}: {v} is more than {settings.max_render_size} (ONEPASS_MAX_RENDER_SIZE)"
            )
    tmpdir = files.root / "renders"
    tmpdir.mkdir(parents=True, exist_ok=True)
    fd, out = tempfile.mkstemp(dir=tmpdir, suffix=f".{p.format}")
    os.close(fd)
    out_path = Path(out)

    def run() -> None:
        s = scene()
        T, K, w, h = rs.path_cameras(s, p.kind, p.frames, p.width, p.height)
        _check_size(w, h, settings.max_render_size, "path")
        frames = rs.render_frames(s, T, K, w, h, bg)
        if p.format == "zip":
            rs.write_zip(frames, out_path)
        else:
            rs.write_mp4(frames, out_path, p.fps)

    try:
        await worker.batcher.call(run)
    except ValueError as e:
        out_path.unlink(missing_ok=True)
        raise ApiError(422, f"path: {e}") from e
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    media = "application/zip" if p.format == "zip" else "video/mp4"
    return FileResponse(
        out_path,
        media_type=media,
        filename=f"{job_id}-{p.kind}.{p.format}",
        background=BackgroundTask(out_path.unlink, missing_ok=True),
    )

"""``POST /v1/reconstruct``: the synchronous call for small scenes (≤ ``ONEPASS_SYNC_MAX_IMAGES`` images).

It is an ordinary job (stored, batched with the others, artifacts kept) created at a higher priority,
and the request waits for it: ``200`` with the cameras and artifact links, or the job's failure as an
error status (422 the model refused the scene, 503 out of memory, 500 internal), or ``504`` after
``ONEPASS_SYNC_TIMEOUT_S`` with the job's ``Location`` (it keeps running).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import EventsDep, FilesDep, PoolDep, SettingsDep, StoreDep
from app.api.openapi import UPLOAD_BODY
from app.api.routes.artifacts import list_artifacts
from app.api.routes.reconstructions import IdempotencyKey
from app.core.errors import ApiError
from app.schemas import CameraPublic, SyncReconstructionPublic
from app.services.jobs import Services, accept_upload, job_public, wait_until_done

router = APIRouter(prefix="/v1", tags=["reconstruct"])

FAILURE_STATUS = {"input": 422, "oom": 503, "internal": 500}


@router.post(
    "/reconstruct",
    response_model=SyncReconstructionPublic,
    openapi_extra=UPLOAD_BODY,
    responses={503: {"description": "no worker, or out of memory"}, 504: {"description": "still running"}},
)
async def reconstruct_now(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    files: FilesDep,
    pool: PoolDep,
    events: EventsDep,
    idempotency_key: IdempotencyKey = None,
) -> SyncReconstructionPublic:
    """Upload up to 16 images (same form as ``POST /v1/reconstructions``) and wait for the result."""
    if not pool.workers:
        raise ApiError(
            503, "this server has no inference workers (ONEPASS_WORKERS=0); use /v1/reconstructions"
        )
    job, _ = await accept_upload(
        request,
        Services(settings, store, files, pool),
        max_images=settings.sync_max_images,
        priority=1,
        idempotency_key=idempotency_key,
        hand_over_pixels=True,
    )
    location = f"/v1/reconstructions/{job.id}"
    response.headers["Location"] = location
    job = await wait_until_done(store, events, job.id, settings.sync_timeout_s)
    if job is None:
        raise ApiError(404, f"reconstruction '{location.rsplit('/', 1)[-1]}' was deleted while running")
    if not job.terminal:
        raise ApiError(
            504, f"still running after {settings.sync_timeout_s:g} s; poll {location}", {"Location": location}
        )
    if job.status != "succeeded":
        status = FAILURE_STATUS.get(job.error_kind or "internal", 500) if job.status == "failed" else 409
        raise ApiError(
            status, f"reconstruction {job.status}: {job.error or job.status}", {"Location": location}
        )
    artifacts = list_artifacts(job.id, store, files)
    cameras_path = files.artifacts_dir(job.id) / "cameras.json"
    cameras = []
    if cameras_path.is_file():
        doc = await run_in_threadpool(lambda: json.loads(cameras_path.read_text()))
        cameras = [
            CameraPublic(
                image=f["image"],
                width=f["width"],
                height=f["height"],
                K=f["K"],
                world_to_camera=f["world_to_camera"],
                anchor=f.get("anchor"),
            )
            for f in doc["frames"]
        ]
    return SyncReconstructionPublic(job=job_public(job), cameras=cameras, artifacts=artifacts.items)

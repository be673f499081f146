"""``/v1/batches``: many scenes in one request, one job per scene.

Either a multipart upload of one zip whose top-level folders are scenes, or a JSON manifest of folders
under the server's ``ONEPASS_BATCH_ROOT`` (disabled when that setting is empty). Every scene is checked
before any job is created, so a bad scene rejects the whole batch with a message naming it.
"""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import FilesDep, PoolDep, SettingsDep, StoreDep
from app.api.openapi import BATCH_BODY
from app.core.errors import ApiError, format_validation_errors, not_found
from app.jobs.store import TERMINAL, new_id
from app.schemas import BatchManifest, BatchPublic
from app.services.ingest import ingest_batch_folder, ingest_batch_zip
from app.services.jobs import Services, check_preset, create_job, form_limits, job_public
from app.services.multipart import receive_form

router = APIRouter(prefix="/v1/batches", tags=["batches"])

MAX_MANIFEST_BYTES = 1 << 20


def _batch_public(svc: Services, batch_id: str, limit: int, offset: int) -> BatchPublic:
    batch = svc.store.get_batch(batch_id)
    if batch is None:
        raise not_found("batch", batch_id)
    # Counts first, jobs second: a job that ends between the two reads then shows as ended in the list
    # while ``done`` is still False (the client polls again). The other order could report ``done`` with a
    # job listed as still running, without its final timings. Ended jobs never change status again.
    counts = svc.store.batch_counts(batch_id)
    done = sum(counts[s] for s in TERMINAL) == sum(counts.values())
    jobs, _ = svc.store.list_jobs(batch_id=batch_id, limit=limit, offset=offset)
    return BatchPublic(
        id=batch.id,
        source=batch.source,
        created_at=batch.created_at,
        done=done,
        counts=counts,
        jobs=[job_public(j) for j in jobs],
    )


async def _manifest(request: Request) -> BatchManifest:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise ApiError(413, f"batch manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return BatchManifest.model_validate_json(body)
    except ValidationError as e:
        raise ApiError(422, format_validation_errors(e.errors(), prefix="manifest")) from e


@router.post("", status_code=202, response_model=BatchPublic, openapi_extra=BATCH_BODY)
async def create_batch(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    files: FilesDep,
    pool: PoolDep,
) -> BatchPublic:
    """Create one job per scene; answers ``202`` with the batch and its ``Location``."""
    svc = Services(settings, store, files, pool)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    work = await run_in_threadpool(files.new_upload_dir)
    try:
        if ctype == "application/json":
            manifest = await _manifest(request)
            if settings.batch_root is None:
                raise ApiError(403, "server-side batches are disabled (set ONEPASS_BATCH_ROOT)")
            if len(manifest.folders) > settings.max_batch_scenes_upload:
                raise ApiError(
                    413,
                    f"{len(manifest.folders)} folders, over {settings.max_batch_scenes_upload} per batch",
                )
            options, source = manifest.options, "manifest"
            scenes = await run_in_threadpool(
                lambda: [
                    ingest_batch_folder(settings.batch_root, f, work / f"scene-{i:04d}", settings)
                    for i, f in enumerate(manifest.folders)
                ]
            )
        else:
            limit = settings.max_files * settings.max_batch_scenes_upload
            form = await receive_form(request, work, form_limits(settings, limit))
            scenes, options = await run_in_threadpool(ingest_batch_zip, form, work, settings)
            source = "zip"
        stored = check_preset(options, settings)
        batch_id = new_id()

        def record() -> None:
            store.create_batch(batch_id=batch_id, source=source, options=stored)
            for scene in scenes:
                create_job(svc, scene, stored, batch_id=batch_id)

        await run_in_threadpool(record)
    finally:
        await run_in_threadpool(shutil.rmtree, work, True)
    pool.wake()
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    return await run_in_threadpool(_batch_public, svc, batch_id, settings.max_batch_scenes_upload, 0)


@router.get("/{batch_id}", response_model=BatchPublic)
def get_batch(
    batch_id: str,
    settings: SettingsDep,
    store: StoreDep,
    files: FilesDep,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> BatchPublic:
    """The batch's job counts by status, ``done`` once every job has ended, and its jobs (paged)."""
    return _batch_public(Services(settings, store, files, pool), batch_id, limit, offset)

"""``/v1/reconstructions``: upload, status, progress stream, list, cancel, delete."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import EventsDep, FilesDep, PoolDep, SettingsDep, StoreDep
from app.api.openapi import UPLOAD_BODY
from app.core.errors import ApiError
from app.jobs.store import STATUSES
from app.schemas import JobPublic, JobsPublic
from app.services.jobs import Services, accept_upload, delete_job, get_job_or_404, job_public

router = APIRouter(prefix="/v1/reconstructions", tags=["reconstructions"])

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="same key + same payload → the same job")
]

SSE_KEEPALIVE_S = 15.0


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    openapi_extra=UPLOAD_BODY,
    responses={413: {"description": "a size limit"}, 415: {"description": "not an image"}, 422: {}},
)
async def create_reconstruction(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    files: FilesDep,
    pool: PoolDep,
    idempotency_key: IdempotencyKey = None,
) -> JobPublic:
    """Upload 1–500 images (JPEG, PNG, WebP), one zip of images, or one video, plus JSON ``options``.

    Answers ``202`` with the queued job and its ``Location``. Repeating the request with the same
    ``Idempotency-Key`` and payload returns the same job (``Idempotent-Replayed: true``).
    """
    job, replayed = await accept_upload(
        request,
        Services(settings, store, files, pool),
        max_images=settings.max_files,
        priority=0,
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = f"/v1/reconstructions/{job.id}"
    response.headers["Retry-After"] = "1"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return job_public(job)


@router.get("", response_model=JobsPublic)
def list_reconstructions(
    store: StoreDep,
    status: Annotated[str | None, Query(description=f"one of {', '.join(STATUSES)}")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobsPublic:
    """Jobs, newest first, ``limit`` per page from ``offset``."""
    if status is not None and status not in STATUSES:
        raise ApiError(422, f"status must be one of {list(STATUSES)}, got '{status}'")
    jobs, total = store.list_jobs(status=status, limit=limit, offset=offset)
    return JobsPublic(items=[job_public(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobPublic)
def get_reconstruction(job_id: str, store: StoreDep) -> JobPublic:
    """Status (queued, running, succeeded, failed, cancelled), stage, progress 0–1, timings, error."""
    return job_public(get_job_or_404(store, job_id))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def reconstruction_events(
    job_id: str, request: Request, store: StoreDep, events: EventsDep
) -> StreamingResponse:
    """Server-Sent Events: a ``progress`` event (the job JSON) at every change, then ``done`` at the end.

    Comment lines keep idle connections alive every 15 s. The stream ends when the job ends or is deleted.
    """
    get_job_or_404(store, job_id)

    async def stream() -> AsyncIterator[str]:
        last, n = None, 0
        with events.subscribe(job_id) as changes:  # before the first read: no change can slip in between
            while True:
                job = await run_in_threadpool(store.get_job, job_id)
                if job is None:
                    yield f"event: deleted\ndata: {json.dumps({'id': job_id})}\n\n"
                    return
                snapshot = (job.status, job.stage, round(job.progress, 3), job.error)
                if snapshot != last:
                    n += 1
                    body = job_public(job).model_dump_json()
                    yield f"id: {n}\nevent: progress\ndata: {body}\n\n"
                    last = snapshot
                if job.terminal:
                    yield f"event: done\ndata: {json.dumps({'id': job_id, 'status': job.status})}\n\n"
                    return
                if await request.is_disconnected():
                    return
                if not await changes.wait(timeout=SSE_KEEPALIVE_S):
                    yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_reconstruction(job_id: str, store: StoreDep, pool: PoolDep) -> JobPublic:
    """Cancel a queued or running job, keeping its record (409 once it has ended)."""
    job = get_job_or_404(store, job_id)
    if job.terminal:
        raise ApiError(409, f"reconstruction '{job_id}' already {job.status}")
    job = store.cancel(job_id)
    if job is None:
        raise ApiError(404, f"reconstruction '{job_id}' not found")
    pool.events.publish(job_id)
    return job_public(job)


@router.delete("/{job_id}", status_code=204)
def delete_reconstruction(
    job_id: str, settings: SettingsDep, store: StoreDep, files: FilesDep, pool: PoolDep
) -> Response:
    """Cancel the job if it is still active, then delete its record, inputs and artifacts."""
    get_job_or_404(store, job_id)
    delete_job(Services(settings, store, files, pool), job_id)
    pool.events.publish(job_id)
    return Response(status_code=204)

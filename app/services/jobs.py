"""Job creation and presentation for the routes: upload → checked scene → queued job (idempotent).

An upload is received into a private folder under ``uploads/``, checked, and only then moved into
``jobs/<id>/inputs`` and recorded, so a failed or abandoned upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.core.errors import ApiError, not_found
from app.jobs.events import JobEvents
from app.jobs.files import JobFiles
from app.jobs.store import IdempotencyConflict, JobRecord, JobStore, new_id
from app.schemas import JobLinks, JobPublic, ReconstructionOptions
from app.services import pipeline
from app.services.ingest import OPTIONS_FIELD, Scene, fingerprint, ingest_upload, parse_options
from app.services.multipart import FormLimits, receive_form
from app.workers.pool import WorkerPool


@dataclass
class Services:
    """What job creation needs from the app (bundled to keep signatures short)."""

    settings: Settings
    store: JobStore
    files: JobFiles
    pool: WorkerPool


def form_limits(settings: Settings, max_images: int) -> FormLimits:
    return FormLimits(
        max_body_bytes=settings.max_body_bytes, max_file_bytes=settings.max_file_bytes, max_files=max_images
    )


def job_public(job: JobRecord) -> JobPublic:
    base = f"/v1/reconstructions/{job.id}"
    return JobPublic(
        id=job.id,
        status=job.status,
        stage=job.stage,
        progress=min(max(job.progress, 0.0), 1.0),
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        attempts=job.attempts,
        num_images=len(job.image_names),
        image_names=job.image_names,
        options=job.options,
        timings=job.timings,
        batch_id=job.batch_id,
        scene=job.scene,
        links=JobLinks(
            self=base, events=f"{base}/events", artifacts=f"{base}/artifacts", render=f"{base}/render"
        ),
    )


def get_job_or_404(store: JobStore, job_id: str) -> JobRecord:
    job = store.get_job(job_id)
    if job is None:
        raise not_found("reconstruction", job_id)
    return job


def check_preset(options: ReconstructionOptions, settings: Settings) -> dict:
    """Options as stored with the job (preset filled in); 422 for a preset this server does not serve."""
    if options.preset is not None and options.preset != settings.preset:
        raise ApiError(
            422,
            f"options.preset: '{options.preset}' is not served here; this server runs '{settings.preset}'",
        )
    problem = pipeline.check_resolution(options.resolution, settings.preset)
    if problem is not None:
        raise ApiError(422, problem)
    stored = options.model_dump(exclude_none=True)
    stored["preset"] = settings.preset
    return stored


def _replay(existing: JobRecord, fp: str, key: str) -> JobRecord:
    if existing.fingerprint != fp:
        raise ApiError(422, f"Idempotency-Key '{key}' was already used with a different payload")
    return existing


def create_job(
    svc: Services,
    scene: Scene,
    options: dict,
    *,
    priority: int = 0,
    idempotency_key: str | None = None,
    fp: str | None = None,
    batch_id: str | None = None,
) -> tuple[JobRecord, bool]:
    """Move the scene's images into place and record the job; (job, replayed). Blocking."""
    job_id = new_id()
    svc.files.adopt_inputs(job_id, scene.images_dir)
    try:
        job = svc.store.create_job(
            job_id=job_id,
            options=options,
            image_names=scene.image_names,
            priority=priority,
            idempotency_key=idempotency_key,
            fingerprint=fp,
            batch_id=batch_id,
            scene=scene.name,
        )
    except IdempotencyConflict:
        svc.files.delete_job(job_id)
        existing = svc.store.find_by_idempotency_key(idempotency_key or "")
        if existing is None:
            raise
        return _replay(existing, fp or "", idempotency_key or ""), True
    return job, False


async def accept_upload(
    request: Request,
    svc: Services,
    *,
    max_images: int,
    priority: int,
    idempotency_key: str | None,
    hand_over_pixels: bool = False,
) -> tuple[JobRecord, bool]:
    """Receive, check and queue one reconstruction upload; returns (job, replayed).

    ``hand_over_pixels`` (the synchronous route, whose job runs next) keeps the pixels the check decoded
    and gives them to this process's workers, so the job does not decode its images a second time.
    """
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise ApiError(422, "Idempotency-Key must be 1-255 characters")
    work = await run_in_threadpool(svc.files.new_upload_dir)
    try:
        form = await receive_form(request, work, form_limits(svc.settings, max_images))
        options = parse_options(form.fields.get(OPTIONS_FIELD))
        stored = check_preset(options, svc.settings)
        fp = fingerprint(options, [(f.filename, f.sha256) for f in form.files])
        if idempotency_key is not None:
            existing = await run_in_threadpool(svc.store.find_by_idempotency_key, idempotency_key)
            if existing is not None:
                return _replay(existing, fp, idempotency_key), True
        decode = pipeline.decode_loaded if hand_over_pixels else None
        scene = await run_in_threadpool(
            lambda: ingest_upload(form, work, svc.settings, options, max_images=max_images, decode=decode)
        )
        job, replayed = await run_in_threadpool(
            lambda: create_job(svc, scene, stored, priority=priority, idempotency_key=idempotency_key, fp=fp)
        )
        if scene.decoded is not None and not replayed:
            svc.pool.hand_over_pixels(job.id, scene.decoded)
        svc.pool.wake()
        return job, replayed
    finally:
        await run_in_threadpool(shutil.rmtree, work, True)


async def wait_until_done(store: JobStore, events: JobEvents, job_id: str, timeout: float) -> JobRecord:
    """Wait for a job to reach a terminal state; returns the last snapshot (maybe still running)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with events.subscribe(job_id) as changes:  # before the first read: no change can slip in between
        while True:
            job = await run_in_threadpool(store.get_job, job_id)
            if job is None or job.terminal:
                return job
            left = deadline - loop.time()
            if left <= 0:
                return job
            await changes.wait(timeout=min(left, 1.0))


def delete_job(svc: Services, job_id: str) -> None:
    """Cancel (if active), forget the cached scene, delete files and the row. Blocking."""
    svc.store.cancel(job_id)
    svc.pool.forget_scene(job_id)
    svc.files.delete_job(job_id)
    svc.store.delete(job_id)

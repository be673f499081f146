"""Builds the FastAPI application: lifespan (store, files, workers), middleware, error handlers, routers.

Start-up is fast: the lifespan opens the store, re-queues jobs a previous process left running, and starts
the workers, which load and warm the model in the background; ``/readyz`` turns 200 when they are done
and queued jobs start then. The model is loaded once per worker; tests replace it through
``app.dependency_overrides[get_reconstructor]`` (see :func:`reconstructor_provider`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api.deps import get_reconstructor
from app.api.main import api_router
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.metrics import Metrics, RequestMetricsMiddleware
from app.jobs.events import JobEvents
from app.jobs.files import JobFiles
from app.jobs.store import JobStore
from app.workers.devices import worker_devices
from app.workers.pool import ReconstructorProvider, WorkerPool

log = logging.getLogger("onepass")


def _operation_id(route: APIRoute) -> str:
    """Readable OpenAPI operation ids for generated clients: ``<tag>-<function name>``."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def reconstructor_provider(app: FastAPI) -> ReconstructorProvider | None:
    """The override of :func:`get_reconstructor` as a per-device provider, or None to load the model."""
    override = app.dependency_overrides.get(get_reconstructor)
    if override is None:
        return None
    return lambda _device: override()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    files = JobFiles(settings.data_dir)
    store = await asyncio.to_thread(JobStore, settings.resolved_database_url)
    swept = await asyncio.to_thread(files.sweep)
    requeued, failed = await asyncio.to_thread(store.recover, settings.max_attempts)
    if requeued or failed or swept:
        log.warning(
            "recovered after restart: %d job(s) re-queued, %d failed, %d partial folder(s) removed",
            len(requeued),
            len(failed),
            swept,
        )
    events = JobEvents(asyncio.get_running_loop())
    metrics: Metrics = app.state.metrics
    pool = WorkerPool(
        settings,
        store,
        files,
        events,
        metrics,
        worker_devices(settings.device, settings.workers),
        reconstructor_provider(app),
    )
    metrics.watch_state(
        store.counts_by_status,
        lambda: store.counts_by_status()["queued"] + pool.queue_depth,
        lambda: sorted({w.device for w in pool.workers}),
    )
    app.state.store, app.state.files, app.state.events, app.state.pool = store, files, events, pool
    pool.start()
    try:
        yield
    finally:
        await pool.stop()
        store.close()


def _install_web(app: FastAPI) -> None:
    """Mount the browser pages when the ``app.web`` package is present (it is optional)."""
    try:
        from app import web
    except ModuleNotFoundError as e:
        if e.name not in ("app.web",):
            raise
        return
    web.install(app)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = FastAPI(
        title="onepass",
        version="0.1.0",
        summary="Multi-view photos to cameras, depth and 3D Gaussians in one forward pass.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # FastAPI's own /docs and /redoc load their scripts from a CDN; app.web serves /docs offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    app.include_router(api_router)
    _install_web(app)
    return app

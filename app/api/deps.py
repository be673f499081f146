"""Dependencies of the route handlers, as ``Annotated`` aliases so signatures read like prose.

Everything lives on ``app.state`` (built by the lifespan in :mod:`app.main`); nothing is a module global,
so several apps (tests) can run side by side in one process.

``get_reconstructor`` is also how tests swap the model: ``app.dependency_overrides[get_reconstructor] =
lambda: my_reconstructor`` before the app starts makes every worker use that object instead of loading
one (see :func:`app.main.reconstructor_provider`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.config import Settings
from app.core.errors import ApiError
from app.core.metrics import Metrics
from app.jobs.events import JobEvents
from app.jobs.files import JobFiles
from app.jobs.store import JobStore
from app.workers.pool import WorkerPool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_files(request: Request) -> JobFiles:
    return request.app.state.files


def get_pool(request: Request) -> WorkerPool:
    return request.app.state.pool


def get_events(request: Request) -> JobEvents:
    return request.app.state.events


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_reconstructor(request: Request) -> Any:
    """The loaded ``models.Reconstructor`` of the first ready worker (503 while none is ready)."""
    for w in request.app.state.pool.workers:
        if w.ready:
            return w.reconstructor
    raise ApiError(503, "the model is not loaded yet; see /readyz", headers={"Retry-After": "5"})


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
FilesDep = Annotated[JobFiles, Depends(get_files)]
PoolDep = Annotated[WorkerPool, Depends(get_pool)]
EventsDep = Annotated[JobEvents, Depends(get_events)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReconstructorDep = Annotated[Any, Depends(get_reconstructor)]

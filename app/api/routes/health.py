"""Probes and metrics: ``/healthz`` (process up), ``/readyz`` (model loaded and warmed), ``/metrics``."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import MetricsDep, PoolDep
from app.schemas import ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Process is up (does not check the model; that is ``/readyz``)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}})
def readyz(pool: PoolDep) -> JSONResponse:
    """200 once every inference worker has loaded and warmed up its model, else 503 (also with 0 workers)."""
    body = ReadinessPublic(ready=pool.ready, workers=pool.status())
    return JSONResponse(body.model_dump(), status_code=200 if pool.ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    """Prometheus text format: request latency, queue depth, batch sizes, jobs by state, device memory."""
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)

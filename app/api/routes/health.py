"""Liveness probe."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Process is up (does not check the model; that is ``/readyz``)."""
    return {"status": "ok"}

"""Builds the FastAPI application: lifespan, middleware and routers."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.routes import health
from app.core.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="onepass", version="0.1.0")
    app.state.settings = settings
    app.include_router(health.router)
    return app

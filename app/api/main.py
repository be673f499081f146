"""All API routers, gathered for :func:`app.main.create_app`."""

from fastapi import APIRouter

from app.api.routes import artifacts, batches, health, inputs, reconstruct, reconstructions, render

api_router = APIRouter()
for module in (health, reconstructions, artifacts, inputs, render, reconstruct, batches):
    api_router.include_router(module.router)

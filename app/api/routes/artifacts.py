"""``/v1/reconstructions/{id}/artifacts``: list and download a finished job's files.

Each file has a strong ETag (its SHA-256, from the manifest written before the artifacts were published);
``If-None-Match`` answers 304, ``Range`` answers 206 (Starlette's FileResponse, which also honours
``If-Range`` against the same ETag). Only names listed in the manifest are served, so no path can escape.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from app.api.deps import FilesDep, StoreDep
from app.core.errors import ApiError, not_found
from app.jobs.files import read_manifest
from app.schemas import ArtifactPublic, ArtifactsPublic
from app.services.jobs import get_job_or_404

router = APIRouter(prefix="/v1/reconstructions", tags=["artifacts"])

MEDIA_TYPES = {
    ".json": "application/json",
    ".ply": "application/octet-stream",
    ".spz": "application/octet-stream",
    ".splat": "application/octet-stream",
    ".glb": "model/gltf-binary",
    ".zip": "application/zip",
    ".npy": "application/octet-stream",
    ".png": "image/png",
    ".bin": "application/octet-stream",
    ".txt": "text/plain; charset=utf-8",
}


def media_type(name: str) -> str:
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return MEDIA_TYPES.get(suffix, "application/octet-stream")


def etag(sha256: str) -> str:
    return f'"{sha256[:32]}"'


def not_modified(request: Request, tag: str) -> Response | None:
    """A 304 when the request's ``If-None-Match`` names ``tag`` (or ``*``), else None."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and (
        if_none_match.strip() == "*" or tag in [t.strip() for t in if_none_match.split(",")]
    ):
        return Response(status_code=304, headers={"ETag": tag})
    return None


def _manifest(store: StoreDep, files: FilesDep, job_id: str) -> dict:
    job = get_job_or_404(store, job_id)
    if job.status != "succeeded":
        raise ApiError(
            409, f"reconstruction '{job_id}' is {job.status}; artifacts exist once it has succeeded"
        )
    return read_manifest(files.artifacts_dir(job_id))


@router.get("/{job_id}/artifacts", response_model=ArtifactsPublic)
def list_artifacts(job_id: str, store: StoreDep, files: FilesDep) -> ArtifactsPublic:
    """Every file of a succeeded job with its size, ETag, media type and URL (409 before success)."""
    manifest = _manifest(store, files, job_id)
    items = [
        ArtifactPublic(
            name=name,
            size=meta["size"],
            etag=etag(meta["sha256"]),
            media_type=media_type(name),
            url=f"/v1/reconstructions/{job_id}/artifacts/{name}",
        )
        for name, meta in manifest.items()
    ]
    return ArtifactsPublic(job_id=job_id, items=items)


@router.get(
    "/{job_id}/artifacts/{name:path}",
    response_class=FileResponse,
    responses={206: {"description": "partial content (Range)"}, 304: {"description": "not modified"}},
)
def get_artifact(job_id: str, name: str, request: Request, store: StoreDep, files: FilesDep) -> Response:
    """One file, e.g. ``cameras.json``, ``splats.ply``, ``depth/000.npy``; ETag and Range supported."""
    manifest = _manifest(store, files, job_id)
    meta = manifest.get(name)
    if meta is None:
        raise not_found("artifact", name)
    tag = etag(meta["sha256"])
    if (cached := not_modified(request, tag)) is not None:
        return cached
    path = files.artifacts_dir(job_id) / name
    return FileResponse(
        path,
        media_type=media_type(name),
        headers={"ETag": tag, "Cache-Control": "private, max-age=31536000, immutable"},
        filename=name.rsplit("/", 1)[-1],
        content_disposition_type="inline",
    )

"""``/v1/reconstructions/{id}/inputs/{name}``: a job's input images, as checked and stored at upload.

Every job keeps its inputs (``jobs/<id>/inputs/``) until it is deleted, whatever its outputs and status,
so clients such as the viewer can always show the photos next to the reconstruction without asking for
the ``images`` output (which copies them into the artifacts as the scene layout). Only the names in the
job's ``image_names`` are served, so no path can escape the folder.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from PIL import Image

from app.api.deps import FilesDep, StoreDep
from app.api.routes.artifacts import etag, not_modified
from app.core.errors import not_found
from app.jobs.files import file_sha256
from app.services.jobs import get_job_or_404

router = APIRouter(prefix="/v1/reconstructions", tags=["inputs"])

#: Media type by the decoded format (the stored name keeps the client's extension, which may disagree).
IMAGE_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@router.get(
    "/{job_id}/inputs/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {t: {} for t in IMAGE_MEDIA_TYPES.values()}, "description": "the input image"},
        206: {"description": "partial content (Range)"},
        304: {"description": "not modified"},
    },
)
def get_input(job_id: str, name: str, request: Request, store: StoreDep, files: FilesDep) -> Response:
    """One input image (``name`` from the job's ``image_names``), in any job status; ETag and Range."""
    job = get_job_or_404(store, job_id)
    path = files.inputs_dir(job_id) / name
    if name not in job.image_names or not path.is_file():
        raise not_found("input image", name)
    tag = etag(file_sha256(path))
    if (cached := not_modified(request, tag)) is not None:
        return cached
    with Image.open(path) as im:  # reads the header only
        media_type = IMAGE_MEDIA_TYPES.get(str(im.format), "application/octet-stream")
    return FileResponse(
        path,
        media_type=media_type,
        headers={"ETag": tag, "Cache-Control": "private, max-age=31536000, immutable"},
        filename=name,
        content_disposition_type="inline",
    )

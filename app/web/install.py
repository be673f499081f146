"""Mount the browser pages on the service: ``/`` (upload), ``/viewer/{id}``, ``/static/``, ``/vendor/``.

``create_app`` calls :func:`install` once. The pages talk only to the public HTTP API
(``/v1/reconstructions...``); this module knows nothing about jobs.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from app.web.assets import WebAssets, resolve_assets
from app.web.csp import PageSecurityHeaders, build_policy

#: Placeholder in the page templates replaced by the import map JSON.
IMPORT_MAP_TOKEN = "%IMPORT_MAP%"
#: Placeholder in the page templates replaced by the list of missing files (viewer only).
MISSING_TOKEN = "%MISSING%"

PAGE_PREFIXES = ("/static/", "/vendor/", "/viewer/")
IMMUTABLE = "public, max-age=31536000, immutable"


def is_page_path(path: str) -> bool:
    """True for the paths this module serves (they get the CSP), False for the API and docs."""
    return path == "/" or path.startswith(PAGE_PREFIXES)


class _RevalidatedStaticFiles(StaticFiles):
    """Our own page sources: always revalidated (ETag) so an upgrade is picked up at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


@functools.lru_cache(maxsize=16)
def _gzipped(path: Path) -> tuple[bytes, str]:
    """Gzip a vendor file once (Spark's 2.7 MB module shrinks about 4x) and its strong ETag."""
    data = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
    return data, f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def _render_page(assets: WebAssets, name: str) -> str:
    """Template ``pages/<name>`` with the import map (and, when assets are missing, the list)."""
    text = (assets.pages_dir / name).read_text(encoding="utf-8")
    text = text.replace(IMPORT_MAP_TOKEN, assets.import_map_json())
    missing = "".join(f"<li><code>{html.escape(m)}</code></li>" for m in assets.missing)
    return text.replace(MISSING_TOKEN, missing)


def _vendor_response(file: Path, request: Request) -> Response:
    """A vendor module, gzipped when the client accepts it; versioned URLs make it immutable."""
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        data, etag = _gzipped(file)
        headers.update({"Content-Encoding": "gzip", "ETag": etag})
        return Response(data, media_type="text/javascript", headers=headers)
    return FileResponse(file, media_type="text/javascript", headers=headers)


def install(app: FastAPI, *, web_dir: str | Path | None = None) -> None:
    """Add the page routes, the static and vendor files and the page CSP middleware to ``app``.

    Args:
        app: the service application (``create_app`` calls this once).
        web_dir: folder with ``pages/``, ``static/`` and ``node_modules/``; default the repository's ``web/``.

    When ``web/node_modules`` lacks three or Spark (``npm ci`` not run), the upload page still works and
    ``/viewer/{id}`` answers 503 with a page naming the missing files and the fix (``make setup``).
    """
    assets = resolve_assets(web_dir)
    app.state.web_assets = assets
    upload_html = _render_page(assets, "index.html")
    viewer_html = _render_page(assets, "viewer.html" if assets.viewer_ready else "viewer_missing.html")
    policy = build_policy([assets.import_map_json()])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> HTMLResponse:
        return HTMLResponse(upload_html, headers={"Cache-Control": "no-cache"})

    @app.get("/viewer/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def viewer_page(job_id: str) -> HTMLResponse:
        status = 200 if assets.viewer_ready else 503
        return HTMLResponse(viewer_html, status_code=status, headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/{path:path}", include_in_schema=False)
    def vendor_file(path: str, request: Request) -> Response:
        # A scoped package (@sparkjsdev/spark@2.2.0/...) has a slash in its name: match known prefixes.
        for pkg in assets.packages.values():
            head = f"{pkg.name}@{pkg.version}/"
            if path.startswith(head):
                file = assets.vendor_file(f"{pkg.name}@{pkg.version}", path[len(head) :])
                if file is not None:
                    return _vendor_response(file, request)
        raise HTTPException(status_code=404, detail=f"no vendor file '/vendor/{path}'")

    app.mount("/static", _RevalidatedStaticFiles(directory=assets.static_dir), name="web-static")
    app.add_middleware(PageSecurityHeaders, policy=policy, is_page=is_page_path)

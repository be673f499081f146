"""Mount the browser pages on the service: ``/``, ``/viewer/{id}``, ``/docs``, ``/static/``, ``/vendor/``.

``create_app`` calls :func:`install` once. The pages talk only to the public HTTP API
(``/v1/reconstructions...``); this module knows nothing about jobs. ``/docs`` is FastAPI's Swagger UI page
pointed at the Swagger UI files this app serves itself (FastAPI's default loads them from a CDN).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import re
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from app.web.assets import WebAssets, resolve_assets
from app.web.csp import PageSecurityHeaders, build_docs_policy, build_policy

#: Placeholder in the page templates replaced by the import map JSON.
IMPORT_MAP_TOKEN = "%IMPORT_MAP%"
#: Placeholder in the page templates replaced by the list of missing files (viewer only).
MISSING_TOKEN = "%MISSING%"

PAGE_PREFIXES = ("/static/", "/vendor/", "/viewer/")
DOCS_PATH = "/docs"
IMMUTABLE = "public, max-age=31536000, immutable"
#: Media types of the allow-listed vendor files, by suffix; the text ones are sent gzipped when accepted.
VENDOR_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_COMPRESSIBLE = {".js", ".css"}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", flags=re.S)


def is_page_path(path: str) -> bool:
    """True for the paths that get the page CSP (pages and their files), False for the API and ``/docs``."""
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


def _render_page(assets: WebAssets, name: str, missing: tuple[str, ...] = ()) -> str:
    """Template ``pages/<name>`` with the import map and the list of ``missing`` files."""
    text = (assets.pages_dir / name).read_text(encoding="utf-8")
    text = text.replace(IMPORT_MAP_TOKEN, assets.import_map_json())
    items = "".join(f"<li><code>{html.escape(m)}</code></li>" for m in missing)
    return text.replace(MISSING_TOKEN, items)


def _vendor_response(file: Path, request: Request) -> Response:
    """A vendor file, gzipped when it is text and the client accepts it; versioned URLs make it immutable."""
    media_type = VENDOR_MEDIA_TYPES[file.suffix]
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    if file.suffix in _COMPRESSIBLE and "gzip" in request.headers.get("accept-encoding", ""):
        data, etag = _gzipped(file)
        headers.update({"Content-Encoding": "gzip", "ETag": etag})
        return Response(data, media_type=media_type, headers=headers)
    return FileResponse(file, media_type=media_type, headers=headers)


def _docs_page(app: FastAPI, assets: WebAssets) -> tuple[str, str | None]:
    """The ``/docs`` HTML and its CSP: Swagger UI from ``/vendor/``, or the page naming what is missing.

    The policy allows the page's one inline script (Swagger UI's start-up call) by its sha256 hash.
    """
    if not assets.docs_ready:
        return _render_page(assets, "docs_missing.html", assets.docs_missing), build_docs_policy([])
    page = get_swagger_ui_html(
        openapi_url=str(app.openapi_url), title=f"{app.title} API docs", **assets.swagger_urls()
    ).body.decode("utf-8")
    return page, build_docs_policy(_INLINE_SCRIPT.findall(page))


def install(app: FastAPI, *, web_dir: str | Path | None = None) -> None:
    """Add the page routes, ``/docs``, the static and vendor files and the CSP middleware to ``app``.

    Args:
        app: the service application (``create_app`` calls this once), built with ``docs_url=None`` so
            that ``/docs`` is this module's offline Swagger UI page (skipped when ``openapi_url`` is None).
        web_dir: folder with ``pages/``, ``static/`` and ``node_modules/``; default the repository's ``web/``.

    When ``web/node_modules`` lacks three or Spark (``npm ci`` not run), the upload page still works and
    ``/viewer/{id}`` answers 503 with a page naming the missing files and the fix (``make setup``);
    ``/docs`` does the same without swagger-ui-dist.

    Raises:
        ValueError: ``app`` has FastAPI's own docs page (its ``docs_url`` is set), which loads from a CDN.
    """
    if app.docs_url is not None:
        raise ValueError(
            f"app.docs_url={app.docs_url!r}: build the app with FastAPI(docs_url=None) so that /docs serves"
            " Swagger UI from this server instead of a CDN"
        )
    assets = resolve_assets(web_dir)
    app.state.web_assets = assets
    upload_html = _render_page(assets, "index.html")
    viewer_html = _render_page(
        assets, "viewer.html" if assets.viewer_ready else "viewer_missing.html", assets.missing
    )
    policy = build_policy([assets.import_map_json()])
    docs_html, docs_policy = _docs_page(app, assets) if app.openapi_url else (None, None)

    def policy_for(path: str) -> str | None:
        if path == DOCS_PATH:
            return docs_policy
        return policy if is_page_path(path) else None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> HTMLResponse:
        return HTMLResponse(upload_html, headers={"Cache-Control": "no-cache"})

    @app.get("/viewer/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def viewer_page(job_id: str) -> HTMLResponse:
        status = 200 if assets.viewer_ready else 503
        return HTMLResponse(viewer_html, status_code=status, headers={"Cache-Control": "no-cache"})

    if docs_html is not None:

        @app.get(DOCS_PATH, response_class=HTMLResponse, include_in_schema=False)
        def api_docs() -> HTMLResponse:
            status = 200 if assets.docs_ready else 503
            return HTMLResponse(docs_html, status_code=status, headers={"Cache-Control": "no-cache"})

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
    app.add_middleware(PageSecurityHeaders, policy_for=policy_for)

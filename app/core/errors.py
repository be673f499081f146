"""One error type for the API and the handlers that turn errors into JSON ``{"detail": ...}`` answers.

Services raise :class:`ApiError` with the status and a message that names the file or field at fault; the
handlers make sure nothing the client sent can end as a bare 500 (unexpected errors still answer 500, with a
generic message, and are logged with their traceback).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("onepass.api")


class ApiError(Exception):
    """An answer other than success: ``status`` and a one-line ``detail`` for the client."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what} '{ident}' not found")


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for every error; validation errors list each offending field in one line."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": format_validation_errors(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)


def format_validation_errors(errors: list[dict] | tuple[dict, ...], prefix: str = "") -> str:
    """pydantic errors → ``"options.max_anchors: Input should be ...; body.K: ..."``."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "request")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)

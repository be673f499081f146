"""Content-Security-Policy and companion headers for the browser pages.

What the pages need, read from the shipped code (three 0.187, Spark 2.2):

* scripts only from our origin; the one inline script is the import map, allowed by its sha256 hash;
* ``'wasm-unsafe-eval'``: Spark calls ``WebAssembly.compile`` on its inlined module (no ``eval``);
* ``worker-src blob:``: Spark builds its sort/decode worker from a ``Blob`` of inlined source
  (its ``data:`` fallback is deliberately not allowed); a blob worker inherits this policy;
* ``connect-src 'self'``: the API (fetch, EventSource) is same-origin;
* ``img-src 'self' blob:`` and ``media-src 'self' blob:``: input photos, screenshots and server renders.

Nothing else is allowed: no inline code or styles, no plugins, no framing, no other origin.

The interactive API docs (``/docs``, Swagger UI) get their own policy, :func:`build_docs_policy`: the page
FastAPI generates starts Swagger UI with one inline script, which is allowed by its hash rather than
served without a policy or with ``'unsafe-inline'`` (either would let any injected script run on a page
that can send requests to the API). Swagger UI's stylesheet draws its icons from ``data:`` SVG images.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def script_hash(source: str) -> str:
    """CSP source expression allowing one inline script whose text is exactly ``source``."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def build_policy(inline_scripts: Iterable[str] = ()) -> str:
    """The page policy, allowing exactly the given inline scripts (by hash)."""
    hashes = " ".join(script_hash(s) for s in inline_scripts)
    directives = [
        "default-src 'none'",
        f"script-src 'self' {hashes} 'wasm-unsafe-eval'".replace("  ", " "),
        "worker-src blob:",
        "connect-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob:",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def build_docs_policy(inline_scripts: Iterable[str]) -> str:
    """The ``/docs`` policy: Swagger UI from our origin, its init script by hash, ``data:`` icons."""
    hashes = " ".join(script_hash(s) for s in inline_scripts)
    directives = [
        "default-src 'none'",
        f"script-src 'self' {hashes}".rstrip(),
        "connect-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


#: Sent with every page and page asset next to the CSP.
COMPANION_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class PageSecurityHeaders:
    """ASGI middleware adding the CSP and companion headers to responses of the page paths only.

    The API routes are left untouched (their clients are not browsers rendering HTML). ``policy_for``
    maps the request path to its policy, or None for a path that gets no headers.
    """

    def __init__(self, app: ASGIApp, *, policy_for: Callable[[str], str | None]) -> None:
        self.app = app
        self.policy_for = policy_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self.policy_for(scope.get("path", "")) if scope["type"] == "http" else None
        if policy is None:
            await self.app(scope, receive, send)
            return
        encoded = policy.encode("latin-1")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _REPLACED]
                headers.append((b"content-security-policy", encoded))
                headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _COMPANION)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_COMPANION = tuple(COMPANION_HEADERS.items())
_REPLACED = {b"content-security-policy", *(k.lower().encode("latin-1") for k in COMPANION_HEADERS)}

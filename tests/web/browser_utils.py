"""Helpers for the browser tests: a uvicorn server on a free loopback port, request/console recording and
comparing a canvas screenshot with an input photo."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
import uvicorn
from PIL import Image

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@contextmanager
def serve(app, *, startup_timeout: float = 120.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during startup")
        if time.monotonic() > deadline:
            raise TimeoutError(f"uvicorn did not start within {startup_timeout} s")
        time.sleep(0.05)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class PageLog:
    """Everything a page asked for and complained about."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def off_loopback(self) -> list[str]:
        """Requests whose origin is not 127.0.0.1 (blob: URLs count by the origin inside them)."""
        bad = []
        for url in self.requests:
            inner = url[len("blob:") :] if url.startswith("blob:") else url
            parts = urlsplit(inner)
            if parts.scheme not in ("http", "https") or parts.hostname != LOOPBACK:
                bad.append(url)
        return bad


def png_to_array(data: bytes) -> np.ndarray:
    """PNG bytes → ``[H, W, 3]`` float in [0, 1]."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


def letterbox_crop(view: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """The part of a ``[Hv, Wv, 3]`` canvas where the viewer places an ``image_hw`` photo (centred, fitted),
    resampled to the photo's size."""
    Hv, Wv = view.shape[:2]
    H, W = image_hw
    s = min(Wv / W, Hv / H)
    x0, y0 = (Wv - s * W) / 2, (Hv - s * H) / 2
    box = (round(x0), round(y0), round(x0 + s * W), round(y0 + s * H))
    im = Image.fromarray((view * 255).astype(np.uint8)).crop(box).resize((W, H), Image.BILINEAR)
    return np.asarray(im, dtype=np.float64) / 255.0


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two same-size images (all channels)."""
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0

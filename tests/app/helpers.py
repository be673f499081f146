"""Helpers for the service tests: a real uvicorn server on loopback, image and zip builders."""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from PIL import Image

from app.api.deps import get_reconstructor
from app.core.config import Settings
from app.main import create_app


class LiveServer:
    """``create_app(settings)`` served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 120.0), **kw)


@contextmanager
def live_server(settings: Settings, reconstructor: Any = None) -> Iterator[LiveServer]:
    """Serve an app; ``reconstructor`` (a real ``models.Reconstructor``) replaces loading one."""
    app = create_app(settings)
    if reconstructor is not None:
        app.dependency_overrides[get_reconstructor] = lambda: reconstructor
    srv = LiveServer(app).start()
    try:
        yield srv
    finally:
        srv.stop()


def wait_ready(client: httpx.Client, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"/readyz never turned 200: {client.get('/readyz').json()}")


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict:
    """Poll until the job ends; returns its JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/reconstructions/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def wait_metric(client: httpx.Client, name: str, minimum: float, timeout: float = 30.0) -> float:
    """Poll ``/metrics`` until the sample ``name`` reaches ``minimum``; returns its value."""
    deadline = time.monotonic() + timeout
    value = float("nan")
    while time.monotonic() < deadline:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                value = float(line.split()[-1])
        if value >= minimum:
            return value
        time.sleep(0.1)
    raise AssertionError(f"metric {name} stayed at {value}, below {minimum}")


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def array_png(rgb: np.ndarray) -> bytes:
    """``[H, W, 3]`` float in [0, 1] or uint8 → PNG bytes."""
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A zip with the given entries (names used verbatim, even hostile ones) and optional symlink entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            info.create_system = 3
            zf.writestr(info, target)
    return buf.getvalue()


def files_field(items: list[tuple[str, bytes]]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]

"""Kill the service (SIGKILL) with jobs queued and running; the next start loses none and finishes them.

Runs ``python -m app serve`` as a real subprocess on loopback, twice, on the same data dir.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.jobs.store import JobStore
from tests.app.helpers import array_png, wait_job

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    data: Path, workers: int, database_url: str | None = None
) -> Iterator[tuple[subprocess.Popen, httpx.Client]]:
    port = free_port()
    env = {
        **os.environ,
        "ONEPASS_WARMUP": "false",
        "ONEPASS_MAX_WAIT_MS": "300",
        "ONEPASS_LOG_LEVEL": "warning",
    }
    env.pop("ONEPASS_DATABASE_URL", None)
    if database_url:
        env["ONEPASS_DATABASE_URL"] = database_url
    cmd = [
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield proc, client
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_restart_mid_queue_loses_no_job(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    from models.data.procedural import make_scene

    data = tmp_path / "data"
    # SQLite: the default file in the data folder; PostgreSQL: ONEPASS_DATABASE_URL to a fresh database
    url = request.getfixturevalue("postgres").new_database() if database == "postgresql" else None
    options = json.dumps({"max_anchors": 2, "outputs": ["cameras", "depth"]})
    uploads = []
    for seed in range(3):
        scene = make_scene(seed, views=2, width=160, height=80)
        uploads.append(
            [("files", (f"{i}.png", array_png(im), "image/png")) for i, im in enumerate(scene.images)]
        )

    # 1) A queue-only node takes the first job; killed, it must not lose it.
    with serve(data, workers=0, database_url=url) as (proc, client):
        first = client.post("/v1/reconstructions", files=uploads[0], data={"options": options}).json()["id"]
        proc.kill()
        proc.wait()

    # 2) A node with a worker starts on it, gets two more, and is killed while reconstructing.
    with serve(data, workers=1, database_url=url) as (proc, client):
        ids = [first] + [
            client.post("/v1/reconstructions", files=u, data={"options": options}).json()["id"]
            for u in uploads[1:]
        ]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/reconstructions/{first}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.01)
        proc.kill()
        proc.wait()

    store = JobStore(url or f"sqlite:///{(data / 'onepass.db').resolve()}")
    at_kill = {i: store.get_job(i) for i in ids}
    store.close()
    assert at_kill[first].status == "running" and at_kill[first].attempts == 1
    assert all(j.status in ("queued", "running", "succeeded") for j in at_kill.values())

    # 3) The next start re-queues what was running and finishes everything.
    with serve(data, workers=1, database_url=url) as (proc, client):
        finished = {i: wait_job(client, i, timeout=180) for i in ids}
        assert client.get("/v1/reconstructions", params={"status": "running"}).json()["total"] == 0
    for i, job in finished.items():
        assert job["status"] == "succeeded", job
        was = at_kill[i]
        expected_attempts = was.attempts + 1 if was.status == "running" else max(was.attempts, 1)
        assert job["attempts"] == expected_attempts, (i, was, job)
        assert (data / "jobs" / i / "artifacts" / "cameras.json").is_file()
    assert list((data / "jobs").glob("*/.artifacts-*")) == []
    assert list((data / "uploads").iterdir()) == []

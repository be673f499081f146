"""Every route answers bad input with the right status and a message naming the file or field.

A queue-only server (``workers=0``: no model) on loopback is enough: every check here happens before a job
reaches a worker. After each rejected upload nothing is left in the upload folder.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.app.helpers import LiveServer, files_field, image_bytes, live_server, zip_bytes

MiB = 1 << 20
# One server for the module: keep its tests on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("app-bad-input")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("data")
    settings = Settings(
        data_dir=data,
        workers=0,
        max_files=4,
        max_pixels=200_000,
        max_file_bytes=1 * MiB,
        max_body_bytes=2 * MiB,
        sync_max_images=2,
    )
    with live_server(settings) as srv:
        yield srv


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
    uploads = Path(server.app.state.settings.data_dir) / "uploads"
    assert list(uploads.iterdir()) == [], "a rejected upload left files behind"


def post(
    client: httpx.Client, items: list[tuple[str, bytes]], options: dict | str | None = None, **kw
) -> httpx.Response:
    data = {}
    if options is not None:
        data["options"] = options if isinstance(options, str) else json.dumps(options)
    return client.post("/v1/reconstructions", files=files_field(items), data=data, **kw)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` but holds almost no data (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_valid_upload_is_accepted(client: httpx.Client) -> None:
    a, b = image_bytes(seed=1), image_bytes(fmt="JPEG", seed=2)
    r = post(client, [("a.png", a), ("b.jpg", b)], {"max_anchors": 2})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/reconstructions/{job['id']}"
    assert job["status"] == "queued" and job["image_names"] == ["a.png", "b.jpg"]
    assert job["options"] == {"max_anchors": 2, "preset": "tiny", "refine": False}  # defaults made explicit
    # The inputs are readable from the start, byte for byte, typed by their decoded format.
    base = f"/v1/reconstructions/{job['id']}/inputs"
    for name, data, media in (("a.png", a, "image/png"), ("b.jpg", b, "image/jpeg")):
        got = client.get(f"{base}/{name}")
        assert got.status_code == 200 and got.content == data and got.headers["content-type"] == media
        assert client.get(got.url, headers={"If-None-Match": got.headers["etag"]}).status_code == 304
    for name in ("c.png", "%2E%2E"):
        missing = client.get(f"{base}/{name}")
        assert missing.status_code == 404 and "input image" in missing.json()["detail"], name
    assert client.get(f"{base}/..%2F..%2Fonepass.db").status_code == 404


def test_not_an_image_is_415(client: httpx.Client) -> None:
    r = post(client, [("notes.txt", b"hello, not an image")])
    assert r.status_code == 415
    assert "notes.txt" in r.json()["detail"]


def test_unsupported_image_format_is_415(client: httpx.Client) -> None:
    r = post(client, [("anim.gif", image_bytes(fmt="GIF"))])
    assert r.status_code == 415
    assert "anim.gif" in r.json()["detail"] and "GIF" in r.json()["detail"]


def test_truncated_image_is_422(client: httpx.Client) -> None:
    data = image_bytes(128, 96, seed=3)
    r = post(client, [("cut.png", data[: len(data) // 2])])
    assert r.status_code == 422
    assert "cut.png" in r.json()["detail"]


def test_too_many_pixels_is_413(client: httpx.Client) -> None:
    r = post(client, [("big.png", image_bytes(600, 400))])  # 240000 > 200000
    assert r.status_code == 413
    assert "big.png" in r.json()["detail"] and "ONEPASS_MAX_PIXELS" in r.json()["detail"]


def test_decompression_bomb_is_413(client: httpx.Client) -> None:
    r = post(client, [("bomb.png", png_header_only(20000, 20000))])
    assert r.status_code == 413
    assert "bomb.png" in r.json()["detail"]


def test_too_many_files_is_413(client: httpx.Client) -> None:
    r = post(client, [(f"{i}.png", image_bytes(16, 16, seed=i)) for i in range(5)])
    assert r.status_code == 413
    assert "ONEPASS_MAX_FILES" in r.json()["detail"]


def test_file_too_large_is_413(client: httpx.Client) -> None:
    r = post(client, [("huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (MiB + 10))])
    assert r.status_code == 413
    assert "huge.png" in r.json()["detail"]


def test_body_too_large_is_413(client: httpx.Client) -> None:
    part = b"\x89PNG\r\n\x1a\n" + b"\0" * (MiB - 100)
    r = post(client, [("a.png", part), ("b.png", part), ("c.png", part)])
    assert r.status_code == 413
    assert "ONEPASS_MAX_BODY_BYTES" in r.json()["detail"]


def test_not_multipart_is_415(client: httpx.Client) -> None:
    r = client.post("/v1/reconstructions", json={"files": []})
    assert r.status_code == 415


def test_no_files_is_422(client: httpx.Client) -> None:
    r = client.post("/v1/reconstructions", files={"options": (None, "{}")})
    assert r.status_code == 422
    assert "no files" in r.json()["detail"]


def test_unknown_form_field_is_422(client: httpx.Client) -> None:
    r = client.post("/v1/reconstructions", files=[("images", ("a.png", image_bytes(), "image/png"))])
    assert r.status_code == 422
    assert "images" in r.json()["detail"]


@pytest.mark.parametrize(
    ("entries", "symlinks", "status", "needle"),
    [
        ({"../evil.png": image_bytes()}, None, 422, "'..'"),
        ({"/etc/evil.png": image_bytes()}, None, 422, "absolute"),
        ({"scene/a.png": image_bytes()}, {"scene/link.png": "/etc/passwd"}, 422, "symlink"),
        ({"a.png": image_bytes(), "readme.txt": b"text"}, None, 415, "readme.txt"),
    ],
    ids=["dotdot", "absolute", "symlink", "non-image"],
)
def test_hostile_zip_is_rejected(client: httpx.Client, entries, symlinks, status, needle) -> None:
    r = post(client, [("scene.zip", zip_bytes(entries, symlinks))])
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"] and "scene.zip" in r.json()["detail"]


def test_zip_with_other_files_is_422(client: httpx.Client) -> None:
    r = post(client, [("scene.zip", zip_bytes({"a.png": image_bytes()})), ("b.png", image_bytes())])
    assert r.status_code == 422
    assert "only file" in r.json()["detail"]


def test_zip_of_images_is_accepted(client: httpx.Client) -> None:
    entries = {"s/b.png": image_bytes(seed=1), "s/a.png": image_bytes(seed=2), "__MACOSX/._a.png": b"junk"}
    r = post(client, [("scene.zip", zip_bytes(entries))])
    assert r.status_code == 202, r.text
    assert r.json()["image_names"] == ["a.png", "b.png"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"colour": "red"}, "options.colour"),
        ({"max_anchors": 0}, "options.max_anchors"),
        ({"resolution": 10_000}, "options.resolution"),
        ({"outputs": ["splats", "mesh"]}, "options.outputs"),
        ("{not json", "options"),
        ({"preset": "vggt-7b"}, "options.preset"),
        ({"resolution": 100}, "options.resolution"),  # not a multiple of the patch size
        ({"video_fps": 0}, "options.video_fps"),
    ],
)
def test_bad_options_are_422(client: httpx.Client, options, field) -> None:
    r = post(client, [("a.png", image_bytes())], options)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(field), r.json()


def _eye(scale: float = 1.0) -> list[list[float]]:
    return [[scale, 0, 0, 0], [0, scale, 0, 0], [0, 0, scale, 0], [0, 0, 0, 1]]


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"poses": [_eye(2.0)]}, "not rigid"),
        ({"poses": [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]]]}, "not rigid"),  # reflection
        ({"poses": [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]]}, "last row"),
        ('{"poses": [[[NaN, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]}', "non-finite"),
        ('{"intrinsics": [[[Infinity, 0, 32], [0, 50, 24], [0, 0, 1]]]}', "non-finite"),
        ({"intrinsics": [[[-5, 0, 32], [0, 50, 24], [0, 0, 1]]]}, "positive focal"),
        ({"intrinsics": [[[50, 0], [0, 50]]]}, "3x3"),
        ({"poses": [_eye(), _eye()]}, "2 entries for 1 images"),
    ],
)
def test_bad_cameras_are_422(client: httpx.Client, options, needle) -> None:
    r = post(client, [("a.png", image_bytes())], options)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_idempotency_key(client: httpx.Client) -> None:
    items = [("a.png", image_bytes(seed=7))]
    first = post(client, items, {"max_anchors": 3}, headers={"Idempotency-Key": "key-1"})
    again = post(client, items, {"max_anchors": 3}, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = post(client, items, {"max_anchors": 4}, headers={"Idempotency-Key": "key-1"})
    assert other.status_code == 422 and "key-1" in other.json()["detail"]
    # a default spelled out is the same payload as the default left out
    plain = post(client, items, {}, headers={"Idempotency-Key": "key-2"})
    spelled = post(client, items, {"refine": False, "max_anchors": 8}, headers={"Idempotency-Key": "key-2"})
    assert spelled.status_code == 202 and spelled.json()["id"] == plain.json()["id"]
    refined = post(client, items, {"refine": True}, headers={"Idempotency-Key": "key-2"})
    assert refined.status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/reconstructions/{id}"),
        ("GET", "/v1/reconstructions/{id}/events"),
        ("GET", "/v1/reconstructions/{id}/artifacts"),
        ("GET", "/v1/reconstructions/{id}/artifacts/cameras.json"),
        ("GET", "/v1/reconstructions/{id}/inputs/a.png"),
        ("POST", "/v1/reconstructions/{id}/cancel"),
        ("DELETE", "/v1/reconstructions/{id}"),
        ("GET", "/v1/batches/{id}"),
    ],
)
def test_unknown_ids_are_404(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path.format(id="0" * 32))
    assert r.status_code == 404
    assert "0" * 32 in r.json()["detail"]


def test_render_validation(client: httpx.Client) -> None:
    job = post(client, [("a.png", image_bytes())]).json()
    url = f"/v1/reconstructions/{job['id']}/render"
    K = [[50, 0, 32], [0, 50, 24], [0, 0, 1]]
    bad = client.post(url, json={"camera": {"K": K, "world_to_camera": _eye(3.0), "width": 64, "height": 48}})
    assert bad.status_code == 422 and "not rigid" in bad.text
    both = client.post(
        url,
        json={
            "camera": {"K": K, "world_to_camera": _eye(), "width": 64, "height": 48},
            "path": {"kind": "orbit"},
        },
    )
    assert both.status_code == 422 and "exactly one" in both.text
    unknown_path = client.post(url, json={"path": {"kind": "zigzag"}})
    assert unknown_path.status_code == 422 and "path.kind" in unknown_path.text
    not_done = client.post(url, json={"path": {"kind": "orbit", "frames": 4}})
    assert not_done.status_code == 409 and "queued" in not_done.json()["detail"]
    arts = client.get(f"/v1/reconstructions/{job['id']}/artifacts")
    assert arts.status_code == 409


def test_list_cancel_delete(client: httpx.Client, server: LiveServer) -> None:
    ids = [post(client, [("a.png", image_bytes(seed=40 + i))]).json()["id"] for i in range(3)]
    page = client.get("/v1/reconstructions", params={"limit": 2}).json()
    assert page["limit"] == 2 and len(page["items"]) == 2 and page["total"] >= 3
    assert page["items"][0]["created_at"] >= page["items"][1]["created_at"]
    assert client.get("/v1/reconstructions", params={"status": "sleeping"}).status_code == 422
    assert client.get("/v1/reconstructions", params={"limit": 0}).status_code == 422

    cancelled = client.post(f"/v1/reconstructions/{ids[0]}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post(f"/v1/reconstructions/{ids[0]}/cancel").status_code == 409
    listed = client.get("/v1/reconstructions", params={"status": "cancelled", "limit": 500}).json()["items"]
    assert ids[0] in [j["id"] for j in listed]

    job_dir = Path(server.app.state.settings.data_dir) / "jobs" / ids[1]
    assert (job_dir / "inputs" / "a.png").is_file()
    assert client.delete(f"/v1/reconstructions/{ids[1]}").status_code == 204
    assert not job_dir.exists()
    assert client.get(f"/v1/reconstructions/{ids[1]}").status_code == 404


def test_sync_without_workers_is_503(client: httpx.Client) -> None:
    r = client.post("/v1/reconstruct", files=files_field([("a.png", image_bytes())]))
    assert r.status_code == 503


def test_batches_bad_input(client: httpx.Client) -> None:
    r = client.post("/v1/batches", json={"folders": ["scene1"]})
    assert r.status_code == 403 and "ONEPASS_BATCH_ROOT" in r.json()["detail"]
    r = client.post("/v1/batches", json={"folders": []})
    assert r.status_code == 422 and "manifest.folders" in r.json()["detail"]
    r = client.post("/v1/batches", files=files_field([("b.zip", zip_bytes({"loose.png": image_bytes()}))]))
    assert r.status_code == 422 and "loose.png" in r.json()["detail"]
    r = client.post(
        "/v1/batches", files=files_field([("b.zip", zip_bytes({"s1/../../x.png": image_bytes()}))])
    )
    assert r.status_code == 422 and "'..'" in r.json()["detail"]


def test_probes_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json() == {"ready": False, "workers": []}
    text = client.get("/metrics").text
    for name in (
        "onepass_http_request_duration_seconds_bucket",
        "onepass_queue_depth",
        'onepass_jobs{status="queued"}',
        "onepass_batch_size_bucket",
        "onepass_device_memory_bytes",
    ):
        assert name in text, name
    spec = client.get("/openapi.json").json()
    assert "/v1/reconstructions/{job_id}/render" in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/v1/reconstructions"]["post"]["requestBody"]["content"]


def test_video_upload_becomes_frames(client: httpx.Client, tmp_path: Path) -> None:
    import imageio.v3 as iio
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 255, (30, 48, 64, 3), dtype=np.uint8)
    video = tmp_path / "walk.mp4"
    iio.imwrite(video, frames, plugin="FFMPEG", fps=10, macro_block_size=16)  # 3 s
    r = post(client, [("walk.mp4", video.read_bytes())], {"video_fps": 1})
    assert r.status_code == 202, r.text
    assert r.json()["image_names"] == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    capped = post(client, [("walk.mp4", video.read_bytes())], {"video_fps": 10})
    assert capped.status_code == 202 and capped.json()["num_images"] == 4  # ONEPASS_MAX_FILES
    broken = post(client, [("broken.mp4", b"\0\0\0\x18ftypmp42" + b"junk" * 100)])
    assert broken.status_code == 422 and "broken.mp4" in broken.json()["detail"]

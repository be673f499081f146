"""The real app on loopback with the real tiny model: upload → job (SSE progress) → artifacts → renders;
the synchronous call; batches of scenes from a zip and from a server-side manifest.

Scenes are procedural (``models.data.procedural``), 160×80 pixels so the model runs at 112×224.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator

import httpx
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from app.core.config import Settings
from tests.app.helpers import LiveServer, array_png, live_server, wait_job, wait_metric, wait_ready

# One server for the module: keep its tests on one xdist worker (make test uses --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("app-roundtrip")]

W, H = 160, 80


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from models.data.procedural import make_scene, save_scene

    root = tmp_path_factory.mktemp("scenes")
    made = {}
    for name, seed, views in (("alpha", 1, 3), ("beta", 2, 2), ("gamma", 3, 2), ("delta", 4, 2)):
        scene = make_scene(seed, views=views, width=W, height=H)
        save_scene(scene, root / name)
        made[name] = scene
    return {"root": root, "scenes": made}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, scenes: dict, tiny_reconstructor
) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        batching=True,  # off by default on the CPU
        max_wait_ms=1000,  # a batch of three uploaded together always fills before it runs
        batch_root=scenes["root"],
        max_render_frames=8,
        idle_trim_s=0.2,  # free memory goes back to the OS between tests (test_metrics_after_jobs)
    )
    with live_server(settings, tiny_reconstructor) as srv:
        with srv.client() as c:
            wait_ready(c)
        yield srv


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def upload_items(scene) -> list:
    return [("files", (f"view{i}.png", array_png(im), "image/png")) for i, im in enumerate(scene.images)]


def read_events(client: httpx.Client, job_id: str) -> list[tuple[str, dict]]:
    """Every SSE event of a job until its stream ends: (event name, JSON data)."""
    events = []
    with client.stream("GET", f"/v1/reconstructions/{job_id}/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name, data = None, None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and name is not None:
                events.append((name, data))
                name, data = None, None
    return events


def test_upload_progress_artifacts_and_renders(
    client: httpx.Client, server: LiveServer, scenes: dict
) -> None:
    # the warm-up wrote every output once (the exporters' start-up is not paid by the first request)
    workers = client.get("/readyz").json()["workers"]
    assert workers and all(w["ready"] and w["outputs_s"] > 0 for w in workers), workers
    scene = scenes["scenes"]["alpha"]
    options = {"max_anchors": 2, "intrinsics": scene.K.tolist()}
    r = client.post("/v1/reconstructions", files=upload_items(scene), data={"options": json.dumps(options)})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    events = read_events(client, job_id)
    assert events[-1] == ("done", {"id": job_id, "status": "succeeded"})
    progress = [d["progress"] for name, d in events if name == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    stages = [d["stage"] for name, d in events if name == "progress"]
    assert "reconstructing" in stages and stages[-1] == "done"

    job = client.get(f"/v1/reconstructions/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert job["image_names"] == ["view0.png", "view1.png", "view2.png"]
    assert set(job["timings"]) >= {"load_s", "forward_s", "write_s", "total_s", "batch_size"}

    listing = client.get(f"/v1/reconstructions/{job_id}/artifacts").json()
    names = {a["name"] for a in listing["items"]}
    expected = {
        "cameras.json",
        "splats.ply",
        "splats.spz",
        "points.ply",
        "scene.glb",
        "colmap.zip",
        "report.json",
    }
    assert expected <= names
    assert {f"depth/view{i}.{ext}" for i in range(3) for ext in ("npy", "png")} <= names
    # Input photos are not copied into the artifacts by default, but every job serves them.
    assert not any(n.startswith("images/") for n in names)
    photo = client.get(f"/v1/reconstructions/{job_id}/inputs/view1.png")
    assert photo.status_code == 200 and photo.content == upload_items(scene)[1][1][1]

    # cameras.json: the given intrinsics come back at the original image size.
    cams = client.get(f"/v1/reconstructions/{job_id}/artifacts/cameras.json")
    assert cams.status_code == 200 and cams.headers["content-type"] == "application/json"
    frames = cams.json()["frames"]
    assert [f["image"] for f in frames] == job["image_names"] and frames[0]["width"] == W
    np.testing.assert_allclose(np.array([f["K"] for f in frames]), scene.K, rtol=1e-9)

    # ETag and Range.
    etag = cams.headers["etag"]
    assert client.get(cams.url, headers={"If-None-Match": etag}).status_code == 304
    part = client.get(cams.url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == cams.content[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(cams.content)}"
    stale = client.get(cams.url, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == cams.content

    depth = np.load(io.BytesIO(client.get(f"/v1/reconstructions/{job_id}/artifacts/depth/view1.npy").content))
    assert depth.shape == (112, 224) and depth.dtype == np.float32
    glb = client.get(f"/v1/reconstructions/{job_id}/artifacts/scene.glb")
    assert glb.headers["content-type"] == "model/gltf-binary" and glb.content[:4] == b"glTF"
    with zipfile.ZipFile(
        io.BytesIO(client.get(f"/v1/reconstructions/{job_id}/artifacts/colmap.zip").content)
    ) as z:
        assert {"colmap/sparse/0/cameras.bin", "colmap/sparse/0/images.bin"} <= set(z.namelist())
        points_url = f"/v1/reconstructions/{job_id}/artifacts/colmap/sparse/0/points3D.bin"
        assert z.read("colmap/sparse/0/points3D.bin") == client.get(points_url).content  # zip is lossless
    report = client.get(f"/v1/reconstructions/{job_id}/artifacts/report.json").json()
    assert report["views"] == 3 and report["intrinsics"] == "given"

    # Render from the first input camera: pixel-aligned Gaussians of an anchor view reproject onto it.
    render_url = f"/v1/reconstructions/{job_id}/render"
    cam = {"K": frames[0]["K"], "world_to_camera": frames[0]["world_to_camera"], "width": W, "height": H}
    png = client.post(render_url, json={"camera": cam})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    rendered = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"), dtype=np.float64) / 255
    assert rendered.shape == (H, W, 3)
    assert np.abs(rendered - scene.images[0]).mean() < 0.1
    worker = server.app.state.pool.workers[0]
    assert job_id in worker.scenes  # cached for the next render

    orbit = client.post(render_url, json={"path": {"kind": "orbit", "frames": 4, "width": 64}})
    assert orbit.status_code == 200 and orbit.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(orbit.content)) as z:
        assert z.namelist() == [f"frame_{i:04d}.png" for i in range(4)]
        with Image.open(io.BytesIO(z.read("frame_0003.png"))) as im:
            assert im.size == (64, 32)  # height from the inputs' aspect ratio
    mp4 = client.post(render_url, json={"path": {"kind": "inputs", "frames": 3, "format": "mp4", "fps": 5}})
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    frames_mp4 = iio.imread(mp4.content, plugin="FFMPEG", extension=".mp4")
    assert frames_mp4.shape[0] == 3
    too_many = client.post(render_url, json={"path": {"kind": "spiral", "frames": 9}})
    assert too_many.status_code == 422 and "ONEPASS_MAX_RENDER_FRAMES" in too_many.json()["detail"]

    assert client.delete(f"/v1/reconstructions/{job_id}").status_code == 204
    assert job_id not in worker.scenes
    assert client.get(f"/v1/reconstructions/{job_id}/artifacts").status_code == 404
    assert client.get(f"/v1/reconstructions/{job_id}/inputs/view1.png").status_code == 404


def test_sync_reconstruct(client: httpx.Client, scenes: dict) -> None:
    scene = scenes["scenes"]["beta"]
    r = client.post("/v1/reconstruct", files=upload_items(scene), data={"options": '{"max_anchors": 2}'})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job"]["status"] == "succeeded" and r.headers["location"].endswith(body["job"]["id"])
    assert [c["image"] for c in body["cameras"]] == ["view0.png", "view1.png"]
    T = np.array(body["cameras"][1]["world_to_camera"])
    np.testing.assert_allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-5)
    assert any(a["name"] == "splats.ply" for a in body["artifacts"])


def test_sync_reconstruct_with_refined_cameras(client: httpx.Client, tiny_reconstructor) -> None:
    """``options.refine`` reaches the model: report.json says which views were refined, the answer's
    cameras are the refined ones (as an in-process ``reconstruct(refine=True)``), a non-boolean is 422."""
    from models.data.procedural import make_scene

    scene = make_scene(3, views=4, width=224, height=224, kind="forward")  # textured: every view registers
    images = [(im * 255 + 0.5).clip(0, 255).astype(np.uint8) for im in scene.images]
    items = [("files", (f"view{i}.png", array_png(im), "image/png")) for i, im in enumerate(images)]
    options = json.dumps({"refine": True, "outputs": ["cameras", "report"]})
    r = client.post("/v1/reconstruct", files=items, data={"options": options})
    assert r.status_code == 200, r.text
    job_id = r.json()["job"]["id"]
    report = client.get(f"/v1/reconstructions/{job_id}/artifacts/report.json").json()
    assert report["refinement"]["status"] == "done" and report["refinement"]["refined_views"] == [1, 2, 3]
    assert report["timings_s"]["refine"] > 0
    served = np.array([c["world_to_camera"] for c in r.json()["cameras"]])
    local = tiny_reconstructor.reconstruct(images, refine=True).world_to_camera
    plain = tiny_reconstructor.reconstruct(images).world_to_camera
    np.testing.assert_allclose(served, local, atol=1e-5)
    assert np.abs(served - plain).max() > 0.01
    bad = client.post("/v1/reconstruct", files=items, data={"options": '{"refine": "maybe"}'})
    assert bad.status_code == 422 and "options.refine" in bad.text


def test_batch_of_three_scenes_from_a_zip(client: httpx.Client, scenes: dict) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("beta", "gamma", "delta"):  # scene layout: images/ + cameras.json + depth/
            for p in sorted((scenes["root"] / name).rglob("*")):
                if p.is_file():
                    z.write(p, f"{name}/{p.relative_to(scenes['root'] / name).as_posix()}")
    r = client.post(
        "/v1/batches",
        files=[("files", ("three.zip", buf.getvalue(), "application/zip"))],
        data={"options": json.dumps({"max_anchors": 2, "outputs": ["depth"]})},
    )
    assert r.status_code == 202, r.text
    batch = r.json()
    assert r.headers["location"] == f"/v1/batches/{batch['id']}"
    assert [j["scene"] for j in batch["jobs"]] == ["beta", "delta", "gamma"]
    assert all(j["image_names"] == ["000.png", "001.png"] for j in batch["jobs"])
    deadline = time.monotonic() + 180
    while not (batch := client.get(f"/v1/batches/{batch['id']}").json())["done"]:
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)
    assert batch["counts"]["succeeded"] == 3
    # "done" and the job list agree (the list is read after the counts): every listed job has ended
    assert all(j["status"] == "succeeded" for j in batch["jobs"]), batch["jobs"]
    # Same shape, uploaded together: the scenes share forward passes (how the three split depends on when
    # the worker claims them)
    sizes = [j["timings"]["batch_size"] for j in batch["jobs"]]
    assert max(sizes) >= 2, batch["jobs"]
    names = {a["name"] for a in client.get(batch["jobs"][0]["links"]["artifacts"]).json()["items"]}
    assert names == {"cameras.json", "depth/000.npy", "depth/000.png", "depth/001.npy", "depth/001.png"}


def test_resolution_option_sets_the_model_width(client: httpx.Client, scenes: dict) -> None:
    scene = scenes["scenes"]["gamma"]
    options = {"max_anchors": 2, "resolution": 112, "outputs": ["depth"]}
    r = client.post("/v1/reconstructions", files=upload_items(scene), data={"options": json.dumps(options)})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded" and job["options"]["resolution"] == 112, job
    base = f"/v1/reconstructions/{job['id']}/artifacts"
    depth = np.load(io.BytesIO(client.get(f"{base}/depth/view0.npy").content))
    assert depth.shape == (56, 112)  # 160×80 photos at width 112
    frames = client.get(f"{base}/cameras.json").json()["frames"]
    assert frames[0]["depth_hw"] == [56, 112] and frames[0]["width"] == W  # K stays at the photo's size
    bad = client.post(
        "/v1/reconstructions",
        files=upload_items(scene),
        data={"options": json.dumps({"resolution": 126 + 1})},
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("options.resolution must be a multiple")


def test_batch_from_a_server_folder(client: httpx.Client) -> None:
    r = client.post("/v1/batches", json={"folders": ["gamma"], "options": {"max_anchors": 2, "outputs": []}})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["jobs"][0]["id"])
    assert job["status"] == "succeeded" and job["scene"] == "gamma"
    for folder, status in (("../gamma", 422), ("/etc", 422), ("missing", 404)):
        bad = client.post("/v1/batches", json={"folders": [folder]})
        assert bad.status_code == status and folder in bad.json()["detail"]


def test_metrics_after_jobs(client: httpx.Client, scenes: dict) -> None:
    # one job of its own: the module's server is rebuilt if xdist ever splits the module across its runs
    r = client.post("/v1/reconstruct", files=upload_items(scenes["scenes"]["beta"]))
    assert r.status_code == 200, r.text
    text = client.get("/metrics").text
    count = next(line for line in text.splitlines() if line.startswith("onepass_batch_size_count"))
    assert float(count.split()[-1]) >= 1
    assert 'onepass_jobs_finished_total{status="succeeded"}' in text
    assert 'onepass_device_memory_bytes{device="cpu",kind="rss"}' in text
    # no job running for idle_trim_s = 0.2 s: the workers' free memory was handed back at least once
    assert wait_metric(client, "onepass_idle_memory_trims_total", 1) >= 1

"""``ONEPASS_CPU_BF16``: a real server loads the built-in model with bfloat16 autocast on its CPU worker,
says so in report.json, and answers with cameras close to a float32 reconstruction of the same images."""

from __future__ import annotations

import json

import numpy as np

from app.core.config import Settings
from models import Reconstructor
from tests.app.helpers import array_png, files_field, live_server, wait_ready


def test_cpu_bf16_setting_reaches_the_worker_and_the_report(tmp_path) -> None:
    from models.data.procedural import make_scene

    scene = make_scene(11, views=3, width=224, height=224, kind="objects")
    images = [(im * 255 + 0.5).clip(0, 255).astype(np.uint8) for im in scene.images]
    items = [(f"view{i}.png", array_png(im)) for i, im in enumerate(images)]
    settings = Settings(data_dir=tmp_path, workers=1, device="cpu", cpu_bf16=True, torch_threads=1)
    with live_server(settings) as srv, srv.client() as client:  # the real model load path, no override
        wait_ready(client)
        options = json.dumps({"outputs": ["cameras", "report"]})
        r = client.post("/v1/reconstruct", files=files_field(items), data={"options": options})
        assert r.status_code == 200, r.text
        job_id = r.json()["job"]["id"]
        report = client.get(f"/v1/reconstructions/{job_id}/artifacts/report.json").json()
        served = np.array([c["world_to_camera"] for c in r.json()["cameras"]])
    assert report["precision"] == "bfloat16 autocast (trunk and dense heads)"
    reference = Reconstructor("tiny", device="cpu").reconstruct(images)
    assert reference.report["precision"] == "float32"
    # bf16 rounding moves the cameras a little, never far (translations are ~1 in the first camera's frame)
    gap = np.abs(served - reference.world_to_camera).max()
    assert 0 < gap < 0.05

"""``ONEPASS_REGISTRATION``: a real server registers support views against a pair of anchors when told to,
says so in report.json, and answers with the cameras an in-process ``Reconstructor`` gives for that mode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.config import Settings
from models import Reconstructor
from tests.app.helpers import array_png, files_field, live_server, wait_ready


def test_registration_setting_reaches_the_worker_and_the_report(tmp_path) -> None:
    from models.data.procedural import make_scene

    scene = make_scene(12, views=6, width=224, height=224, kind="objects")
    images = [(im * 255 + 0.5).clip(0, 255).astype(np.uint8) for im in scene.images]
    items = [(f"view{i}.png", array_png(im)) for i, im in enumerate(images)]
    settings = Settings(data_dir=tmp_path, workers=1, device="cpu", registration="pair", torch_threads=1)
    with live_server(settings) as srv, srv.client() as client:
        wait_ready(client)
        options = json.dumps({"outputs": ["cameras", "report"], "max_anchors": 3})
        r = client.post("/v1/reconstruct", files=files_field(items), data={"options": options})
        assert r.status_code == 200, r.text
        job_id = r.json()["job"]["id"]
        report = client.get(f"/v1/reconstructions/{job_id}/artifacts/report.json").json()
        served = np.array([c["world_to_camera"] for c in r.json()["cameras"]])
    assert report["registration"] == "pair" and report["compression"] == "zpressor"
    pair = Reconstructor("tiny", device="cpu", registration="pair").reconstruct(images, max_anchors=3)
    every = Reconstructor("tiny", device="cpu").reconstruct(images, max_anchors=3)
    np.testing.assert_allclose(served, pair.world_to_camera, atol=1e-4)
    supports = [i for i in range(6) if i not in pair.anchors]
    assert np.abs(served[supports] - every.world_to_camera[supports]).max() > 1e-4  # not the "all" answer


def test_unknown_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="registration"):
        Settings(registration="some")

"""End to end in headless Chromium against the real service (create_app, uvicorn on loopback, tmp data
dir, the real tiny model): drop a procedural scene on the upload page, follow the job to success through
the SSE stream, open the viewer and check from screenshots that the Gaussians are drawn from the first
input camera. Every request the browser makes must stay on 127.0.0.1 and the console must stay clean.
"""

from __future__ import annotations

import base64
import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from app.core.config import Settings
from app.main import create_app
from models.data.procedural import make_scene

from .browser_utils import PageLog, correlation, letterbox_crop, png_to_array, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

VIEWPORT = {"width": 1100, "height": 700}
JOB_TIMEOUT_MS = 240_000


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _drop_files(page, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """Drop files on an element the way a person drags them from a file manager (DataTransfer + drop)."""
    payload = [{"name": n, "type": t, "b64": base64.b64encode(b).decode()} for n, t, b in files]
    page.locator(selector).evaluate(
        """(zone, files) => {
          const dt = new DataTransfer();
          for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, { type: f.type }));
          }
          for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
          }
        }""",
        payload,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> str:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), device="cpu", preset="tiny")
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def scene():
    return make_scene(11, views=3, width=128, height=96, kind="objects")


def test_upload_follow_and_view(chromium, service, scene, tmp_path) -> None:
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    log = PageLog()
    log.attach(page)
    try:
        page.goto(f"{service}/")
        page.locator("#jobs-empty").wait_for()
        files = [(f"{i:03d}.png", "image/png", _png(img)) for i, img in enumerate(scene.images)]
        _drop_files(page, "#dropzone", files)
        assert page.inner_text("#selection-summary").startswith("3 images")
        assert page.get_by_label("Refine cameras").is_checked()  # on by default in the page
        page.get_by_role("button", name="Reconstruct").click()

        row = page.locator("li.job").first
        row.locator(".pill", has_text="succeeded").wait_for(timeout=JOB_TIMEOUT_MS)
        assert row.locator(".job-error").is_hidden()
        page.screenshot(path=str(tmp_path / "upload.png"))
        row.get_by_role("link", name="Open viewer").click()

        page.wait_for_url(re.compile(r"/viewer/[0-9a-f]{32}$"))
        report_url = f"{service}/v1/reconstructions/{page.url.rsplit('/', 1)[1]}/artifacts/report.json"
        assert httpx.get(report_url).json()["refinement"]["status"] == "done"  # the page sent options.refine
        page.wait_for_selector("body[data-ready]", state="attached", timeout=120_000)
        assert page.evaluate("() => document.body.dataset.ready") == "true", page.inner_text("#overlay")
        # the camera list tags the views the refinement moved and the one they are relative to
        refinement = httpx.get(report_url).json()["refinement"]
        want = dict.fromkeys(refinement["refined_views"], "refined")
        if want:
            want[refinement["reference_view"]] = "reference"
        tags = page.evaluate(
            "() => [...document.querySelectorAll('#camera-list button')]"
            ".map((b) => b.querySelector('.pose-tag')?.textContent ?? null)"
        )
        assert tags == [want.get(v) for v in range(len(tags))] and len(tags) == len(scene.images), tags
        view = png_to_array(page.locator("#canvas").screenshot())
        page.screenshot(path=str(tmp_path / "viewer.png"))

        # Far from a blank canvas, and the view from camera 0 shows the scene (see below for how closely).
        assert view.std() > 0.05, "the canvas is (nearly) blank"
        hw = (scene.height, scene.width)
        crop = letterbox_crop(view, hw)
        blank = (crop.reshape(-1, 3) < 0.02).all(-1).mean()
        assert blank < 0.5, f"{blank:.0%} of the photo's area is black"
        corr = [correlation(crop, img.astype(np.float64)) for img in scene.images]
        # How closely camera 0's view reproduces photo 0 is the model's quality, not the viewer's: 0.72 with
        # random tiny weights (near-constant depth), 0.38 with weights v1, 0.24 with v2 (step 9,358), 0.40
        # with v3 (step 14,554), 0.56 with v3 keeping every head pixel (session 6) and 0.60 with v4 (step
        # 15,635). Trained weights'
        # per-view depths and poses disagree, so splats from the other views land in front; over nine scenes
        # rendered in Python v1 and v2 average 0.37 and 0.33 with a spread of -0.3 to 0.8 per scene
        # (docs/MODEL_CARD.md). So with these weights this only checks that the canvas shows the scene's
        # content (the other photos correlate less, 0.18-0.20 here, not always). The viewer's own accuracy is
        # pinned by test_viewer_browser.py on exact geometry (0.94) and by the server-render comparison
        # below (0.91).
        assert corr[0] > 0.15, f"view from camera 0 vs the input photos: correlations {np.round(corr, 3)}"
        # The photo beside the view is the job's own input (GET .../inputs/<name>; no "images" output).
        assert page.evaluate("() => document.getElementById('compare-image').naturalWidth") == scene.width

        # The service's points.ply carries the model's confidence: the slider is on and filters.
        page.get_by_text("Point cloud").click()
        page.locator("#confidence-hint").filter(has_text="points, confidence").wait_for(timeout=60_000)
        assert page.locator("#confidence").is_enabled()
        total = page.evaluate("() => window.onepassViewer.points.count")
        page.locator("#confidence").fill("40")
        page.evaluate("() => window.onepassViewer.settled()")
        shown = page.evaluate("() => window.onepassViewer.points.visibleCount")
        assert shown == round(total * (1 - 40 / 100)) < total
        page.locator('input[name="mode"][value="splats"]').check()
        page.evaluate("() => window.onepassViewer.settled()")

        # The server renders exactly this view (same K and pose, our rasterizer): the two must agree.
        page.get_by_label("Input cameras").uncheck()
        page.evaluate("() => window.onepassViewer.settled()")
        view = png_to_array(page.locator("#canvas").screenshot())
        page.get_by_role("button", name="Render", exact=True).click()
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("link", name="Download the PNG").click()
        server = png_to_array(download.value.path().read_bytes())
        # The canvas box may end on a fractional pixel, which the element screenshot rounds up.
        h, w = server.shape[:2]
        assert abs(view.shape[0] - h) <= 1 and abs(view.shape[1] - w) <= 1, (server.shape, view.shape)
        h, w = min(h, view.shape[0]), min(w, view.shape[1])
        agree = correlation(server[:h, :w], view[:h, :w])
        # Measured 0.91: Spark and the CPU rasterizer differ in antialiasing and splat cut-off.
        assert agree > 0.8, f"browser view vs server render of the same camera: correlation {agree:.3f}"

        assert log.page_errors == [] and log.console_errors == [], (log.page_errors, log.console_errors)
        assert log.off_loopback() == [], log.off_loopback()
    finally:
        context.close()


def test_upload_errors_are_shown_in_words(chromium, service) -> None:
    page = chromium.new_page(viewport=VIEWPORT)
    log = PageLog()
    log.attach(page)
    try:
        page.goto(f"{service}/")
        # Refused in the page: not an image, zip or video.
        _drop_files(page, "#dropzone", [("notes.txt", "text/plain", b"hello")])
        assert page.inner_text("#selection-summary") == "Not an image, zip or video: notes.txt"
        assert page.get_by_role("button", name="Reconstruct").is_disabled()
        # Refused by the server: a PNG that does not decode. The API's detail is shown as is.
        good = _png(np.full((32, 32, 3), 0.5))
        broken = good[: len(good) // 2]
        _drop_files(page, "#dropzone", [("a.png", "image/png", good), ("broken.png", "image/png", broken)])
        page.get_by_role("button", name="Reconstruct").click()
        error = page.locator("#upload-error")
        error.wait_for()
        text = error.inner_text()
        assert text.startswith("Upload refused: 'broken.png' is a corrupt"), text
        assert text.endswith("(HTTP 422)"), text
        assert page.get_by_role("button", name="Reconstruct").is_enabled()
        assert log.page_errors == []
        # The refused POST is the only console error (Chromium logs failed requests).
        assert all("422" in e for e in log.console_errors), log.console_errors
        assert log.off_loopback() == []
    finally:
        page.close()

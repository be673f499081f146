"""Take the README's two screenshots (upload page, viewer) from the real service and tiny model.

    .venv/bin/python -m tests.web.readme_screenshots [OUT_DIR]   # default docs/img

Starts the service on loopback with a temporary data dir, drops a procedural scene on the upload page,
waits for the job, opens the viewer and saves ``upload.png`` and ``viewer.png``. Uses the weights the
``tiny`` preset loads (trained ones when present), so rerun it when they change.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from app.core.config import Settings
from app.main import create_app
from models.data.procedural import make_scene

from .browser_utils import serve
from .conftest import CHROMIUM, CHROMIUM_ARGS
from .test_e2e_browser import _drop_files, _png


def main(out_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    scene = make_scene(4, views=4, width=224, height=168, kind="objects")
    files = [(f"view_{i}.png", "image/png", _png(img)) for i, img in enumerate(scene.images)]
    with tempfile.TemporaryDirectory() as data, serve(create_app(Settings(data_dir=Path(data)))) as url:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/")
            _drop_files(page, "#dropzone", files)
            page.get_by_role("button", name="Reconstruct").click()
            row = page.locator("li.job").first
            row.locator(".pill", has_text="succeeded").wait_for(timeout=600_000)
            _drop_files(page, "#dropzone", files)  # show a selection ready to send, too
            page.screenshot(path=str(out_dir / "upload.png"))
            row.get_by_role("link", name="Open viewer").click()
            page.wait_for_selector("body[data-ready]", state="attached", timeout=300_000)
            page.screenshot(path=str(out_dir / "viewer.png"))
            browser.close()
    print(f"wrote {out_dir / 'upload.png'} and {out_dir / 'viewer.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/img"))

"""Fixtures for the web pages: the web/ folder, a Node runner for the viewer's JS modules, and Chromium.

Anything missing (Node, ``web/node_modules``, Debian's Chromium, Playwright) skips the tests that need it
with the reason in the summary (pytest runs with ``-ra``), never a silent pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.web.assets import DEFAULT_WEB_DIR, resolve_assets

CHROMIUM = Path("/usr/bin/chromium")
JS_DIR = Path(__file__).parent / "js"
#: Software WebGL (SwiftShader through ANGLE) and no background traffic of the browser itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-pings",
    "--disable-domain-reliability",
    "--metrics-recording-only",
]


def missing_viewer_assets() -> str | None:
    """Why the viewer cannot run here (npm packages not installed), or None."""
    assets = resolve_assets(DEFAULT_WEB_DIR)
    if assets.missing:
        return f"web/node_modules is incomplete (run `make setup`): missing {assets.missing[0]}"
    return None


@pytest.fixture(scope="session")
def web_dir() -> Path:
    return DEFAULT_WEB_DIR


@pytest.fixture(scope="session")
def run_js(web_dir: Path) -> Callable[[str, dict[str, Any]], Any]:
    """``run_js(task, payload)`` runs tests/web/js/run_viewer_module.mjs under Node and returns its JSON."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the viewer's JS modules cannot be checked")
    if reason := missing_viewer_assets():
        pytest.skip(reason)

    def run(task: str, payload: dict[str, Any]) -> Any:
        proc = subprocess.run(
            [node, str(JS_DIR / "run_viewer_module.mjs"), str(web_dir), task],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"node {task} failed:\n{proc.stderr}"
        return json.loads(proc.stdout)

    return run


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (software WebGL); skipped with a reason if absent."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (setup installs Debian's chromium when it can)")
    if reason := missing_viewer_assets():
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the Python package playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

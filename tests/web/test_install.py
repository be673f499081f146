"""app.web.install: page routes, static and vendor files, the import map and the Content-Security-Policy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.web import install
from app.web.assets import resolve_assets
from app.web.csp import script_hash

from .conftest import missing_viewer_assets

needs_npm = pytest.mark.skipif(missing_viewer_assets() is not None, reason=str(missing_viewer_assets()))


def _client(web_dir: Path | None = None) -> TestClient:
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    install(app, web_dir=web_dir)
    return TestClient(app)


def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


@needs_npm
def test_pages_carry_a_strict_policy() -> None:
    client = _client()
    for path in ("/", "/viewer/0123abcd"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        d = _directives(r.headers["content-security-policy"])
        assert d["default-src"] == ["'none'"]
        assert d["connect-src"] == ["'self'"]
        assert d["worker-src"] == ["blob:"]
        assert d["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in d["script-src"] and "'unsafe-eval'" not in d["script-src"]
        assert "'wasm-unsafe-eval'" in d["script-src"]
        assert not any(v.startswith(("http", "*", "data:")) for vals in d.values() for v in vals)
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in client.get("/v1/ping").headers


@needs_npm
def test_inline_scripts_are_exactly_the_hashed_import_map() -> None:
    client = _client()
    r = client.get("/viewer/abc")
    policy = r.headers["content-security-policy"]
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", r.text, flags=re.S)
    assert len(inline) == 1
    assert script_hash(inline[0]) in policy
    assert '"three":"/vendor/three@' in inline[0]


@needs_npm
def test_import_map_targets_are_served_immutable() -> None:
    client = _client()
    page = client.get("/viewer/abc").text
    urls = re.findall(r'"(/vendor/[^"]+)"', page)
    assert len(urls) == 3
    for url in urls:
        if url.endswith("/"):
            url += "postprocessing/Pass.js"  # what Spark imports through three/addons/
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200, url
        assert plain.headers["content-type"].startswith("text/javascript")
        assert "immutable" in plain.headers["cache-control"]
        assert "content-security-policy" in plain.headers
        assert "content-encoding" not in plain.headers
        zipped = client.get(url, headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) < len(plain.content) / 2
        assert zipped.content == plain.content  # httpx decodes the gzip body


@needs_npm
def test_vendor_serves_only_the_allow_list() -> None:
    client = _client()
    version = resolve_assets().packages["three"].version
    for path in (
        f"/vendor/three@{version}/package.json",
        f"/vendor/three@{version}/build/three.cjs",
        f"/vendor/three@{version}/../three/package.json",
        "/vendor/three@0.0.1/three.module.js",
        "/vendor/fflate@0.8.3/esm/browser.js",
    ):
        r = client.get(path)
        assert r.status_code == 404, path


def test_static_sources_revalidate_with_etag() -> None:
    client = _client()
    r = client.get("/static/js/api.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    again = client.get("/static/js/api.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_every_asset_a_page_names_exists() -> None:
    client = _client()
    for page in ("/", "/viewer/abc"):
        refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', client.get(page).text)
        assert refs, page
        for ref in refs:
            assert client.get(ref).status_code == 200, f"{page} names {ref}, which is not served"


def test_viewer_without_npm_packages_explains_the_fix(tmp_path: Path, web_dir: Path) -> None:
    for sub in ("pages", "static"):
        shutil.copytree(web_dir / sub, tmp_path / sub)
    client = _client(tmp_path)
    assert client.get("/").status_code == 200
    r = client.get("/viewer/abc")
    assert r.status_code == 503
    assert "make setup" in r.text
    assert "node_modules/three/package.json" in r.text
    assert client.get("/vendor/three@0.187.0/three.module.js").status_code == 404


def test_web_dir_without_pages_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing the folder 'pages/'"):
        resolve_assets(tmp_path)


def test_upload_page_offers_exactly_the_service_output_groups(web_dir: Path) -> None:
    from app.services.pipeline import OUTPUT_GROUPS

    source = (web_dir / "static" / "js" / "upload.js").read_text()
    block = source[source.index("const OUTPUTS = [") : source.index("];", source.index("const OUTPUTS = ["))]
    assert tuple(re.findall(r'\[\s*"(\w+)",', block)) == OUTPUT_GROUPS

"""``/docs``: Swagger UI served by the app itself (no CDN), under a policy allowing only its init script."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.web import install
from app.web.assets import resolve_assets
from app.web.csp import script_hash

from .browser_utils import PageLog, serve

needs_swagger = pytest.mark.skipif(
    not resolve_assets().docs_ready,
    reason=f"web/node_modules lacks Swagger UI: {resolve_assets().docs_missing}",
)


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    """The real service app (no workers; the lifespan is not started: /docs needs none of it)."""
    return TestClient(create_app(Settings(data_dir=tmp_path, workers=0)))


@needs_swagger
def test_docs_reference_only_local_files_that_are_served(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = re.findall(r"""(?:src|href)="([^"]*)"|url: '([^']*)'""", r.text)
    urls = [a or b for a, b in refs]
    assert "/openapi.json" in urls and len(urls) == 4, urls
    expected_types = {
        ".js": "text/javascript",
        ".css": "text/css",
        ".png": "image/png",
        ".json": "application/json",
    }
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"/docs names a non-local URL {url!r}"
        asset = client.get(url, headers={"Accept-Encoding": "identity"})
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(expected_types[Path(url).suffix]), url
    bundle = next(u for u in urls if u.endswith(".js"))
    assert "SwaggerUIBundle" in client.get(bundle).text
    # FastAPI's CDN pages are off.
    assert client.get("/redoc").status_code == 404


@needs_swagger
def test_docs_policy_allows_exactly_the_init_script(client: TestClient) -> None:
    r = client.get("/docs")
    d = _directives(r.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", r.text, flags=re.S)
    assert len(inline) == 1 and "SwaggerUIBundle(" in inline[0]
    assert d["script-src"] == ["'self'", script_hash(inline[0])]
    assert d["default-src"] == ["'none'"] and d["connect-src"] == ["'self'"]
    assert d["style-src"] == ["'self'"] and d["frame-ancestors"] == ["'none'"]
    assert not any(v.startswith(("http", "*")) or "unsafe" in v for vals in d.values() for v in vals)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in client.get("/openapi.json").headers


@needs_swagger
def test_swagger_assets_are_gzipped_immutable(client: TestClient) -> None:
    css = re.search(r'href="([^"]+\.css)"', client.get("/docs").text).group(1)
    plain = client.get(css, headers={"Accept-Encoding": "identity"})
    zipped = client.get(css, headers={"Accept-Encoding": "gzip"})
    assert "immutable" in plain.headers["cache-control"] and "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
    version = resolve_assets().packages["swagger-ui-dist"].version
    for path in ("package.json", "index.html", "swagger-ui-es-bundle.js", "swagger-ui-bundle.js.map"):
        assert client.get(f"/vendor/swagger-ui-dist@{version}/{path}").status_code == 404, path


def test_docs_without_swagger_ui_explains_the_fix(tmp_path: Path, web_dir: Path) -> None:
    for sub in ("pages", "static"):
        shutil.copytree(web_dir / sub, tmp_path / sub)
    app = FastAPI(docs_url=None, redoc_url=None)
    install(app, web_dir=tmp_path)
    client = TestClient(app)
    r = client.get("/docs")
    assert r.status_code == 503
    assert "make setup" in r.text and "node_modules/swagger-ui-dist/package.json" in r.text
    assert 'href="/openapi.json"' in r.text
    assert client.get("/openapi.json").status_code == 200


def test_install_refuses_an_app_with_fastapis_cdn_docs() -> None:
    with pytest.raises(
        ValueError, match=r"app.docs_url='/docs': build the app with FastAPI\(docs_url=None\)"
    ):
        install(FastAPI())


def test_upload_page_links_the_docs(web_dir: Path) -> None:
    assert 'href="/docs"' in (web_dir / "pages" / "index.html").read_text()


@pytest.mark.browser
@pytest.mark.xdist_group("browser")
def test_docs_run_in_chromium_offline_under_the_policy(chromium, tmp_path: Path) -> None:
    """Swagger UI renders every operation and "Try it out" calls the API, with no CSP violation."""
    with serve(create_app(Settings(data_dir=tmp_path, workers=0))) as url:
        page = chromium.new_page()
        log = PageLog()
        log.attach(page)
        page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"
        )
        try:
            page.goto(f"{url}/docs")
            page.locator("#operations-health-health-healthz").wait_for(timeout=60_000)
            spec = page.request.get(f"{url}/openapi.json").json()
            operations = sum(len(methods) for methods in spec["paths"].values())
            assert page.locator(".opblock").count() == operations
            page.locator("#operations-health-health-healthz .opblock-summary").click()
            page.get_by_role("button", name="Try it out").click()
            page.get_by_role("button", name="Execute").click()
            page.locator(".live-responses-table .response-col_status", has_text="200").wait_for(
                timeout=30_000
            )
            assert page.evaluate("window.__csp") == []
            assert log.console_errors == [] and log.page_errors == []
            assert log.off_loopback() == []
            assert f"{url}/healthz" in log.requests
        finally:
            page.close()

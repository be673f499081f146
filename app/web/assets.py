"""Where the browser pages' files live, which vendor files are served, and the import map that names them.

The pages are plain ES modules. Three.js, Spark and Swagger UI come from ``web/node_modules`` (installed
by ``npm ci`` from the pinned ``web/package-lock.json``) and are served by the app itself under
``/vendor/<package>@<version>/...``: the browser never contacts a CDN. Only the files listed in
:data:`VENDOR_FILES` are reachable, never the rest of ``node_modules``. The version in the URL makes the
files immutable, so they can be cached for a year. The viewer needs :data:`VIEWER_PACKAGES`, the
interactive API docs (``/docs``) need :data:`DOCS_PACKAGES`; either works without the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

#: Repository folder holding package.json, node_modules/, pages/ and static/.
DEFAULT_WEB_DIR = Path(__file__).resolve().parents[2] / "web"

#: Served vendor files: URL path under ``/vendor/<package>@<version>/`` → path inside the npm package.
#: three.module.js imports ``./three.core.js``, so both sit in the same URL folder. Spark imports
#: ``three/addons/postprocessing/Pass.js``; the viewer imports OrbitControls. Spark 2.2 inlines its
#: sort/decode worker and its WebAssembly in spark.module.min.js (nothing else to serve).
VENDOR_FILES: dict[str, dict[str, str]] = {
    "three": {
        "three.module.js": "build/three.module.js",
        "three.core.js": "build/three.core.js",
        "addons/postprocessing/Pass.js": "examples/jsm/postprocessing/Pass.js",
        "addons/controls/OrbitControls.js": "examples/jsm/controls/OrbitControls.js",
    },
    "@sparkjsdev/spark": {
        "spark.module.js": "dist/spark.module.min.js",
    },
    # Swagger UI for /docs: the classic (non-module) bundle defines the global SwaggerUIBundle that
    # FastAPI's docs page calls; the standalone preset is not used by that page.
    "swagger-ui-dist": {
        "swagger-ui-bundle.js": "swagger-ui-bundle.js",
        "swagger-ui.css": "swagger-ui.css",
        "favicon-32x32.png": "favicon-32x32.png",
    },
}

#: Packages the 3D viewer needs; without them ``/viewer/{id}`` explains the fix.
VIEWER_PACKAGES: tuple[str, ...] = ("three", "@sparkjsdev/spark")
#: Packages the interactive API docs need; without them ``/docs`` explains the fix.
DOCS_PACKAGES: tuple[str, ...] = ("swagger-ui-dist",)

#: Bare module specifiers of the import map → URL path under the package's vendor folder.
IMPORT_SPECIFIERS: dict[str, tuple[str, str]] = {
    "three": ("three", "three.module.js"),
    "three/addons/": ("three", "addons/"),
    "@sparkjsdev/spark": ("@sparkjsdev/spark", "spark.module.js"),
}


@dataclass(frozen=True)
class VendorPackage:
    """One npm package as installed: its name, its version and where its files are on disk."""

    name: str
    version: str
    root: Path

    @property
    def url_prefix(self) -> str:
        """``/vendor/three@0.187.0/``: the version makes every URL immutable."""
        return f"/vendor/{self.name}@{self.version}/"


@dataclass(frozen=True)
class WebAssets:
    """The resolved layout of ``web/``: page templates, our static files and the vendor packages.

    ``missing`` lists, in words, what the viewer lacks (empty when it can run); ``docs_missing`` the same
    for the interactive API docs.
    """

    web_dir: Path
    packages: dict[str, VendorPackage] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    docs_missing: tuple[str, ...] = ()

    @property
    def pages_dir(self) -> Path:
        return self.web_dir / "pages"

    @property
    def static_dir(self) -> Path:
        return self.web_dir / "static"

    @property
    def viewer_ready(self) -> bool:
        return not self.missing

    @property
    def docs_ready(self) -> bool:
        return not self.docs_missing

    def swagger_urls(self) -> dict[str, str]:
        """Local URLs of Swagger UI's script, stylesheet and favicon (``/docs`` needs ``docs_ready``)."""
        prefix = self.packages["swagger-ui-dist"].url_prefix
        return {
            "swagger_js_url": prefix + "swagger-ui-bundle.js",
            "swagger_css_url": prefix + "swagger-ui.css",
            "swagger_favicon_url": prefix + "favicon-32x32.png",
        }

    def vendor_file(self, package_at_version: str, path: str) -> Path | None:
        """File on disk for ``/vendor/<package_at_version>/<path>``; None unless allow-listed and present."""
        name, _, version = package_at_version.rpartition("@")
        pkg = self.packages.get(name)
        if pkg is None or pkg.version != version:
            return None
        rel = VENDOR_FILES[name].get(path)
        if rel is None:
            return None
        file = pkg.root / rel
        return file if file.is_file() else None

    def import_map(self) -> dict[str, dict[str, str]]:
        """``{"imports": {specifier: url}}`` for the installed packages (empty when any is missing)."""
        if not self.viewer_ready:
            return {"imports": {}}
        imports = {
            spec: self.packages[name].url_prefix + path for spec, (name, path) in IMPORT_SPECIFIERS.items()
        }
        return {"imports": imports}

    def import_map_json(self) -> str:
        """The import map as compact JSON, exactly as placed in the page (its CSP hash depends on it)."""
        return json.dumps(self.import_map(), separators=(",", ":"), sort_keys=True)


def _read_package(node_modules: Path, name: str) -> tuple[VendorPackage | None, list[str]]:
    """Read ``node_modules/<name>/package.json`` and check every allow-listed file exists."""
    root = node_modules / name
    manifest = root / "package.json"
    if not manifest.is_file():
        return None, [f"{manifest} (npm package '{name}' is not installed)"]
    try:
        version = str(json.loads(manifest.read_text())["version"])
    except (ValueError, KeyError) as e:
        return None, [f"{manifest} (unreadable: {e})"]
    absent = [str(root / rel) for rel in VENDOR_FILES[name].values() if not (root / rel).is_file()]
    return VendorPackage(name, version, root), absent


def resolve_assets(web_dir: str | Path | None = None) -> WebAssets:
    """Inspect ``web_dir`` (default: the repository's ``web/``) and return what the pages can use.

    Raises:
        FileNotFoundError: ``web_dir`` has no ``pages/`` or ``static/`` folder (a broken checkout,
            not a missing ``npm ci``: our own sources are part of the repository).
    """
    web = Path(web_dir) if web_dir is not None else DEFAULT_WEB_DIR
    for sub in ("pages", "static"):
        if not (web / sub).is_dir():
            raise FileNotFoundError(f"web_dir={str(web)!r}: missing the folder '{sub}/' of the web pages")
    packages: dict[str, VendorPackage] = {}
    absent_by_package: dict[str, list[str]] = {}
    for name in VENDOR_FILES:
        pkg, absent = _read_package(web / "node_modules", name)
        absent_by_package[name] = absent
        if pkg is not None and not absent:
            packages[name] = pkg
    return WebAssets(
        web_dir=web,
        packages=packages,
        missing=tuple(m for name in VIEWER_PACKAGES for m in absent_by_package[name]),
        docs_missing=tuple(m for name in DOCS_PACKAGES for m in absent_by_package[name]),
    )

"""Where the browser pages' files live, which vendor files are served, and the import map that names them.

The pages are plain ES modules. Three.js and Spark come from ``web/node_modules`` (installed by
``npm ci`` from the pinned ``web/package-lock.json``) and are served by the app itself under
``/vendor/<package>@<version>/...``: the browser never contacts a CDN. Only the files listed in
:data:`VENDOR_FILES` are reachable, never the rest of ``node_modules``. The version in the URL makes the
files immutable, so they can be cached for a year.
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
}

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

    ``missing`` lists, in words, what is not installed (empty when the viewer can run).
    """

    web_dir: Path
    packages: dict[str, VendorPackage] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def pages_dir(self) -> Path:
        return self.web_dir / "pages"

    @property
    def static_dir(self) -> Path:
        return self.web_dir / "static"

    @property
    def viewer_ready(self) -> bool:
        return not self.missing

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
    missing: list[str] = []
    for name in VENDOR_FILES:
        pkg, absent = _read_package(web / "node_modules", name)
        missing.extend(absent)
        if pkg is not None and not absent:
            packages[name] = pkg
    return WebAssets(web_dir=web, packages=packages, missing=tuple(missing))

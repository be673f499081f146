"""Where a job's files live under the data dir, and the renames that make them appear atomically.

::

    DATA_DIR/
      onepass.db                    job rows (SQLite default)
      uploads/<random>/             an upload being received; removed or renamed when it ends
      jobs/<job id>/inputs/         validated input images, named as in the job's ``image_names``
      jobs/<job id>/artifacts/      outputs; appears in one rename once every file is written
      jobs/<job id>/.artifacts-*    outputs being written (removed at the next start if left behind)

Readers therefore see either no ``artifacts/`` or a complete one, even across a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class JobFiles:
    """Paths and atomic moves for job inputs and artifacts under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.uploads = self.root / "uploads"
        self.jobs = self.root / "jobs"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.jobs.mkdir(parents=True, exist_ok=True)

    def new_upload_dir(self) -> Path:
        """A fresh private folder to stream an upload into."""
        return Path(tempfile.mkdtemp(dir=self.uploads, prefix="up-"))

    def job_dir(self, job_id: str) -> Path:
        return self.jobs / job_id

    def inputs_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "inputs"

    def artifacts_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "artifacts"

    def adopt_inputs(self, job_id: str, images_dir: Path) -> Path:
        """Move a validated folder of images into place as the job's inputs (one rename on one disk)."""
        dest = self.inputs_dir(job_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(images_dir, dest)
        return dest

    def new_artifacts_tmp(self, job_id: str) -> Path:
        d = self.job_dir(job_id)
        d.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=d, prefix=".artifacts-"))

    def publish_artifacts(self, job_id: str, tmp: Path) -> Path:
        """Write the manifest (sizes, hashes) into ``tmp`` and rename it to ``artifacts/``."""
        write_manifest(tmp)
        dest = self.artifacts_dir(job_id)
        if dest.exists():  # a previous attempt finished writing but crashed before the job row said so
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        return dest

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def sweep(self) -> int:
        """Remove uploads and artifact folders left half-written by a crash; returns how many."""
        n = 0
        for p in list(self.uploads.iterdir()):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
        for p in self.jobs.glob("*/.artifacts-*"):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
        return n


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> dict[str, Any]:
    """``manifest.json``: every file under ``folder`` (POSIX relative name → size and sha256)."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(folder).as_posix()] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    manifest = {"files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["files"]

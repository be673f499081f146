"""Turn what a client sent (files on disk, an options string) into a folder of checked input images.

One upload is 1–``max_files`` images, or one zip of images, or one video. Every image is checked
(:func:`app.services.media.check_image`) before a job exists, so a worker only ever sees images that
decode. Runs in a worker thread: everything here is blocking file work.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from app.core.config import Settings
from app.core.errors import ApiError, format_validation_errors
from app.schemas import ReconstructionOptions
from app.services.archive import ExtractedEntry, ZipLimits, extract_zip
from app.services.media import IMAGE_FORMATS, IMAGE_SUFFIXES, check_image, safe_name, sniff_kind, unique_names
from app.services.multipart import ReceivedForm
from app.services.video import extract_frames

FILES_FIELD = "files"
OPTIONS_FIELD = "options"
#: decoded pixels an upload may keep for its worker (beyond this, the worker reads the files again)
DECODED_MAX_BYTES = 64 * 2**20


@dataclass
class Scene:
    """Checked images of one reconstruction, in view order, inside ``images_dir`` under ``image_names``."""

    images_dir: Path
    image_names: list[str]
    name: str | None = None
    #: the images as the model reads them, when the upload was asked to keep them (``ingest_upload``'s
    #: ``decode``) and they fit in :data:`DECODED_MAX_BYTES`; None otherwise
    decoded: list[Any] | None = None


def parse_options(text: str | None, where: str = OPTIONS_FIELD) -> ReconstructionOptions:
    """The ``options`` JSON → :class:`ReconstructionOptions`, or 422 naming each bad field."""
    if text is None or not text.strip():
        return ReconstructionOptions()
    try:
        return ReconstructionOptions.model_validate_json(text)
    except ValidationError as e:
        raise ApiError(422, format_validation_errors(e.errors(), prefix=where)) from e


def fingerprint(options: ReconstructionOptions, parts: list[tuple[str, str]]) -> str:
    """Payload identity for Idempotency-Key: the options and each (file name, sha256) in order.

    Options enter without their defaults, so ``{}`` and ``{"max_anchors": 8}`` are the same payload, and
    an option added in a later version (with a default) does not change the identity of earlier requests.
    """
    stated = options.model_dump(mode="json", exclude_defaults=True)
    h = hashlib.sha256(json.dumps(stated, sort_keys=True).encode())
    for name, digest in parts:
        h.update(f"\n{name}\0{digest}".encode())
    return h.hexdigest()


def zip_limits(settings: Settings, max_entries: int) -> ZipLimits:
    return ZipLimits(
        max_entries=max_entries, max_total_bytes=settings.max_zip_bytes, max_ratio=settings.max_zip_ratio
    )


def _place_images(
    sources: list[tuple[Path, str]],
    out_dir: Path,
    settings: Settings,
    decode: Callable[[Any], Any] | None = None,
) -> tuple[list[str], list[Any] | None]:
    """Check each (path, client-visible name) and move it to ``out_dir`` under a safe, unique name.

    Returns the names and, with ``decode``, the decoded images (None once they pass
    :data:`DECODED_MAX_BYTES`: a large upload is not held in memory).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    decoded: list[Any] | None = [] if decode is not None else None
    size = 0
    for i, (path, shown) in enumerate(sources):
        info = check_image(path, shown, settings.max_pixels, decode if decoded is not None else None)
        names.append(safe_name(shown, i, IMAGE_FORMATS[info.format]))
        if decoded is not None:
            decoded.append(info.pixels)
            size += getattr(info.pixels, "nbytes", 0)
            if size > DECODED_MAX_BYTES:
                decoded = None  # from here on the files are checked as usual and nothing is kept
    names = unique_names(names)
    for (path, _), name in zip(sources, names, strict=True):
        os.replace(path, out_dir / name)
    return names, decoded


def _image_entries(entries: list[ExtractedEntry], zip_name: str) -> list[tuple[Path, str]]:
    """Zip entries that must all be images (415 naming the first that is not)."""
    out = []
    for e in entries:
        if sniff_kind(e.path) != "image":
            raise ApiError(415, f"zip '{zip_name}': entry '{e.name}' is not a JPEG, PNG or WebP image")
        out.append((e.path, f"{zip_name}:{e.name}"))
    return out


def check_fields(form: ReceivedForm) -> None:
    """Only ``options`` (text) and ``files`` (file parts) are known (422 naming the others)."""
    unknown = sorted(set(form.fields) - {OPTIONS_FIELD}) + sorted(
        {f.field for f in form.files} - {FILES_FIELD}
    )
    if unknown:
        raise ApiError(
            422,
            f"unknown form field(s) {unknown}; send files in '{FILES_FIELD}' and JSON in '{OPTIONS_FIELD}'",
        )


def ingest_upload(
    form: ReceivedForm,
    work: Path,
    settings: Settings,
    options: ReconstructionOptions,
    *,
    max_images: int,
    decode: Callable[[Any], Any] | None = None,
) -> Scene:
    """Check a reconstruction upload (images, one zip or one video) → the scene in ``work/images``.

    ``work`` is the upload's private folder (the parts are already in it). With ``decode`` (a decoded
    PIL image → the model's pixels) the scene keeps the pixels the check decoded (``Scene.decoded``).
    """
    check_fields(form)
    files = form.files
    if not files:
        raise ApiError(
            422, f"no files: send 1-{max_images} images, one zip or one video in the '{FILES_FIELD}' field"
        )
    kinds = [sniff_kind(f.path) for f in files]
    images_dir = work / "images"
    for f, kind in zip(files, kinds, strict=True):
        if kind in ("zip", "video") and len(files) > 1:
            raise ApiError(
                422, f"'{f.filename}' is a {kind}: a zip or a video must be the only file of an upload"
            )
    if kinds[0] == "zip":
        entries = extract_zip(
            files[0].path, files[0].filename, work / "unzipped", zip_limits(settings, max_images)
        )
        sources = _image_entries(entries, files[0].filename)
    elif kinds[0] == "video":
        fps = options.video_fps or settings.default_video_fps
        frames = extract_frames(
            files[0].path,
            files[0].filename,
            work / "frames",
            fps=fps,
            max_frames=min(settings.max_video_frames, max_images),
            max_pixels=settings.max_pixels,
        )
        sources = [(p, p.name) for p in frames]
    else:
        if len(files) > max_images:
            raise ApiError(413, f"{len(files)} images, more than {max_images} allowed here")
        sources = []
        for f, kind in zip(files, kinds, strict=True):
            if kind != "image":
                # Pillow may still know it (GIF, BMP, TIFF): check_image names the format in its 415.
                check_image(f.path, f.filename or f.path.name, settings.max_pixels)
                raise ApiError(415, f"'{f.filename}' is not a JPEG, PNG or WebP image")
            sources.append((f.path, f.filename or f"image_{len(sources):03d}"))
    if not sources:
        raise ApiError(422, "the upload holds no images")
    if len(sources) > max_images:
        raise ApiError(413, f"{len(sources)} images, more than {max_images} allowed here")
    try:
        options.check_counts(len(sources))
    except ValueError as e:
        raise ApiError(422, str(e)) from e
    names, decoded = _place_images(sources, images_dir, settings, decode)
    return Scene(images_dir, names, decoded=decoded)


def group_scenes(entries: list[ExtractedEntry], zip_name: str) -> dict[str, list[ExtractedEntry]]:
    """A batch zip: each top-level folder is a scene: its ``images/`` subfolder if present, else its files."""
    by_scene: dict[str, list[ExtractedEntry]] = {}
    for e in entries:
        if len(e.name.parts) < 2:
            raise ApiError(422, f"batch zip '{zip_name}': '{e.name}' is not inside a scene folder")
        by_scene.setdefault(e.name.parts[0], []).append(e)
    out = {}
    for scene, items in sorted(by_scene.items()):
        in_images = [e for e in items if len(e.name.parts) > 2 and e.name.parts[1] == "images"]
        out[scene] = in_images or [e for e in items if len(e.name.parts) == 2]
    return out


def ingest_batch_zip(
    form: ReceivedForm, work: Path, settings: Settings
) -> tuple[list[Scene], ReconstructionOptions]:
    """A batch upload: one zip of scene folders (+ optional ``options``) → one checked scene per folder."""
    check_fields(form)
    options = parse_options(form.fields.get(OPTIONS_FIELD))
    if options.intrinsics is not None or options.poses is not None:
        raise ApiError(422, "options.intrinsics/poses cannot be shared by the scenes of a batch")
    if len(form.files) != 1 or sniff_kind(form.files[0].path) != "zip":
        raise ApiError(422, f"a batch upload is exactly one zip of scene folders in '{FILES_FIELD}'")
    f = form.files[0]
    limit = settings.max_files * settings.max_batch_scenes_upload
    entries = extract_zip(f.path, f.filename, work / "unzipped", zip_limits(settings, limit))
    grouped = group_scenes(entries, f.filename)
    if not grouped:
        raise ApiError(422, f"batch zip '{f.filename}' holds no scene folders")
    if len(grouped) > settings.max_batch_scenes_upload:
        raise ApiError(413, f"{len(grouped)} scenes, more than {settings.max_batch_scenes_upload} per batch")
    scenes = []
    for k, (name, items) in enumerate(grouped.items()):
        if len(items) > settings.max_files:
            raise ApiError(413, f"scene '{name}' has {len(items)} images, more than {settings.max_files}")
        sources = _image_entries(items, f.filename)
        if not sources:
            raise ApiError(422, f"scene '{name}' in '{f.filename}' holds no images")
        scene_dir = work / f"scene-{k:04d}"
        scenes.append(Scene(scene_dir, _place_images(sources, scene_dir, settings)[0], name))
    return scenes, options


def resolve_batch_folder(root: Path, folder: str) -> Path:
    """``folder`` (relative to ``root``) as a real path inside ``root``; 422/404 otherwise."""
    p = PurePosixPath(folder.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise ApiError(422, f"batch folder '{folder}' must be relative to the batch root, without '..'")
    real = (root / p).resolve()
    if not real.is_relative_to(root.resolve()):
        raise ApiError(422, f"batch folder '{folder}' leads outside the batch root (symlink)")
    if not real.is_dir():
        raise ApiError(404, f"batch folder '{folder}' not found under the batch root")
    return real


def ingest_batch_folder(root: Path, folder: str, dest: Path, settings: Settings) -> Scene:
    """Copy and check the images of a server-side scene folder (``images/`` if present, else its files)."""
    real = resolve_batch_folder(root, folder)
    src = real / "images" if (real / "images").is_dir() else real
    files = sorted(
        p
        for p in src.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ApiError(422, f"batch folder '{folder}' holds no .jpg/.png/.webp images")
    if len(files) > settings.max_files:
        raise ApiError(
            413, f"batch folder '{folder}' has {len(files)} images, more than {settings.max_files}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    staged = []
    for i, p in enumerate(files):
        if not p.resolve().is_relative_to(root.resolve()):
            raise ApiError(422, f"batch folder '{folder}': '{p.name}' links outside the batch root")
        tmp = dest / f"copy-{i:05d}"
        with open(p, "rb") as a, open(tmp, "wb") as b:
            while block := a.read(1 << 20):
                b.write(block)
        staged.append((tmp, f"{folder}/{p.name}"))
    return Scene(dest / "images", _place_images(staged, dest / "images", settings)[0], folder)

"""Unpack an uploaded zip without trusting it.

Rejected with 422, naming the entry: absolute paths, ``..`` components, drive letters, symlinks (Unix mode
in the entry's external attributes), encrypted entries. Rejected with 413: more entries than allowed, more
uncompressed bytes than allowed (counted while copying, so a lying header does not help), or an entry
compressed more than ``max_ratio`` times (zip bombs). Hidden files and macOS metadata are skipped.
Entries are copied in chunks; nothing is extracted by name, so no entry can land outside ``dest``.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.core.errors import ApiError


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_total_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class ExtractedEntry:
    """A file taken out of the zip: its POSIX path inside the archive and where it was written."""

    name: PurePosixPath
    path: Path


def _skip(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def entry_path(info: zipfile.ZipInfo, zip_name: str) -> PurePosixPath:
    """The entry's relative path, or :class:`ApiError` 422 if it could escape the extraction folder."""
    raw = info.filename.replace("\\", "/")
    p = PurePosixPath(raw)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ApiError(422, f"zip '{zip_name}': entry '{info.filename}' is a symlink; links are not accepted")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise ApiError(422, f"zip '{zip_name}': entry '{info.filename}' has an absolute path")
    if ".." in p.parts:
        raise ApiError(422, f"zip '{zip_name}': entry '{info.filename}' contains '..'")
    if info.flag_bits & 0x1:
        raise ApiError(422, f"zip '{zip_name}': entry '{info.filename}' is encrypted")
    return p


def extract_zip(zip_path: Path, zip_name: str, dest: Path, limits: ZipLimits) -> list[ExtractedEntry]:
    """Copy every regular, non-hidden entry of the zip into ``dest`` as ``entry-NNNNN`` files.

    Returns the entries in archive-path order. Checks every entry's name before extracting any.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ApiError(422, f"'{zip_name}' is not a readable zip: {e}") from e
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        named = [(entry_path(i, zip_name), i) for i in infos]
        named = [(p, i) for p, i in named if not _skip(p.parts)]
        if len(named) > limits.max_entries:
            raise ApiError(413, f"zip '{zip_name}' has {len(named)} files, more than {limits.max_entries}")
        declared = sum(i.file_size for _, i in named)
        if declared > limits.max_total_bytes:
            raise ApiError(
                413, f"zip '{zip_name}' unpacks to {declared} bytes, more than {limits.max_total_bytes}"
            )
        dest.mkdir(parents=True, exist_ok=True)
        out: list[ExtractedEntry] = []
        total = 0
        for k, (p, info) in enumerate(sorted(named, key=lambda t: t[0].as_posix())):
            if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise ApiError(
                    413,
                    f"zip '{zip_name}': entry '{info.filename}' is compressed over {limits.max_ratio:g}x",
                )
            target = dest / f"entry-{k:05d}"
            written = 0
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    while block := src.read(1 << 20):
                        written += len(block)
                        total += len(block)
                        if written > info.file_size or total > limits.max_total_bytes:
                            raise ApiError(
                                413, f"zip '{zip_name}': entry '{info.filename}' unpacks past its limits"
                            )
                        dst.write(block)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as e:
                raise ApiError(422, f"zip '{zip_name}': entry '{info.filename}' cannot be read: {e}") from e
            out.append(ExtractedEntry(p, target))
        return out

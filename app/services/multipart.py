"""Receive a ``multipart/form-data`` body straight to disk, enforcing the upload limits while it streams.

Starlette's form parser spools each file to a temporary file and answers 400 for too many files; here
every file part goes directly into the upload folder as it arrives (memory stays at one network chunk,
whatever the upload size) and each limit answers 413 naming what overflowed. Text fields (the JSON
``options``) are kept in memory up to ``max_field_bytes``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from app.core.errors import ApiError


@dataclass(frozen=True)
class FormLimits:
    max_body_bytes: int
    max_file_bytes: int
    max_files: int
    max_fields: int = 16
    max_field_bytes: int = 1 << 20


@dataclass
class ReceivedFile:
    """One file part saved to ``path``; ``filename`` is what the client sent (untrusted, may be empty).

    ``sha256`` is the hex digest of the part's bytes, computed while it streamed.
    """

    field: str
    filename: str
    path: Path
    size: int = 0
    sha256: str = ""


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)


class _Receiver:
    """python-multipart callbacks: route each part's bytes to a file on disk or a small text buffer."""

    def __init__(self, dest: Path, limits: FormLimits) -> None:
        self.dest, self.limits = dest, limits
        self.form = ReceivedForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._file: BinaryIO | None = None
        self._current: ReceivedFile | None = None
        self._hash = hashlib.sha256()
        self._field_name: str | None = None
        self._field_data = bytearray()
        self._n_fields = 0

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._field_name = None
        self._field_data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if b"name" not in params:
            raise ApiError(400, "a multipart part has no Content-Disposition name")
        name = params[b"name"].decode("utf-8", "replace")
        if b"filename" in params:
            n = len(self.form.files) + 1
            if n > self.limits.max_files:
                raise ApiError(413, f"too many files: more than {self.limits.max_files} (ONEPASS_MAX_FILES)")
            path = self.dest / f"part-{n:05d}"
            self._current = ReceivedFile(name, params[b"filename"].decode("utf-8", "replace"), path)
            self._hash = hashlib.sha256()
            self._file = open(path, "wb")  # noqa: SIM115 - closed in on_part_end / close()
            self.form.files.append(self._current)
        else:
            self._n_fields += 1
            if self._n_fields > self.limits.max_fields:
                raise ApiError(413, f"too many form fields: more than {self.limits.max_fields}")
            self._field_name = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._current is not None and self._file is not None:
            self._current.size += n
            if self._current.size > self.limits.max_file_bytes:
                raise ApiError(
                    413,
                    f"file '{self._current.filename}' is larger than {self.limits.max_file_bytes} bytes "
                    "(ONEPASS_MAX_FILE_BYTES)",
                )
            block = data[start:end]
            self._hash.update(block)
            self._file.write(block)
        else:
            if len(self._field_data) + n > self.limits.max_field_bytes:
                raise ApiError(
                    413, f"form field '{self._field_name}' is larger than {self.limits.max_field_bytes} bytes"
                )
            self._field_data += data[start:end]

    def on_part_end(self) -> None:
        if self._file is not None and self._current is not None:
            self._file.close()
            self._current.sha256 = self._hash.hexdigest()
            self._file, self._current = None, None
        elif self._field_name is not None:
            if self._field_name in self.form.fields:
                raise ApiError(422, f"form field '{self._field_name}' given more than once")
            try:
                self.form.fields[self._field_name] = self._field_data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ApiError(422, f"form field '{self._field_name}' is not UTF-8 text") from e

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def receive_form(request: Request, dest: Path, limits: FormLimits) -> ReceivedForm:
    """Stream the request body into ``dest`` (an empty folder); returns the fields and saved files.

    Raises :class:`ApiError` 415 (not multipart), 413 (a limit), 400 (malformed body). On error the
    partly written files stay in ``dest`` for the caller to remove with the folder.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise ApiError(415, f"expected a multipart/form-data body, got '{ctype.decode('latin-1') or 'none'}'")
    if b"boundary" not in params:
        raise ApiError(400, "multipart body without a boundary")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(
            413, f"request body of {declared} bytes is over {limits.max_body_bytes} (ONEPASS_MAX_BODY_BYTES)"
        )

    receiver = _Receiver(dest, limits)
    callbacks = {
        name: getattr(receiver, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    received = 0
    try:
        parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            received += len(chunk)
            if received > limits.max_body_bytes:
                raise ApiError(
                    413, f"request body is over {limits.max_body_bytes} bytes (ONEPASS_MAX_BODY_BYTES)"
                )
            parser.write(chunk)
        parser.finalize()
    except FormParserError as e:
        raise ApiError(400, f"malformed multipart body: {e}") from e
    except ClientDisconnect as e:
        raise ApiError(400, "the client disconnected during the upload") from e
    finally:
        receiver.close()
    return receiver.form

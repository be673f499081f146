"""What every benchmark script shares: the machine's name and rewriting its own section of BENCHMARKS.md."""

from __future__ import annotations

import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_DOC = ROOT / "docs" / "BENCHMARKS.md"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _section_span(lines: list[str], heading: str) -> tuple[int, int] | None:
    """``(start, end)`` line indices of the section headed ``heading`` (it runs to the next ``## ``)."""
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == heading), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def read_section(heading: str, doc: Path | None = None) -> str | None:
    """The section that starts at the line ``heading`` as ``doc`` (default BENCHMARKS.md) has it, or None."""
    doc = BENCHMARKS_DOC if doc is None else doc
    lines = doc.read_text().splitlines(keepends=True) if doc.is_file() else []
    span = _section_span(lines, heading)
    return None if span is None else "".join(lines[span[0] : span[1]])


def write_section(heading: str, text: str, doc: Path = BENCHMARKS_DOC) -> None:
    """Replace the section that starts at the line ``heading`` (e.g. ``## Renderer``) with ``text``.

    The section runs to the next ``## `` heading. Other sections stay byte for byte; a missing section is
    appended. ``text`` must start with ``heading`` so the section can be found again next time.
    """
    if not text.startswith(heading + "\n"):
        raise ValueError(f"section text must start with its heading line {heading!r}")
    doc.parent.mkdir(parents=True, exist_ok=True)
    current = doc.read_text() if doc.is_file() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    span = _section_span(lines, heading)
    body = text.rstrip("\n") + "\n"
    if span is None:
        doc.write_text(current.rstrip("\n") + "\n\n" + body)
        return
    start, end = span
    rest = "".join(lines[end:])
    doc.write_text("".join(lines[:start]) + body + ("\n" + rest if rest else ""))

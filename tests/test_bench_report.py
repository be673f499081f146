"""bench._report.write_section rewrites one section of BENCHMARKS.md and leaves the others byte for byte;
bench.serve renders its section from saved results."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._report import cpu_name, write_section


def test_sections_are_replaced_appended_and_isolated(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "BENCHMARKS.md"
    write_section("## A", "## A\n\nfirst a\n", doc)
    write_section("## B", "## B\n\nfirst b\n", doc)
    assert doc.read_text() == "# Benchmarks\n\n## A\n\nfirst a\n\n## B\n\nfirst b\n"
    write_section("## A", "## A\n\nsecond a, longer\n\n| table |\n", doc)
    assert doc.read_text() == "# Benchmarks\n\n## A\n\nsecond a, longer\n\n| table |\n\n## B\n\nfirst b\n"
    write_section("## B", "## B\n\nsecond b\n", doc)
    assert doc.read_text().endswith("| table |\n\n## B\n\nsecond b\n")
    # Subsections (###) belong to their section.
    write_section("## A", "## A\n\n### sub\nx\n", doc)
    assert doc.read_text() == "# Benchmarks\n\n## A\n\n### sub\nx\n\n## B\n\nsecond b\n"


def test_text_must_carry_its_heading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must start with its heading"):
        write_section("## A", "no heading\n", tmp_path / "B.md")
    assert cpu_name()


def test_serve_section_names_a_separately_measured_every_output_row() -> None:
    """``bench.serve --only-full`` merges a new every-output row; the section says when and how it ran."""
    from bench.serve import RESULTS, load_results, render_section

    results = load_results(RESULTS)
    meta = results["meta"]
    meta.pop("full_measured", None)  # as a full run leaves it
    before = render_section(results, meta["levels"], meta)
    assert "Measured again on its own" not in before
    meta["full_measured"] = {
        "date": "2026-12-03",
        "load": "1.0, 1.0, 1.0",
        "repeats": 3,
        "runs": [5.0, -2.5, 8],
    }
    after = render_section(results, meta["levels"], meta)
    assert "Measured again on its own on 2026-12-03 (`python -m bench.serve --only-full`, 3 runs" in after
    assert "run by run +5, -2, +8 %" in after

"""bench.refine end to end on the smallest setting: the table, the stage profile and the plot."""

from __future__ import annotations

import json
import re

import pytest

import bench.refine as bench_refine


def test_bench_refine_short_run(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench_refine, "FIG", tmp_path / "refine_cost.png")
    assert bench_refine.main(["--views", "3", "--scenes", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| 3 \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \|", out, re.M)
    assert row, out
    plain, refine, registered, sift = (float(g) for g in row.groups())
    assert plain > 0 and refine > 0 and 0 <= registered <= 1
    assert 0 < sift <= refine * 1.5  # SIFT ran, inside the refinement (profiled call is a separate run)
    assert (tmp_path / "refine_cost.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    """A real ``onepass eval --refine --given-cameras`` run on 4 small 3-view scenes."""
    from app.cli import main as cli

    out = tmp_path_factory.mktemp("eval")
    args = [
        "eval",
        "--suite",
        "procedural",
        "--scenes",
        "4",
        "--views",
        "3",
        "--size",
        "112",
        "--targets",
        "1",
    ]
    assert (
        cli([*args, "--refine", "--given-cameras", "--no-colmap", "--threads", "1", "--out", str(out)]) == 0
    )
    return out / "results.json"


def test_bench_refine_quality_tables_come_from_an_eval_run(eval_run, tmp_path) -> None:
    """``--quality``: the accuracy tables are those of a real ``onepass eval --refine`` run."""
    summary = {s["method"]: s for s in json.loads(eval_run.read_text())["summary"]}
    text = bench_refine.render_quality(str(eval_run))
    row = re.search(r"^\| 3 \| ([\d.]+) \| \*\*([\d.]+)\*\* \|", text, re.M)
    assert row, text
    assert float(row.group(1)) == round(summary["onepass"]["auc30"], 3)
    assert float(row.group(2)) == round(summary["onepass+refine"]["auc30"], 3)
    depth = re.search(
        r"^\| 3 \| ([\d.]+) → ([\d.]+) \| ([\d.]+) → ([\d.]+) \|", text.split("Depth, points")[1], re.M
    )
    assert depth, text
    assert float(depth.group(1)) == round(summary["onepass"]["abs_rel_median"], 3)
    assert float(depth.group(2)) == round(summary["onepass+refine"]["abs_rel_median"], 3)
    assert float(depth.group(4)) == round(summary["onepass+refine"]["abs_rel_global"], 3)
    given = re.search(
        r"^\| 3 \| ([\d.]+) → ([\d.]+) \| [\d.]+ → [\d.]+ \|",
        text.split("true intrinsics and poses")[1],
        re.M,
    )
    assert given and "--given-cameras" in text, text
    assert float(given.group(1)) == round(summary["onepass+cameras"]["abs_rel_given"], 3)
    assert float(given.group(2)) == round(summary["onepass+cameras+refine"]["abs_rel_given"], 3)
    kinds = re.search(r"^\| views \| (.+) \|$", text.split("per scene kind")[1], re.M).group(1).split(" | ")
    assert kinds == ["forward", "objects", "orbit", "room"]  # seeds 0-3 cycle through the kinds
    plain = tmp_path / "plain.json"  # an eval without --refine has no refined rows: a clear error
    plain.write_text(json.dumps({**json.loads(eval_run.read_text()), "rows": []}))
    with pytest.raises(ValueError, match="no 'onepass\\+refine' rows"):
        bench_refine.render_quality(str(plain))


def test_quality_only_replaces_the_accuracy_part_and_keeps_the_costs(eval_run, tmp_path, monkeypatch, capsys):
    import bench._report

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(
        "# Benchmarks\n\n## Camera refinement\n\nCost table 1.23\n\n"
        "### Accuracy\n\nold numbers\n\n## Next\n\nx\n"
    )
    monkeypatch.setattr(bench._report, "BENCHMARKS_DOC", doc)
    assert bench_refine.main(["--quality", str(eval_run), "--quality-only", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Camera refinement\n\nCost table 1.23\n\n### Accuracy\n")
    assert "old numbers" not in out and "## Next" not in out and "AUC@30 refined" in out
    with pytest.raises(SystemExit):
        bench_refine.main(["--quality-only"])  # needs --quality

"""bench.refine end to end on the smallest setting: the table, the stage profile and the plot."""

from __future__ import annotations

import re

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

"""bench.psnr_ceiling: exact-geometry Gaussians on real procedural scenes, and the section it prints."""

from __future__ import annotations

import re

import bench.psnr_ceiling as ceiling


def test_more_input_views_leave_fewer_holes() -> None:
    """An orbit scene (seed 2): 2 input views leave much of a target view unseen (sky no input looked
    at); 8 views around the same orbit leave less, and the exact geometry then renders it better. The object
    itself is seen either way (surface coverage near 1: blending at its edges moves it by a few %)."""
    few, many = (ceiling.scene_ceiling(2, views, size=112) for views in (2, 8))
    assert few["kind"] == "orbit" and 0.0 <= many["holes"] < few["holes"] <= 1.0, (few, many)
    assert min(few["coverage"], many["coverage"]) > 0.9, (few, many)
    assert many["psnr"] > few["psnr"]


def test_section_from_a_short_run(capsys) -> None:
    assert ceiling.main(["--scenes", "2", "--views", "2", "--no-write"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| 2 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", out, re.M)
    assert row, out
    psnr, ssim, holes, coverage = (float(g) for g in row.groups())
    assert psnr > 5 and 0 < ssim < 1 and 0 <= holes < 1 and 0 < coverage <= 1
    assert "| views | objects | room |" in out  # seeds 0 and 1: one scene of each kind

"""bench.eval's section renderer: refined rows get their own label, target line and explanation."""

from __future__ import annotations

import argparse

from bench.eval import _label, render_section


def _summary(label: str, views: int, auc: float) -> dict:
    return {"suite": "procedural", "label": label, "views": views, "scenes": 50, "auc30": auc}


def test_refined_rows_are_labelled_and_stated_against_the_target() -> None:
    assert _label("trained", {"method": "onepass+refine"}) == "onepass-trained+refine"
    assert _label("trained", {"method": "onepass-full"}) == "onepass-trained-full"
    assert _label("random", {"method": "onepass"}) == "onepass-random"
    summary = [
        _summary("colmap", 4, 0.402),
        _summary("onepass-trained", 4, 0.114),
        _summary("onepass-trained+refine", 4, 0.538),
    ]
    args = argparse.Namespace(
        scenes=50, views=(4,), weights=None, run="runs/none", colmap_json=None, random_json=None,
        trained_json=None, refine=False, refined_json="runs/eval/x/results.json", threads=1, fingerprint="f",
    )  # fmt: skip
    text = render_section(summary, {}, {}, args, "2026-12-03")
    assert "--refined-json runs/eval/x/results.json" in text
    assert "| onepass-trained+refine | 4 | 50 | 0.538 |" in text
    assert "with camera refinement" in text and "0.538 vs COLMAP 0.402 → not met" in text
    assert "`+refine` = the same forward pass, then camera refinement" in text
    plain = render_section(summary[:2], {}, {}, args, "2026-12-03")
    assert "with camera refinement" not in plain and "`+refine`" not in plain


def test_a_warm_started_run_says_where_its_log_begins() -> None:
    args = argparse.Namespace(
        scenes=50, views=(4,), weights=None, run="runs/none", colmap_json=None, random_json=None,
        trained_json=None, refine=False, refined_json=None, threads=1, fingerprint="f",
    )  # fmt: skip
    run = {"run": "runs/r", "steps": 23440, "first_step": 21103, "hours": 18.9, "median_step_s": 1.9}
    text = render_section([_summary("onepass-trained", 4, 0.12)], run, {}, args, "2026-12-06")
    assert "`runs/r`: 23440 steps" in text and "Its log starts at step 21103" in text
    whole = render_section([_summary("onepass-trained", 4, 0.12)], run | {"first_step": 1}, {}, args, "x")
    assert "Its log starts" not in whole

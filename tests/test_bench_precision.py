"""bench.precision: fp32 vs bf16 training steps and inference, measured for real on the shipped weights."""

from __future__ import annotations

import json
import re

import pytest

from bench.precision import accuracy_rows, main


@pytest.mark.slow
def test_a_short_run_measures_both_precisions(capsys) -> None:
    assert main(["--steps", "3", "--reps", "1", "--views", "4", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "### Training step" in out and "### Inference" in out and "### Accuracy" not in out
    step = re.search(r"\| seconds per step \| ([\d.]+) \| ([\d.]+) \| \*\*([\d.]+)×\*\* \|", out)
    assert step is not None and all(float(v) > 0 for v in step.groups())
    assert float(step[3]) == pytest.approx(float(step[1]) / float(step[2]), abs=0.01)
    gap = re.search(r"the total loss is ([\d.]+) in float32 and ([\d.]+) with bf16", out)
    assert gap is not None and float(gap[2]) == pytest.approx(float(gap[1]), rel=0.02)
    assert re.search(r"\| 4 \| [\d.]+ \| [\d.]+ \| \*\*[\d.]+×\*\* \|", out)


def test_accuracy_rows_pair_the_two_evaluations(tmp_path) -> None:
    def results(auc: float) -> dict:
        row = {"suite": "procedural", "method": "onepass", "views": 4, "scenes": 10, "auc30": auc,
               "rot_err_median_deg": 30.0, "trans_err_median_deg": 40.0, "abs_rel_median": 0.17,
               "delta1_median": 0.75, "chamfer": 0.064, "psnr": 16.1}  # fmt: skip
        colmap = dict(row, method="colmap")
        return {"summary": [row, colmap]}

    for name, auc in (("a", 0.093), ("b", 0.092)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results(auc)))
    rows = accuracy_rows(tmp_path / "a", tmp_path / "b")
    assert len(rows) == 4  # header, rule, one line per precision (COLMAP rows are not ours)
    assert rows[2].startswith("| procedural | 4 | 10 | float32 | 0.093 |")
    assert rows[3].startswith("| procedural | 4 | 10 | bf16 | 0.092 |")

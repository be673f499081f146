"""bench.model's measurement worker and its bfloat16 table, on a 3-view scene."""

from __future__ import annotations

import re
import statistics

from bench.model import bf16_table, run_views_worker


def test_views_worker_measures_float32_and_bf16_and_the_table_compares_them() -> None:
    spec = {"views": 3, "anchors": 3, "repeats": 2, "threads": 1}
    fp32 = run_views_worker(spec)
    bf16 = run_views_worker(spec | {"cpu_bf16": True})
    assert fp32["precision"] == "float32" and bf16["precision"].startswith("bfloat16")
    assert len(fp32["times"]) == len(bf16["cpu_times"]) == 2 and min(fp32["gaussians"], bf16["gaussians"]) > 0
    text = "\n".join(
        bf16_table({"full": {3: fp32}, "zpressor": {3: fp32}}, {"full": {3: bf16}, "zpressor": {3: bf16}})
    )
    row = re.search(r"^\| 3 \| ([\d.]+) → ([\d.]+) \| [\d.]+ → [\d.]+ \| 1\.00 \| 1\.00 \|$", text, re.M)
    assert row, text
    assert float(row.group(1)) == round(statistics.median(fp32["cpu_times"]), 2)
    assert float(row.group(2)) == round(statistics.median(bf16["cpu_times"]), 2)
    # view counts measured in only one precision are left out
    assert bf16_table({"full": {}, "zpressor": {}}, {"full": {3: bf16}, "zpressor": {3: bf16}}) == []


def test_views_worker_runs_pair_registration_and_the_table_compares_it() -> None:
    from bench.model import pair_table

    base = {"views": 5, "repeats": 1, "threads": 1}
    full = run_views_worker(base | {"anchors": 5})
    every = run_views_worker(base | {"anchors": 2})
    pair = run_views_worker(base | {"anchors": 2, "registration": "pair"})
    assert (full["registration"], every["registration"], pair["registration"]) == (None, "all", "pair")
    text = "\n".join(pair_table({"full": {5: full}, "zpressor": {5: every}, "pair": {5: pair}}))
    row = re.search(r"^\| 5 \| ([\d.]+) / ([\d.]+) \| ([\d.]+) \|", text, re.M)
    assert row, text
    assert float(row.group(2)) == round(statistics.median(pair["cpu_times"]), 2)
    assert pair_table({"full": {5: full}, "zpressor": {5: every}, "pair": {}}) == []  # nothing measured

"""``onepass train`` end to end on the real tiny preset: one step, resume refusals, export, reload."""

from __future__ import annotations

import csv

import pytest
import torch

from app.cli import main
from models import load_model


@pytest.mark.slow
def test_train_one_step_resume_refusals_and_export(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--out", str(run), "--max-steps", "1", "--no-progress"]) == 0
    assert "step 1 (+1)" in capsys.readouterr().out
    with (run / "log.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["step"] == "1" and float(row["total"]) > 0 and row["views"] == "2"
    before = (run / "last.pt").read_bytes()

    assert main(["train", "--out", str(run), "--max-steps", "1"]) == 2  # exists, no --resume
    assert "already exists; pass resume=True (--resume)" in capsys.readouterr().err
    assert main(["train", "--resume", "--preset", "vggt-1b", "--out", str(run)]) == 2
    assert "does not match the run" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "--resume: checkpoint" in capsys.readouterr().err
    assert main(["train", "--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert (run / "last.pt").read_bytes() == before

    out = tmp_path / "onepass-tiny.safetensors"
    assert main(["train", "--out", str(run), "--export", str(out)]) == 0
    model = load_model("tiny", out, device="cpu")  # the loader the service and `reconstruct` use
    trained = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    assert out.stat().st_size < 25_000_000

    # Warm start: a new run from the exported weights continues at the step they record.
    warm = tmp_path / "warm"
    args = ["train", "--out", str(warm), "--init-weights", str(out), "--max-steps", "1", "--no-progress"]
    assert main(args) == 0
    assert "preset tiny, step 1," in capsys.readouterr().out
    with (warm / "log.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["step"] == "2"
    # bf16 autocast on the CPU from here on: one more step, and the run keeps the setting.
    bf16 = ["train", "--resume", "--out", str(warm), "--cpu-bf16", "--max-steps", "1", "--no-progress"]
    assert main(bf16) == 0
    assert "step 3 (+1)" in capsys.readouterr().out
    assert torch.load(warm / "last.pt", weights_only=True)["train_config"]["cpu_bf16"] is True
    assert main(["train", "--resume", "--out", str(warm), "--init-weights", str(out)]) == 2
    assert "cannot be combined with --resume" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    assert main(["train", "--out", str(tmp_path / "w2"), "--init-weights", str(junk)]) == 2
    assert "--init-weights:" in capsys.readouterr().err and not (tmp_path / "w2" / "last.pt").exists()

    # Anneal: one step of decaying rate ends the run; a different length later is refused, clearly.
    assert main(["train", "--resume", "--out", str(run), "--anneal", "1", "--no-progress"]) == 0
    assert "step 2 (+1)" in capsys.readouterr().out
    assert main(["train", "--resume", "--out", str(run), "--anneal", "3"]) == 2
    assert "--anneal: this run already anneals over 1 steps from step 1" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(run), "--anneal", "0"]) == 2
    assert "--anneal must be >= 1" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(run), "--direction-weight", "-1"]) == 2
    assert "--direction-weight must be >= 0" in capsys.readouterr().err

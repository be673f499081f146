"""``onepass serve`` argument errors and ``onepass batch`` end to end (resumable) on procedural scenes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.services import pipeline


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["serve", "--device", "cuda:3"], "--device"),
        (["serve", "--device", "tpu"], "--device"),
        (["serve", "--preset", "vggt-7b"], "--preset"),
        (["serve", "--workers", "-1"], "--workers"),
        (["serve", "--weights", "/nonexistent/w.safetensors"], "--weights"),
        (["batch", "/nonexistent/scenes", "-o", "/tmp/x"], "DIR_OF_SCENES"),
        (["batch", ".", "-o", "/tmp/x", "--jobs", "0"], "--jobs"),
        (["batch", ".", "-o", "/tmp/x", "--outputs", "cameras,mesh"], "--outputs"),
    ],
)
def test_argument_errors_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("onepass: error: ") and needle in err


@pytest.mark.slow
def test_batch_is_resumable(
    tmp_path: Path, tiny_reconstructor, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.data.procedural import make_scene, save_scene

    scenes = tmp_path / "scenes"
    for i in range(2):
        save_scene(make_scene(i, views=2, width=160, height=80), scenes / f"scene{i}")
    (scenes / "empty").mkdir()
    out = tmp_path / "out"
    loads = []
    monkeypatch.setattr(
        pipeline, "load_reconstructor", lambda *a, **kw: loads.append((a, kw)) or tiny_reconstructor
    )
    refined = []  # every Reconstruction the batch writes
    write = pipeline.write_outputs
    monkeypatch.setattr(
        pipeline, "write_outputs", lambda recon, *a: refined.append(recon) or write(recon, *a)
    )
    argv = [
        "batch",
        str(scenes),
        "-o",
        str(out),
        "--jobs",
        "2",
        "--max-anchors",
        "2",
        "--outputs",
        "cameras,depth",
        "--cpu-bf16",
        "--registration",
        "pair",
        "--refine",
    ]

    assert main(argv) == 1  # the empty folder fails, the others succeed
    # --cpu-bf16 and --registration reach the model loader
    assert loads[0][1] == {"cpu_bf16": True, "registration": "pair"}
    assert [r.report["refinement"]["status"] for r in refined] == ["done", "done"]  # --refine reached both
    err = capsys.readouterr().err
    assert "scene 'empty' failed" in err and "done 2, failed 1" in err
    for i in range(2):
        cams = json.loads((out / f"scene{i}" / "cameras.json").read_text())
        assert [f["image"] for f in cams["frames"]] == ["000.png", "001.png"]
        assert (out / f"scene{i}" / "depth" / "001.npy").is_file()
        assert (out / f"scene{i}" / "manifest.json").is_file()
    assert not (out / "empty").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp folder left
    stamp = (out / "scene0" / "manifest.json").stat().st_mtime_ns

    (scenes / "empty").rmdir()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "2 scene(s), 2 already done" in err
    assert (out / "scene0" / "manifest.json").stat().st_mtime_ns == stamp  # not redone
    assert len(loads) == 1  # nothing to do: the model is not even loaded


def test_serve_flags_become_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append((app, kw)))  # no socket, no loop
    argv = ["serve", "--port", "8123", "--workers", "0", "--cpu-bf16", "--data-dir", str(tmp_path)]
    assert main([*argv, "--registration", "pair"]) == 0
    ((app, kw),) = served
    settings = app.state.settings
    assert settings.cpu_bf16 is True and settings.workers == 0 and settings.data_dir == tmp_path
    assert settings.registration == "pair"
    assert kw["port"] == 8123


def test_registration_choices_are_the_models_modes() -> None:
    from app.cli import REGISTRATION_CHOICES
    from app.core.config import Settings
    from models.vggt import REGISTRATION_MODES

    assert REGISTRATION_CHOICES == REGISTRATION_MODES
    assert Settings.model_fields["registration"].annotation.__args__ == REGISTRATION_MODES

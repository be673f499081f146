"""``onepass scenes make``: real runs into tmp folders, and one-line errors naming the bad argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from models.data import load_scene, make_scene


def test_make_writes_scene_folders(tmp_path, capsys):
    out = tmp_path / "scenes"
    rc = main(
        [
            "scenes",
            "make",
            "--out",
            str(out),
            "--count",
            "2",
            "--views",
            "2",
            "--size",
            "48x32",
            "--seed",
            "7",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["scene_00000", "scene_00001"]
    for i in range(2):
        loaded = load_scene(out / f"scene_{i:05d}")
        assert loaded.images.shape == (2, 32, 48, 3)
        assert loaded.seed == 7 + i
        ref = make_scene(7 + i, views=2, width=48, height=32, kind=loaded.kind)
        np.testing.assert_allclose(loaded.depth, ref.depth, rtol=1e-6)
        assert np.abs(loaded.images - ref.images).max() <= 0.5 / 255 + 1e-6  # 8-bit PNG
    assert "wrote 2 scene(s)" in capsys.readouterr().out


def test_make_kind_and_random_aspect(tmp_path):
    out = tmp_path / "o"
    args = ["scenes", "make", "--out", str(out), "--count", "2", "--views", "1", "--size", "40x40"]
    assert main([*args, "--kind", "room", "--random-aspect"]) == 0
    for d in sorted(out.iterdir()):
        s = load_scene(d)
        assert s.kind == "room"
        assert max(s.width, s.height) == 40 and 20 <= min(s.width, s.height) <= 40


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--size", "0x64"], "--size"),
        (["--size", "64x-3"], "--size"),
        (["--size", "64"], "--size"),
        (["--size", "axb"], "--size"),
        (["--views", "0"], "--views"),
        (["--views", "two"], "--views"),
        (["--count", "0"], "--count"),
        (["--count", "-1"], "--count"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_arguments_fail_with_one_line(tmp_path, capsys, extra, needle):
    rc = main(["scenes", "make", "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "x" / "scene_00000").exists()


def test_unwritable_out_fails_in_a_subprocess(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "app", "scenes", "make", "--out", str(blocker / "sub"), "--size", "8x8"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0], proc.stderr

"""``onepass render``: PNGs and an MP4 from a result folder; bad arguments exit 2 naming the argument."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli import main
from renderer.conventions import look_at
from renderer.io.scene_layout import Frame, write_cameras
from renderer.io.splat_ply import save_splat_ply
from renderer.types import Gaussians


@pytest.fixture
def result_dir(tmp_path):
    g = torch.Generator().manual_seed(0)
    n = 300
    gaussians = Gaussians(
        means=torch.randn(n, 3, generator=g) * 0.4,
        quats=torch.randn(n, 4, generator=g),
        scales=torch.rand(n, 3, generator=g) * 0.08 + 0.02,
        opacities=torch.rand(n, generator=g) * 0.5 + 0.5,
        sh=torch.randn(n, 4, 3, generator=g) * 0.5,
    )
    save_splat_ply(gaussians, tmp_path / "scene" / "splats.ply")
    frames = []
    for i in range(3):
        eye = torch.tensor([np.sin(0.5 * i) * 3, -0.5, -np.cos(0.5 * i) * 3], dtype=torch.float64)
        w2c = look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, -1.0, 0.0])).numpy()
        frames.append(Frame(f"{i:03d}.png", 80, 60, np.array([[70.0, 0, 40], [0, 70.0, 30], [0, 0, 1]]), w2c))
    write_cameras(tmp_path / "scene", frames)
    return tmp_path / "scene"


@pytest.mark.parametrize("path", ["orbit", "spiral", "inputs"])
def test_renders_pngs_and_video(result_dir, tmp_path, path, capsys):
    out = tmp_path / f"out_{path}"
    args = ["--path", path, "--frames", "4", "--size", "48x36", "-o", str(out), "--background", "1,1,1"]
    code = main(["render", str(result_dir), *args])
    assert code == 0
    pngs = sorted(out.glob("frame_*.png"))
    assert [p.name for p in pngs] == [f"frame_{i:04d}.png" for i in range(4)]
    frames = [np.asarray(Image.open(p)) for p in pngs]
    assert all(f.shape == (36, 48, 3) for f in frames)
    assert all((f < 250).any() and (f == 255).any() for f in frames)  # splats in front of a white background
    if importlib.util.find_spec("imageio_ffmpeg"):
        import imageio.v3 as iio

        video = iio.imread(out / "video.mp4")
        assert video.shape[0] == 4 and video.shape[1:3] == (36, 48)
    assert "wrote 4 frames" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--size", "48by36"], "--size must look like WIDTHxHEIGHT"),
        (["--size", "0x36"], "--size: width and height must be in [1, 8192]"),
        (["--frames", "0"], "--frames must be in [1, 100000]"),
        (["--path", "helix"], "--path must be one of orbit, spiral, inputs"),
        (["--backend", "metal"], "--backend must be auto, cpu or gsplat"),
        (["--background", "2,0,0"], "--background must be three numbers in [0, 1]"),
    ],
)
def test_bad_arguments_exit_2_naming_them(result_dir, tmp_path, args, message, capsys):
    assert main(["render", str(result_dir), "-o", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_scene_files_are_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["render", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert "splats.ply' is missing" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "SCENE_DIR: " in capsys.readouterr().err

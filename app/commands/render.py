"""``onepass render``: render a result folder's Gaussians along a camera path to PNGs and an MP4.

Reads ``SCENE_DIR/splats.ply`` and ``SCENE_DIR/cameras.json`` (the scene layout), builds an orbit, an
LLFF-style spiral or a path through the input cameras, and writes ``OUT/frame_0000.png`` … plus
``OUT/video.mp4`` when an MP4 encoder (imageio-ffmpeg) is installed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

PATHS = ("orbit", "spiral", "inputs")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="render a result folder along a camera path", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "scene_dir", type=Path, metavar="SCENE_DIR", help="folder with splats.ply and cameras.json"
    )
    p.add_argument("--path", default="orbit", help=f"camera path: {', '.join(PATHS)} (default orbit)")
    p.add_argument("--frames", type=int, default=60, help="number of frames (default 60)")
    p.add_argument("--size", default="512x512", help="output WIDTHxHEIGHT in pixels (default 512x512)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder for PNGs and video.mp4")
    p.add_argument("--backend", default="auto", help="auto, cpu or gsplat (default auto)")
    p.add_argument("--fps", type=int, default=30, help="video frame rate (default 30)")
    p.add_argument("--background", default="0,0,0", help="R,G,B in [0, 1] behind the splats (default 0,0,0)")
    p.add_argument("--no-video", action="store_true", help="write PNGs only")
    p.set_defaults(func=run)


def _parse_size(text: str) -> tuple[int, int]:
    from app.cli import CommandError

    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise CommandError(f"--size must look like WIDTHxHEIGHT (e.g. 512x512), got '{text}'")
    w, h = int(m.group(1)), int(m.group(2))
    if not (1 <= w <= 8192 and 1 <= h <= 8192):
        raise CommandError(f"--size: width and height must be in [1, 8192], got {w}x{h}")
    return w, h


def _parse_background(text: str) -> list[float]:
    from app.cli import CommandError

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise CommandError(f"--background must be three numbers in [0, 1] like 1,1,1, got '{text}'")
    return values


def run(args: argparse.Namespace) -> int:
    from app.cli import CommandError

    if args.path not in PATHS:
        raise CommandError(f"--path must be one of {', '.join(PATHS)}, got '{args.path}'")
    if args.frames < 1 or args.frames > 100_000:
        raise CommandError(f"--frames must be in [1, 100000], got {args.frames}")
    if args.fps < 1:
        raise CommandError(f"--fps must be >= 1, got {args.fps}")
    if args.backend not in ("auto", "cpu", "gsplat"):
        raise CommandError(f"--backend must be auto, cpu or gsplat, got '{args.backend}'")
    width, height = _parse_size(args.size)
    background = _parse_background(args.background)
    scene_dir: Path = args.scene_dir
    if not scene_dir.is_dir():
        raise CommandError(f"SCENE_DIR: '{scene_dir}' is not a folder")
    if not (scene_dir / "splats.ply").is_file():
        raise CommandError(
            f"SCENE_DIR: '{scene_dir / 'splats.ply'}' is missing (run onepass reconstruct first)"
        )
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out: '{args.out}' exists and is not a folder")
    return _render(args, scene_dir, width, height, background)


def _render(
    args: argparse.Namespace, scene_dir: Path, width: int, height: int, background: list[float]
) -> int:
    import numpy as np
    import torch
    from PIL import Image
    from tqdm import tqdm

    from app.cli import CommandError
    from renderer import render_gaussians
    from renderer.camera_paths import input_path, orbit_path, spiral_path
    from renderer.io.scene_layout import read_cameras
    from renderer.io.splat_ply import load_splat_ply

    try:
        gaussians = load_splat_ply(scene_dir / "splats.ply")
        frames, _ = read_cameras(scene_dir)
    except (OSError, ValueError) as e:
        raise CommandError(f"SCENE_DIR: {e}") from e
    w2c = torch.from_numpy(np.stack([f.world_to_camera for f in frames]))
    K = torch.from_numpy(np.stack([f.K for f in frames]))
    image_hw = [(f.height, f.width) for f in frames]
    make = {"orbit": orbit_path, "spiral": spiral_path, "inputs": input_path}[args.path]
    try:
        path_w2c, path_K = make(w2c, K, args.frames, image_hw=image_hw, out_hw=(height, width))
    except ValueError as e:
        raise CommandError(f"--path {args.path}: {e}") from e

    use_cuda = args.backend != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    gaussians = gaussians.to(device)
    bg = torch.tensor(background, device=device)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    writer = None if args.no_video else _video_writer(out / "video.mp4", args.fps)
    try:
        with torch.no_grad():
            for i in tqdm(range(args.frames), desc="render", unit="frame"):
                try:
                    cam = (path_w2c[i : i + 1].to(device), path_K[i : i + 1].to(device))
                    result = render_gaussians(
                        gaussians, *cam, width, height, background=bg, backend=args.backend
                    )
                except (RuntimeError, ValueError) as e:
                    raise CommandError(f"--backend {args.backend}: {e}") from e
                rgb = (result.rgb[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
                Image.fromarray(rgb).save(out / f"frame_{i:04d}.png")
                if writer is not None:
                    writer.append_data(rgb)
    finally:
        if writer is not None:
            writer.close()
    print(f"wrote {args.frames} frames to {out}" + ("" if writer is None else f" and {out / 'video.mp4'}"))
    return 0


def _video_writer(path: Path, fps: int):
    """An imageio MP4 writer, or None (with a note) when no ffmpeg encoder is installed."""
    import importlib.util

    if importlib.util.find_spec("imageio_ffmpeg") is None:
        print("note: imageio-ffmpeg is not installed; writing PNGs only")
        return None
    import imageio.v2 as imageio

    # macro_block_size 2: H.264 with yuv420p needs even sizes; odd ones are padded by imageio
    return imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=2)

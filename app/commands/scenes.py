"""``onepass scenes make``: write procedural multi-view scenes with exact ground truth to disk.

Scene ``i`` uses seed ``--seed + i`` and is written to ``OUT/scene_<i:05d>/`` in the scene layout
(``images/*.png``, ``depth/*.npy``, ``cameras.json``). Without ``--kind`` the kinds take turns by seed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from pathlib import Path

from app.cli import CommandError

KIND_CHOICES = ("objects", "room", "orbit", "forward")
MAX_SIDE = 8192
_SIZE = re.compile(r"^\s*(-?\d+)\s*[xX×]\s*(-?\d+)\s*$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenes", help="procedural multi-view scenes with exact ground truth")
    actions = p.add_subparsers(dest="scenes_command", metavar="ACTION")
    actions.required = True
    make = actions.add_parser(
        "make",
        help="render scenes to scene folders",
        description="Write procedural multi-view scenes (RGB, z-depth, cameras) to OUT/scene_00000 ... "
        "Scene i uses seed SEED + i; without --kind the kinds take turns by seed.",
    )
    make.add_argument("--out", required=True, help="output folder (created if missing)")
    make.add_argument("--count", default="1", help="number of scenes (default 1)")
    make.add_argument("--views", default="4", help="views per scene (default 4)")
    make.add_argument("--size", default="224x224", help="image size WxH in pixels (default 224x224)")
    make.add_argument("--seed", default="0", help="seed of the first scene (default 0)")
    make.add_argument("--kind", choices=KIND_CHOICES, default=None, help="scene kind (default: by seed)")
    make.add_argument(
        "--random-aspect",
        action="store_true",
        help="per scene, keep the longer side of --size and draw the aspect ratio (short/long) in [0.5, 1]",
    )
    make.set_defaults(func=run)


def _int_arg(name: str, text: str, minimum: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise CommandError(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise CommandError(f"{name} must be >= {minimum}, got {value}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` → ``(W, H)``; raises :class:`CommandError` naming ``--size`` if malformed or out of range."""
    m = _SIZE.match(str(text))
    if not m:
        raise CommandError(f"--size must look like WIDTHxHEIGHT (e.g. 224x224), got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise CommandError(f"--size must have a positive width and height, got {w}x{h}")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise CommandError(f"--size must be at most {MAX_SIDE} pixels per side, got {w}x{h}")
    return w, h


def _prepare_out(text: str) -> Path:
    """Create the output folder and check that it can be written to; errors name ``--out``."""
    out = Path(text).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CommandError(f"--out {text!r} is not a folder (a file is in the way)") from None
    except OSError as e:
        raise CommandError(f"--out {text!r} cannot be created: {e.strerror or e}") from None
    if not out.is_dir():
        raise CommandError(f"--out {text!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CommandError(f"--out {text!r} is not writable: {e.strerror or e}") from None
    return out


def _random_size(seed: int, width: int, height: int) -> tuple[int, int]:
    """Keep the longer side, draw short/long log-uniformly in [0.5, 1] (deterministic per seed)."""
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    ratio = math.exp(rng.uniform(math.log(0.5), 0.0))
    long_side = max(width, height)
    short = max(1, round(long_side * ratio))
    return (long_side, short) if rng.random() < 0.5 else (short, long_side)


def run(args: argparse.Namespace) -> int:
    count = _int_arg("--count", args.count, 1)
    views = _int_arg("--views", args.views, 1)
    seed = _int_arg("--seed", args.seed, 0)
    width, height = parse_size(args.size)
    out = _prepare_out(args.out)

    from tqdm import tqdm

    from models.data.procedural import kind_for_seed, make_scene, save_scene

    for i in tqdm(range(count), desc="scenes", unit="scene"):
        s = seed + i
        w, h = _random_size(s, width, height) if args.random_aspect else (width, height)
        kind = args.kind or kind_for_seed(s)
        scene = make_scene(s, views=views, width=w, height=h, kind=kind)
        try:
            save_scene(scene, out / f"scene_{i:05d}")
        except OSError as e:
            raise CommandError(f"--out {args.out!r}: writing scene {i} failed: {e.strerror or e}") from None
    print(f"wrote {count} scene(s) with {views} view(s) each to {out}")
    return 0

"""``onepass reconstruct IMAGES…|DIR -o OUT``: images → cameras, depth, points, Gaussians and exports.

Optional ``--intrinsics F`` / ``--poses F`` read a ``cameras.json`` (scene layout; frames matched by image
file name, else taken in order), a JSON array (``[3, 3]`` or ``[S, 3, 3]`` intrinsics in pixels of the
original images; ``[S, 4, 4]`` world→camera poses, OpenCV axes) or a ``.npy`` file with the same shapes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.cli import CPU_BF16_HELP, REFINE_HELP, REGISTRATION_CHOICES, REGISTRATION_HELP, CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="reconstruct a scene from images (one forward pass)")
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument(
        "--preset", default="tiny", choices=["tiny", "vggt-1b"], help="network preset (default tiny)"
    )
    p.add_argument("--weights", default=None, metavar="F", help="checkpoint (.pt or .safetensors)")
    p.add_argument(
        "--max-anchors", type=int, default=8, metavar="N", help="ZPressor anchor views (default 8)"
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=None,
        metavar="W",
        help="model input width in pixels, a multiple of 14 from 28 to 1036 (default: the preset's)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument(
        "--cpu-bf16", action="store_true",
        help=CPU_BF16_HELP,
    )  # fmt: skip
    p.add_argument("--registration", choices=REGISTRATION_CHOICES, default="all", help=REGISTRATION_HELP)
    p.add_argument("--refine", action="store_true", help=REFINE_HELP)
    p.add_argument(
        "--intrinsics", default=None, metavar="F", help="known intrinsics (JSON, cameras.json or .npy)"
    )
    p.add_argument(
        "--poses", default=None, metavar="F", help="known world_to_camera poses (JSON, cameras.json, .npy)"
    )
    p.set_defaults(func=run)


def _read_camera_file(path: str, field: str, image_names: list[str], arg: str) -> np.ndarray:
    """Load ``field`` ("K" or "world_to_camera") for every view from a camera file."""
    p = Path(path)
    if not p.is_file():
        raise CommandError(f"{arg}: file not found: {p}")
    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False).astype(np.float64)
        doc = json.loads(p.read_text())
    except (ValueError, OSError) as e:
        raise CommandError(f"{arg}: cannot read {p} ({e})") from e
    if isinstance(doc, dict) and isinstance(doc.get("frames"), list):
        frames = doc["frames"]
        by_name = {Path(str(f.get("image", ""))).name: f for f in frames if isinstance(f, dict)}
        names = [Path(n).name for n in image_names]
        chosen = [by_name[n] for n in names] if all(n in by_name for n in names) else frames
        if len(chosen) != len(image_names):
            raise CommandError(f"{arg}: {p} has {len(chosen)} frames for {len(image_names)} images")
        try:
            return np.asarray([f[field] for f in chosen], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise CommandError(f"{arg}: {p} frames need a numeric '{field}' ({e})") from e
    for key in (field, "intrinsics" if field == "K" else "poses"):
        if isinstance(doc, dict) and key in doc:
            doc = doc[key]
    try:
        return np.asarray(doc, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CommandError(f"{arg}: {p} is not a numeric array ({e})") from e


def _output_names(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return [f"{s}.png" for s in stems]
    return [f"{i:04d}_{s}.png" for i, s in enumerate(stems)]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.services.outputs import write_reconstruction
    from models.checkpoint import CheckpointMismatchError
    from models.preprocess import ImageLoadError, list_images, load_image
    from models.reconstruct import NonFiniteOutputError, Reconstructor

    for item in args.images:
        if not Path(item).exists():
            raise CommandError(f"IMAGES: not found: {item}")
    paths = list_images(args.images)
    if not paths:
        raise CommandError(f"IMAGES: no image files in {', '.join(args.images)}")
    if args.max_anchors < 1:
        raise CommandError(f"--max-anchors must be >= 1, got {args.max_anchors}")
    if args.resolution is not None:
        from models.config import get_config
        from models.reconstruct import check_resolution

        cfg = get_config(args.preset)
        try:
            check_resolution(args.resolution, cfg.input_width, cfg.patch_size)
        except ValueError as e:
            raise CommandError(f"--{e}") from None
    names = _output_names(paths)
    intrinsics = (
        None if args.intrinsics is None else _read_camera_file(args.intrinsics, "K", names, "--intrinsics")
    )
    poses = None if args.poses is None else _read_camera_file(args.poses, "world_to_camera", names, "--poses")

    with tqdm(total=len(paths) + 3, desc="loading images", unit="step") as bar:
        images = []
        for p in paths:
            try:
                images.append(load_image(p))
            except (ImageLoadError, FileNotFoundError) as e:
                raise CommandError(f"IMAGES: {e}") from e
            bar.update()
        bar.set_description("loading model")
        try:
            reconstructor = Reconstructor(
                args.preset, args.weights, args.device, cpu_bf16=args.cpu_bf16, registration=args.registration
            )
        except (FileNotFoundError, CheckpointMismatchError) as e:
            raise CommandError(f"--weights: {e}") from e
        except ValueError as e:
            from_weights = args.weights is not None and str(args.weights) in str(e)
            raise CommandError(f"--weights: {e}" if from_weights else str(e)) from e
        bar.update()
        bar.set_description("reconstructing")
        try:
            recon = reconstructor.reconstruct(
                images, intrinsics, poses, max_anchors=args.max_anchors, resolution=args.resolution,
                refine=args.refine,
            )  # fmt: skip
        except NonFiniteOutputError as e:
            raise CommandError(f"reconstruction failed, nothing written: {e}") from e
        except ValueError as e:
            raise CommandError(str(e)) from e
        bar.update()
        bar.set_description("writing files")
        files = write_reconstruction(recon, args.output, names, images=images)
        bar.update()
    for w in recon.report.get("warnings", []):
        tqdm.write(f"warning: {w}")
    summary = f"{recon.num_views} views, {len(recon.gaussians)} Gaussians"
    print(f"wrote {len(files)} outputs to {args.output} ({summary})")
    return 0

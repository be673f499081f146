"""``onepass eval``: benchmark the model (and the COLMAP peer) against exact ground truth.

Suites: ``procedural`` (generated scenes on seeds never used in training, ``--scenes`` × ``--views``),
``motorcycle`` (the Middlebury pair bundled with scikit-image), ``folder`` (scene-layout folders with
``cameras.json`` and ``depth/``, given by ``--data``), or ``all`` (procedural + motorcycle). Writes
``results.json``, ``results.md`` and plots into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CPU_BF16_HELP, REGISTRATION_CHOICES, REGISTRATION_HELP, CommandError


def _views(text: str) -> tuple[int, ...]:
    try:
        views = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated view counts like 2,4,8, got {text!r}"
        ) from None
    if not views or min(views) < 2:
        raise argparse.ArgumentTypeError(f"view counts must be >= 2, got {text!r}")
    return views


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmark cameras, depth, points and novel views against ground truth")
    p.add_argument("--suite", default="procedural", choices=["procedural", "motorcycle", "folder", "all"])
    p.add_argument("--scenes", type=int, default=50, help="procedural scenes per view count (default 50)")
    p.add_argument(
        "--views", type=_views, default=(2, 4, 8, 16, 32), help="view counts (default 2,4,8,16,32)"
    )
    p.add_argument("--seed-offset", type=int, default=0, help="first scene seed (default 0; must stay < 1e6)")
    p.add_argument("--size", type=int, default=224, help="procedural image size in pixels (default 224)")
    p.add_argument("--targets", type=int, default=2, help="held-out novel views per scene (default 2)")
    p.add_argument("--max-anchors", type=int, default=8, help="ZPressor anchor budget (default 8)")
    p.add_argument("--preset", default="tiny", help="network preset (default tiny)")
    p.add_argument(
        "--weights", default=None,
        help="weights file, training checkpoint (runs/NAME/last.pt), or 'random' (default: built-in)",
    )  # fmt: skip
    p.add_argument("--data", nargs="*", default=[], metavar="DIR", help="scene folders for --suite folder")
    p.add_argument("--no-colmap", action="store_true", help="skip the COLMAP peer")
    p.add_argument(
        "--refine",
        action="store_true",
        help="also score onepass with camera refinement (SIFT + PnP + bundle adjustment; method "
        "'onepass+refine', procedural suite)",
    )
    p.add_argument(
        "--given-cameras",
        action="store_true",
        help="also run onepass given the true intrinsics and poses, without and with its depth fitted to "
        "them (methods 'onepass+cameras', 'onepass+cameras+refine'; procedural suite); depth is also "
        "scored in the cameras' units",
    )
    p.add_argument(
        "--colmap-only", action="store_true", help="run only the COLMAP peer (it needs no weights)"
    )
    p.add_argument("--full-attention-scenes", type=int, default=5, help="scenes also run without ZPressor")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--cpu-bf16", action="store_true",
        help=CPU_BF16_HELP,
    )  # fmt: skip
    p.add_argument("--registration", choices=REGISTRATION_CHOICES, default="all", help=REGISTRATION_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="where results.json/.md and plots go")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from models.config import PRESETS
    from models.eval.report import markdown_table, write_report
    from models.eval.suite import (
        SuiteConfig,
        generator_fingerprint,
        load_scene_folder,
        run_folder_suite,
        run_motorcycle,
        run_procedural_suite,
        suite_seeds,
    )
    from models.eval.weights import load_eval_model
    from models.reconstruct import Reconstructor
    from models.training.checkpoint import CheckpointError

    if args.preset not in PRESETS:
        raise CommandError(f"--preset: unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}")
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cfg = SuiteConfig(
        scenes=args.scenes, views=args.views, seed_offset=args.seed_offset, size=args.size,
        targets=args.targets, max_anchors=args.max_anchors, colmap=not args.no_colmap,
        full_attention_scenes=args.full_attention_scenes, refine=args.refine,
        given_cameras=args.given_cameras,
    )  # fmt: skip
    if args.suite in ("procedural", "all"):
        try:
            suite_seeds(cfg)
        except ValueError as e:
            raise CommandError(f"--seed-offset/--scenes/--views: {e}") from e
    folders = [Path(d) for d in args.data]
    if args.suite == "folder":
        if not folders:
            raise CommandError("--data: --suite folder needs at least one scene folder")
        for f in folders:
            try:
                load_scene_folder(f)
            except (FileNotFoundError, ValueError) as e:
                raise CommandError(f"--data: {e}") from e
    if args.colmap_only and args.no_colmap:
        raise CommandError("--colmap-only and --no-colmap exclude each other")
    if args.colmap_only:
        reconstructor, info = None, {"source": "none (COLMAP only)"}
    else:
        try:
            model, info = load_eval_model(args.preset, args.weights)
        except (CheckpointError, FileNotFoundError, ValueError) as e:
            raise CommandError(f"--weights: {e}") from e
        reconstructor = Reconstructor(
            args.preset, model=model, cpu_bf16=args.cpu_bf16, registration=args.registration
        )
        info["precision"] = reconstructor.precision
        info["registration"] = args.registration

    rows = []
    if args.suite in ("procedural", "all"):
        total = len(cfg.views) * cfg.scenes
        with tqdm(total=total, unit="scene", desc="procedural") as bar:

            def progress(msg: str) -> None:
                bar.set_postfix_str(msg)
                bar.update(1)

            rows += [
                r | {"suite": "procedural"}
                for r in run_procedural_suite(reconstructor, cfg, progress=progress)
            ]
    if args.suite in ("motorcycle", "all"):
        motorcycle = run_motorcycle(reconstructor, colmap=cfg.colmap, refine=cfg.refine)
        rows += [r | {"suite": "motorcycle"} for r in motorcycle]
    if args.suite == "folder":
        rows += [
            r | {"suite": "folder"}
            for r in run_folder_suite(reconstructor, folders, max_anchors=cfg.max_anchors, colmap=cfg.colmap)
        ]
    meta = {"suite": args.suite, "config": cfg.to_dict(), "weights": info, "preset": args.preset}
    meta["generator_fingerprint"] = generator_fingerprint()
    meta["torch_threads"] = torch.get_num_threads()
    paths = write_report(args.out, rows, meta)
    from models.eval.report import aggregate

    print(markdown_table(aggregate(rows)))
    print(f"onepass eval: wrote {paths['json']} and {paths['markdown']}")
    return 0

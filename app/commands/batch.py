"""``onepass batch DIR_OF_SCENES -o OUT``: reconstruct every scene folder of DIR on this machine.

Each sub-folder of DIR is one scene (its ``images/`` folder if it has one, else its image files); results
go to ``OUT/<scene>/`` through the same pipeline as the service. Scenes already done are skipped, so the
command can be re-run after an interruption. Exit status 1 when any scene failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli import CPU_BF16_HELP, REFINE_HELP, REGISTRATION_CHOICES, REGISTRATION_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="reconstruct many scene folders locally (resumable)", description=__doc__
    )
    p.add_argument("scenes", type=Path, metavar="DIR_OF_SCENES", help="folder whose sub-folders are scenes")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (one sub-folder per scene)"
    )
    p.add_argument(
        "--jobs", type=int, default=2, help="scenes in flight at once, batched when same shape (2)"
    )
    p.add_argument("--preset", default=None, help="model preset (default from settings: tiny)")
    p.add_argument(
        "--weights", type=Path, default=None, help="checkpoint file (default: the preset's built-in)"
    )
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--max-anchors", type=int, default=8, help="ZPressor anchor views per scene (8)")
    p.add_argument(
        "--cpu-bf16", action="store_true", default=None,
        help=f"{CPU_BF16_HELP}; default from settings (ONEPASS_CPU_BF16)",
    )  # fmt: skip
    p.add_argument(
        "--registration", choices=REGISTRATION_CHOICES, default=None,
        help=f"{REGISTRATION_HELP}; default from settings (ONEPASS_REGISTRATION)",
    )  # fmt: skip
    p.add_argument("--refine", action="store_true", help=REFINE_HELP)
    p.add_argument(
        "--outputs", default=None, help="comma-separated artifact groups (default: all but images)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from tqdm import tqdm

    from app.cli import CommandError
    from app.core.config import Settings
    from app.services import pipeline
    from app.services.local_batch import find_scenes, is_done, run_local_batch
    from app.workers.devices import worker_devices
    from app.workers.pool import batching_enabled

    if args.jobs < 1:
        raise CommandError(f"--jobs must be >= 1, got {args.jobs}")
    if args.max_anchors < 1:
        raise CommandError(f"--max-anchors must be >= 1, got {args.max_anchors}")
    if args.weights is not None and not args.weights.is_file():
        raise CommandError(f"--weights: no such file '{args.weights}'")
    outputs = None
    if args.outputs:
        outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
        bad = [o for o in outputs if o not in pipeline.OUTPUT_GROUPS]
        if bad or "images" in outputs:
            raise CommandError(
                f"--outputs: unknown {bad or ['images']}; choose from {list(pipeline.DEFAULT_OUTPUTS)}"
            )
    try:
        scenes = find_scenes(args.scenes)
    except ValueError as e:
        raise CommandError(f"DIR_OF_SCENES: {e}") from e
    if not scenes:
        raise CommandError(f"DIR_OF_SCENES: '{args.scenes}' has no scene sub-folders")
    given = {
        "preset": args.preset, "device": args.device, "cpu_bf16": args.cpu_bf16,
        "registration": args.registration,
    }  # fmt: skip
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValueError as e:
        raise CommandError(f"--device/--preset: {e}") from e
    todo = [s for s in scenes if not is_done(args.output / s[0])]
    print(f"{len(scenes)} scene(s), {len(scenes) - len(todo)} already done", file=sys.stderr)
    if not todo:
        return 0
    try:
        device = worker_devices(settings.device, 1)[0]
    except ValueError as e:
        raise CommandError(f"--device: {e}") from e
    try:
        reconstructor = pipeline.load_reconstructor(
            settings.preset, args.weights, device, cpu_bf16=settings.cpu_bf16,
            registration=settings.registration,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        raise CommandError(f"--preset/--weights: {e}") from e
    options = {
        "preset": settings.preset, "max_anchors": args.max_anchors, "outputs": outputs, "refine": args.refine,
    }  # fmt: skip
    bar = tqdm(total=len(todo), unit="scene", desc="reconstruct")

    def on_scene(o) -> None:
        bar.update(1)
        if o.status == "failed":
            tqdm.write(f"onepass: scene '{o.name}' failed: {o.error}", file=sys.stderr)

    summary = asyncio.run(
        run_local_batch(
            todo,
            args.output,
            reconstructor,
            options=options,
            jobs=args.jobs,
            max_pixels=settings.max_pixels,
            max_files=settings.max_files,
            max_tokens=settings.max_batch_tokens,
            batching=batching_enabled(settings.batching, [device]),
            on_scene=on_scene,
        )
    )
    bar.close()
    done, failed = summary.count("done"), summary.count("failed")
    print(
        f"done {done}, failed {failed}, skipped {len(scenes) - len(todo)}; results in {args.output}",
        file=sys.stderr,
    )
    return 1 if failed else 0

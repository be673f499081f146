"""``onepass train --preset tiny --out runs/NAME [--resume] [--minutes M]``: train the built-in model.

Batches come from the procedural generator on the fly (see ``models.training``). The run folder holds
``last.pt`` (checkpoint with optimizer/scheduler/RNG state, rewritten atomically every few minutes),
``log.csv`` and ``loss_curve.png``. ``--resume`` continues a run exactly where its checkpoint left off;
without it an existing run folder is refused, so nothing is ever overwritten by accident.
"""

from __future__ import annotations

import argparse

from app.cli import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the built-in model on procedural scenes")
    p.add_argument(
        "--preset", default=None, help="network preset to train (default tiny; a resumed run's own)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (checkpoint, log, loss curve)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument(
        "--minutes", type=float, default=None, metavar="M", help="stop (and checkpoint) after M minutes"
    )
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop after N more steps")
    p.add_argument("--seed", type=int, default=0, help="run seed (new runs only; default 0)")
    p.add_argument(
        "--init-weights", default=None, metavar="FILE",
        help="new run only: start from these .safetensors weights (e.g. the shipped ones) at the step they "
        "record, with a fresh optimizer; how a run continues when its last.pt is gone",
    )  # fmt: skip
    p.add_argument(
        "--init-step", type=int, default=None, metavar="N",
        help="with --init-weights: the global step to continue from (default: the file's 'step' metadata)",
    )  # fmt: skip
    p.add_argument(
        "--anneal", type=int, default=None, metavar="N",
        help="end the run with N steps of learning rate falling linearly to zero from where it is now, "
        "then stop (to keep the run itself going, copy its folder and anneal the copy)",
    )  # fmt: skip
    p.add_argument(
        "--direction-weight", type=float, default=None, metavar="W",
        help="weight of the camera loss's translation-direction term (baseline-length invariant; "
        "default: the run's own, 0 for a new run); on --resume it applies from the checkpoint on",
    )  # fmt: skip
    p.add_argument(
        "--sign-invariant-rotation", action="store_true", default=None,
        help="compare predicted quaternions with the nearer of +/- the true one (q and -q are the same "
        "rotation); for a new run, or from the checkpoint on with --resume; the run keeps it",
    )  # fmt: skip
    p.add_argument(
        "--cpu-bf16", action=argparse.BooleanOptionalAction, default=None,
        help="run the network in bfloat16 autocast on the CPU (~1.2x faster steps where the CPU has "
        "native bf16, e.g. AVX512-BF16); losses, optimizer and validation stay float32; for a new run, "
        "or from the checkpoint on with --resume (--no-cpu-bf16 switches it off); the run keeps it",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1)")
    p.add_argument(
        "--data-workers", type=int, default=0, metavar="N",
        help="processes rendering upcoming batches (default 0: render in the training process)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument(
        "--export", default=None, metavar="FILE",
        help="write the run's weights (from --out/last.pt) as .safetensors to FILE and exit",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from models.config import PRESETS
    from models.runtime import cpu_bf16_native
    from models.training.checkpoint import CheckpointError
    from models.training.config import TrainConfig
    from models.training.loop import AnnealError, Trainer

    if args.preset is not None and args.preset not in PRESETS:
        raise CommandError(f"--preset: unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}")
    if args.minutes is not None and args.minutes <= 0:
        raise CommandError(f"--minutes must be > 0, got {args.minutes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise CommandError(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.data_workers < 0:
        raise CommandError(f"--data-workers must be >= 0, got {args.data_workers}")
    if args.threads < 1:
        raise CommandError(f"--threads must be >= 1, got {args.threads}")
    if args.anneal is not None and args.anneal < 1:
        raise CommandError(f"--anneal must be >= 1, got {args.anneal}")
    if args.direction_weight is not None and args.direction_weight < 0:
        raise CommandError(f"--direction-weight must be >= 0, got {args.direction_weight}")
    if args.init_step is not None and args.init_weights is None:
        raise CommandError("--init-step needs --init-weights")
    if args.init_weights is not None and args.resume:
        raise CommandError("--init-weights starts a new run; it cannot be combined with --resume")
    torch.set_num_threads(args.threads)
    if args.export is not None:
        from pathlib import Path

        from models.training.loop import export_weights

        if not args.export.endswith(".safetensors"):
            raise CommandError(f"--export must name a .safetensors file, got {args.export}")
        try:
            path = export_weights(Path(args.out) / "last.pt", args.export)
        except (CheckpointError, ValueError) as e:
            raise CommandError(f"--export: {e}") from e
        print(f"onepass train: exported {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    try:
        if args.resume:
            trainer = Trainer(
                args.out, resume=True, data_workers=args.data_workers, anneal_steps=args.anneal,
                direction_weight=args.direction_weight,
                sign_invariant_rotation=args.sign_invariant_rotation, cpu_bf16=args.cpu_bf16,
            )  # fmt: skip
            have = trainer.model_config.name
            if args.preset is not None and have != args.preset:
                raise CommandError(
                    f"--preset {args.preset!r} does not match the run in {args.out} ({have!r})"
                )
        else:
            init = _init_options(args) if args.init_weights is not None else {}
            config = TrainConfig(preset=args.preset or "tiny", seed=args.seed, **init)
            trainer = Trainer(
                args.out, config, data_workers=args.data_workers, anneal_steps=args.anneal,
                direction_weight=args.direction_weight,
                sign_invariant_rotation=args.sign_invariant_rotation, cpu_bf16=args.cpu_bf16,
            )  # fmt: skip
    except CheckpointError as e:
        raise CommandError(f"--{'resume' if args.resume else 'out'}: {e}") from e
    except AnnealError as e:
        raise CommandError(f"--anneal: {e}") from e
    if trainer.config.cpu_bf16 and not cpu_bf16_native():
        print("onepass train: warning: this CPU has no native bfloat16 (AVX512-BF16/AMX); --cpu-bf16 will "
              "be slower than float32 here")  # fmt: skip
    print(f"onepass train: preset {trainer.model_config.name}, step {trainer.step}, run folder {args.out}")
    summary = trainer.train(minutes=args.minutes, max_steps=args.max_steps, progress=not args.no_progress)
    print(
        f"onepass train: step {summary.step} (+{summary.steps_done}), {summary.elapsed_s / 3600:.2f} "
        f"training hours in total, last loss {summary.last_loss:.4f}, checkpoint {summary.checkpoint}"
    )
    return 0


def _init_options(args: argparse.Namespace) -> dict[str, object]:
    """``TrainConfig`` fields for ``--init-weights``: the file and the step to continue from."""
    from models.checkpoint import read_metadata

    try:
        meta = read_metadata(args.init_weights)  # the header only: the trainer reads the tensors once
    except (FileNotFoundError, ValueError) as e:
        raise CommandError(f"--init-weights: {e}") from e
    have = meta.get("preset")
    if have is not None and args.preset is not None and have != args.preset:
        raise CommandError(f"--init-weights: {args.init_weights} holds preset {have!r}, not {args.preset!r}")
    step = args.init_step
    if step is None:
        try:
            step = int(meta["step"])
        except (KeyError, ValueError):
            raise CommandError(
                f"--init-weights: {args.init_weights} records no training step; pass --init-step N"
            ) from None
    if step < 0:
        raise CommandError(f"--init-step must be >= 0, got {step}")
    return {"init_weights": str(args.init_weights), "init_step": step}

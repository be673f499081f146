"""``onepass serve``: run the HTTP service with uvicorn.

Flags override the ``ONEPASS_*`` settings (environment or ``.env``); anything not given keeps its setting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CPU_BF16_HELP, REGISTRATION_CHOICES, REGISTRATION_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP service", description=__doc__.splitlines()[0])
    p.add_argument("--host", default=None, help="bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default from settings: 8000)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--preset", default=None, help="model preset to load (default tiny)")
    p.add_argument(
        "--weights", type=Path, default=None, help="checkpoint file (default: the preset's built-in)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="inference workers (default one per CUDA device, else 1; 0 = queue only)",
    )
    p.add_argument(
        "--cpu-bf16", action="store_true", default=None,
        help=f"CPU workers: {CPU_BF16_HELP}; default from settings (ONEPASS_CPU_BF16)",
    )  # fmt: skip
    p.add_argument(
        "--registration", choices=REGISTRATION_CHOICES, default=None,
        help=f"{REGISTRATION_HELP}; default from settings (ONEPASS_REGISTRATION)",
    )  # fmt: skip
    p.add_argument(
        "--data-dir", type=Path, default=None, help="jobs, uploads and the SQLite file (default var/)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from pydantic import ValidationError

    from app.cli import CommandError
    from app.core.config import Settings
    from app.main import create_app
    from app.workers.devices import worker_devices

    given = {
        "host": args.host,
        "port": args.port,
        "device": args.device,
        "preset": args.preset,
        "weights": args.weights,
        "workers": args.workers,
        "data_dir": args.data_dir,
        "cpu_bf16": args.cpu_bf16,
        "registration": args.registration,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.weights is not None and not args.weights.is_file():
        raise CommandError(f"--weights: no such file '{args.weights}'")
    try:
        settings = Settings(**overrides)
        worker_devices(settings.device, settings.workers)
    except ValidationError as e:
        first = e.errors()[0]
        raise CommandError(f"--{'-'.join(str(p) for p in first['loc'])}: {first['msg']}") from e
    except ValueError as e:
        raise CommandError(f"--device: {e}") from e
    from models.config import PRESETS

    if settings.preset not in PRESETS:
        raise CommandError(f"--preset: unknown preset '{settings.preset}'; choose from {sorted(PRESETS)}")
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=settings.log_level.upper(), format=log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0

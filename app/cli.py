"""The ``onepass`` command line.

Each subcommand lives in its own module under ``app/commands/`` and exposes
``register(subparsers) -> None``, which adds a parser whose ``func(args) -> int`` runs it. Modules are
discovered automatically, so adding a command never touches this file.

Errors the user can fix (bad arguments, unreadable files) are raised as :class:`CommandError` and printed as
one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import app.commands

#: ``--cpu-bf16``'s help, shared by the commands that run the network (``VGGT.cpu_bf16``)
CPU_BF16_HELP = (
    "run the network under bfloat16 autocast on the CPU (~1.2x faster with native bf16, e.g. AVX512-BF16; "
    "results within ~0.2 %% of float32)"
)
#: ``--registration``'s choices and help, shared by the commands that run the network (``VGGT.registration``;
#: models.vggt.REGISTRATION_MODES, not imported here so that parsing arguments does not load torch)
REGISTRATION_CHOICES = ("all", "pair")
REGISTRATION_HELP = (
    "with more views than --max-anchors, what each other view attends to when it is registered: 'all' "
    "anchors (default) or a 'pair' of them, view 0 and its nearest other anchor (10-20 %% faster at 16-64 "
    "views, slightly less accurate cameras; docs/MODEL.md)"
)
#: help text of ``--refine`` (reconstruct, batch)
REFINE_HELP = (
    "refine the predicted cameras after the forward pass: SIFT matches, the predicted depth, PnP and "
    "bundle adjustment (slower: +0.5 s at 4 views, +8 s at 32 on one core; far better cameras from the "
    "built-in model; given --intrinsics stay fixed; with --poses the cameras stay and each depth map is "
    "fitted to SIFT matches triangulated with them)"
)


class CommandError(Exception):
    """A user-facing error: printed as ``onepass: error: <message>``, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onepass", description="onepass: photos to a 3D Gaussian scene in one forward pass."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(app.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"app.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from models.runtime import tune_malloc

    parser = build_parser()
    args = parser.parse_args(argv)
    tune_malloc()  # every command moves big tensors: keep them in malloc's heap (see models.runtime)
    try:
        return int(args.func(args) or 0)
    except CommandError as e:
        print(f"onepass: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("onepass: interrupted", file=sys.stderr)
        return 130

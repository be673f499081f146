"""Training checkpoints: model, optimizer, scheduler, RNG state and progress, written atomically.

A checkpoint is one ``torch.save`` dict (loaded back with ``weights_only=True``, so a file cannot run code)::

    {"format": "onepass-train", "version": 1, "preset": str, "model_fingerprint": {key: shape},
     "model": state_dict, "optimizer": ..., "scheduler": ..., "step": int, "elapsed_s": float,
     "train_config": dict, "rng": {"torch": ByteTensor, "python": tuple}, "history": {...}}

It is written to a temporary file beside the target and renamed over it, so an interrupted write never
leaves a truncated ``last.pt``. :func:`load_checkpoint` refuses a file that is unreadable, of another format,
or made for a different network, with a message naming the file and the mismatch.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "model_fingerprint",
    "save_checkpoint",
    "load_checkpoint",
    "check_compatible",
    "capture_rng",
    "restore_rng",
]

CHECKPOINT_FORMAT = "onepass-train"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (unreadable, wrong format, other network)."""


def model_fingerprint(model: nn.Module) -> dict[str, list[int]]:
    """``{state_dict key: shape}``: two models can exchange weights iff their fingerprints are equal."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def capture_rng() -> dict[str, Any]:
    """The global RNG states that training touches (torch CPU and Python's ``random``)."""
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format tags) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`CheckpointError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an onepass training checkpoint")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {data.get('version')}, "
            f"this code reads version {CHECKPOINT_VERSION}"
        )
    for key in ("preset", "model", "optimizer", "scheduler", "step", "model_fingerprint", "rng"):
        if key not in data:
            raise CheckpointError(f"checkpoint {path} lacks the field {key!r}")
    return data


def check_compatible(data: dict[str, Any], path: str | Path, preset: str, model: nn.Module) -> None:
    """Raise :class:`CheckpointError` unless ``data`` was made for ``preset`` and ``model``'s layout."""
    if data["preset"] != preset:
        raise CheckpointError(f"checkpoint {path} was trained with preset {data['preset']!r}, not {preset!r}")
    mine, theirs = model_fingerprint(model), data["model_fingerprint"]
    if mine != theirs:
        missing = sorted(set(mine) - set(theirs))[:3]
        extra = sorted(set(theirs) - set(mine))[:3]
        shape = [k for k in mine if k in theirs and mine[k] != theirs[k]][:3]
        raise CheckpointError(
            f"checkpoint {path} does not fit the {preset!r} network "
            f"(missing {missing}, unexpected {extra}, shape differs {shape})"
        )

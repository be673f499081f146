"""Checkpoint files: lazy reading, strict matching with a readable report, assignment without copies.

Reading never materialises a second copy of the weights:

* ``.pt`` / ``.pth`` / ``.bin`` (``torch.save`` zip format) are opened with ``torch.load(mmap=True,
  weights_only=True)``: tensors stay backed by the file until touched.
* ``.safetensors`` are read tensor by tensor.

The network is built on the ``meta`` device (no memory) and the tensors are *assigned* as its parameters
(``load_state_dict(strict=True, assign=True)``), so peak memory is about one copy of the weights. Before that,
keys and shapes are compared and any difference raises :class:`CheckpointMismatchError` listing the missing,
unexpected and shape-mismatched keys.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

_LIST_LIMIT = 12  # keys shown per category in error messages


class CheckpointMismatchError(ValueError):
    """The checkpoint's keys or shapes differ from the architecture's (wrong preset or wrong file)."""

    def __init__(
        self, path: str, missing: list[str], unexpected: list[str], mismatched: list[tuple[str, tuple, tuple]]
    ) -> None:
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"{path}: checkpoint does not match the architecture (strict load)"]
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            (
                "shape mismatches (key: checkpoint vs model)",
                [f"{k}: {list(a)} vs {list(b)}" for k, a, b in mismatched],
            ),
        ):
            if items:
                groups = Counter(k.split(".", 1)[0] for k in items)
                by_module = ", ".join(f"{g} {n}" for g, n in groups.most_common())
                shown = ", ".join(items[:_LIST_LIMIT])
                more = f" … and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
                lines.append(f"  {len(items)} {title} (by module: {by_module}): {shown}{more}")
        super().__init__("\n".join(lines))


@dataclass
class LoadReport:
    """What a load did: file, tensor/parameter counts, and parameters loaded but never used at inference."""

    path: str
    format: str
    tensors: int
    parameters: int
    bytes: int
    unused_parameters: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _unwrap(obj: object, path: str) -> dict[str, Tensor]:
    if isinstance(obj, dict) and len(obj) in (1, 2) and any(k in obj for k in ("model", "state_dict")):
        obj = obj.get("model", obj.get("state_dict"))
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    ):
        raise ValueError(f"{path}: not a state_dict (expected a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, Tensor], str, dict[str, str]]:
    """Open a checkpoint lazily → ``(state_dict, format, metadata)``.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: the file is not a readable checkpoint (names the path and the reason).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    if p.suffix == ".safetensors":
        try:
            with safe_open(str(p), framework="pt", device="cpu") as f:
                meta = dict(f.metadata() or {})
                return {k: f.get_tensor(k) for k in f.keys()}, "safetensors", meta
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"{p}: not a readable safetensors file ({e})") from e
    if not zipfile.is_zipfile(p):
        raise ValueError(f"{p}: not a torch.save zip checkpoint or a .safetensors file")
    try:
        obj = torch.load(p, map_location="cpu", mmap=True, weights_only=True)
    except Exception as e:
        raise ValueError(f"{p}: cannot be loaded as a weights-only torch checkpoint ({e})") from e
    return _unwrap(obj, str(p)), "torch", {}


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """A checkpoint's string metadata without reading its tensors (``{}`` for a ``torch.save`` file).

    Raises like :func:`read_state_dict`: ``FileNotFoundError`` or ``ValueError`` naming the path.
    """
    p = Path(path)
    if p.suffix != ".safetensors":
        read_state_dict(p)  # same checks; torch files are memory-mapped, nothing is materialised
        return {}
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise ValueError(f"{p}: not a readable safetensors file ({e})") from e


def compare_state_dict(
    model: nn.Module, state_dict: dict[str, Tensor]
) -> tuple[list[str], list[str], list[tuple[str, tuple, tuple]]]:
    """Missing keys, unexpected keys and ``(key, checkpoint shape, model shape)`` mismatches."""
    expected = model.state_dict(keep_vars=True)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(v.shape))
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, mismatched


def assign_weights(
    model: nn.Module,
    state_dict: dict[str, Tensor],
    *,
    path: str = "<state_dict>",
    dtype: torch.dtype = torch.float32,
) -> None:
    """Strictly check, then assign ``state_dict`` as the model's parameters (no copy when dtypes agree).

    ``model`` may live on the ``meta`` device. Floating tensors are cast to ``dtype`` (in place in the
    mapping, one at a time).
    """
    missing, unexpected, mismatched = compare_state_dict(model, state_dict)
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(path, missing, unexpected, mismatched)
    for k, v in state_dict.items():  # cast one tensor at a time, releasing the original: no second copy
        if v.is_floating_point() and v.dtype != dtype:
            state_dict[k] = v.to(dtype)
    model.load_state_dict(state_dict, strict=True, assign=True)


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32
) -> LoadReport:
    """Read ``path`` lazily and assign it strictly into ``model`` (typically built on ``meta``)."""
    sd, fmt, meta = read_state_dict(path)
    assign_weights(model, sd, path=str(path), dtype=dtype)
    unused = {}
    for name in ("track_head",):
        sub = getattr(model, name, None)
        if isinstance(sub, nn.Module):
            unused[name] = sum(p.numel() for p in sub.parameters())
    return LoadReport(
        path=str(path),
        format=fmt,
        tensors=len(sd),
        parameters=sum(v.numel() for v in sd.values()),
        bytes=Path(path).stat().st_size,
        unused_parameters=unused,
        metadata=meta,
    )


def save_weights(model: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write the model's state_dict as ``.safetensors`` (contiguous CPU copies), with string metadata."""
    p = Path(path)
    if p.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {p.name}")
    p.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = p.with_name(f".{p.name}.tmp")
    save_file(sd, str(tmp), metadata=meta)
    os.replace(tmp, p)
    return p

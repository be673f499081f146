"""Building the network for a preset: random initialisation or a checkpoint, and device choice.

``load_model("vggt-1b", weights="model.pt")`` builds VGGT-1B on the ``meta`` device and assigns the
file's tensors (strict). ``load_model("tiny")`` loads ``models/weights/onepass-tiny.safetensors`` when that
file exists (produced by the training issue), otherwise seeded random weights; ``model.weights_info`` says
which. Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from models.aggregator import Aggregator
from models.checkpoint import load_checkpoint
from models.config import ModelConfig, get_config
from models.layers.patch_embed import DinoPatchEmbed
from models.vggt import VGGT

#: Where the trained ``tiny`` weights live once the training issue has produced them.
DEFAULT_TINY_WEIGHTS = Path(__file__).resolve().parent / "weights" / "onepass-tiny.safetensors"

RANDOM_SEED = 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``ValueError`` for unknown or unavailable devices."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here (use 'cpu' or 'auto')")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def init_weights(model: VGGT) -> None:
    """VGGT-style initialisation: truncated-normal (std 0.02) linears, tiny special tokens, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, Aggregator):
            nn.init.normal_(m.camera_token, std=1e-6)
            nn.init.normal_(m.register_token, std=1e-6)
        if isinstance(m, DinoPatchEmbed):
            nn.init.normal_(m.cls_token, std=1e-6)
            nn.init.normal_(m.register_tokens, std=1e-6)
            nn.init.trunc_normal_(m.pos_embed, std=0.02)


def build_model(cfg: ModelConfig | str, *, seed: int = RANDOM_SEED) -> VGGT:
    """A randomly initialised network, reproducible for a given ``seed`` (global RNG left untouched)."""
    cfg = get_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VGGT(cfg)
        init_weights(model)
    model.weights_info = {"source": "random", "seed": seed, "preset": cfg.name}
    return model


def load_model(
    preset: str | ModelConfig = "tiny",
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> VGGT:
    """The raw network for a preset, on ``device``, in eval mode.

    Args:
        preset: ``"tiny"`` or ``"vggt-1b"`` (or a :class:`ModelConfig`).
        weights: a ``.pt`` / ``.safetensors`` file. ``None``: the built-in ``tiny`` weights when present,
            else seeded random weights (``tiny`` or a custom config only; ``vggt-1b`` needs a file).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...

    Returns:
        :class:`~models.vggt.VGGT` with ``weights_info`` (source, path, load report).

    Raises:
        ValueError: unknown preset/device, or ``vggt-1b`` without weights.
        FileNotFoundError: ``weights`` does not exist.
        models.checkpoint.CheckpointMismatchError: the file does not fit the preset's architecture.
    """
    cfg = get_config(preset)
    dev = resolve_device(device)
    if weights is None and cfg.name == "tiny" and DEFAULT_TINY_WEIGHTS.is_file():
        weights = DEFAULT_TINY_WEIGHTS
    if weights is None:
        if cfg.name == "vggt-1b":
            raise ValueError(
                "weights: preset 'vggt-1b' needs a local model.pt or model.safetensors "
                "(nothing is downloaded)"
            )
        model = build_model(cfg)
    else:
        with torch.device("meta"):
            model = VGGT(cfg)
        report = load_checkpoint(model, weights)
        model.weights_info = {"source": "file", "path": str(weights), "preset": cfg.name, **report.to_dict()}
    return model.to(dev).eval()

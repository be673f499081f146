"""Which network an evaluation scores: built-in, random, exported or training-checkpoint weights."""

from __future__ import annotations

from pathlib import Path

from models.vggt import VGGT

__all__ = ["load_eval_model", "RANDOM"]

#: ``--weights random``: the preset's seeded random initialisation (the "untrained" baseline).
RANDOM = "random"


def load_eval_model(preset: str, weights: str | None, device: str = "cpu") -> tuple[VGGT, dict]:
    """Build the network to evaluate and describe it.

    Args:
        preset: network preset name.
        weights: ``None`` (the preset's built-in weights: ``models/weights/onepass-tiny.safetensors`` when
            present, else random), ``"random"``, a ``.safetensors`` / ``.pt`` weights file, or a training
            checkpoint (``runs/NAME/last.pt``, format ``onepass-train``).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Returns:
        ``(model in eval mode, info dict)`` with ``info["source"]`` and, for checkpoints, the training step.
    """
    from models.build import build_model, load_model, resolve_device
    from models.training.checkpoint import CheckpointError, check_compatible, load_checkpoint

    data = None
    if weights not in (None, RANDOM) and Path(weights).suffix == ".pt" and Path(weights).is_file():
        try:
            data = load_checkpoint(weights)
        except CheckpointError:
            data = None  # a plain state_dict (e.g. VGGT-1B's model.pt): load_model reads it below
    if weights == RANDOM:
        model = build_model(preset)
        info = {"source": "random", "preset": preset}
    elif data is not None:
        model = build_model(preset)
        check_compatible(data, weights, preset, model)
        model.load_state_dict(data["model"])
        info = {"source": "training-checkpoint", "path": str(weights), "step": int(data["step"])}
        info["train_hours"] = round(float(data.get("elapsed_s", 0.0)) / 3600, 3)
    else:
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"weights file {weights} does not exist")
        model = load_model(preset, weights, device="cpu")
        info = dict(getattr(model, "weights_info", {"source": "file", "path": str(weights)}))
    return model.to(resolve_device(device)).eval(), info

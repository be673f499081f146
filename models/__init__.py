"""onepass models: the VGGT-style network, ZPressor, checkpoints, procedural data and training.

Imports ``renderer`` (conventions, Gaussians) but never ``app``. Shape letters follow VGGT: ``B`` batch,
``S`` input views, ``P`` tokens per view, ``C`` channels, ``H×W`` pixels, ``h×w`` patches; ZPressor adds
``N`` anchors.

Public API (imported lazily, so ``import models.data`` stays light):

* :func:`load_model` ``(preset, weights=None, device="auto") -> VGGT`` — the raw network; called on images
  ``[B, S, 3, H, W]`` in [0, 1] it returns VGGT.forward's keys.
* :class:`Reconstructor` ``(preset="tiny", weights=None, device="auto")`` with ``.reconstruct(images,
  intrinsics=None, poses=None, max_anchors=8, resolution=None)`` and
  ``.reconstruct_batch(list[ReconstructionInput])``.
* :class:`Reconstruction`, :class:`ReconstructionInput`, :class:`NonFiniteOutputError`,
  :class:`CheckpointMismatchError`, :data:`PRESETS`, :class:`ModelConfig`, :func:`load_image`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "load_model": "models.build",
    "build_model": "models.build",
    "Reconstructor": "models.reconstruct",
    "Reconstruction": "models.reconstruct",
    "ReconstructionInput": "models.reconstruct",
    "NonFiniteOutputError": "models.reconstruct",
    "CheckpointMismatchError": "models.checkpoint",
    "ModelConfig": "models.config",
    "PRESETS": "models.config",
    "VGGT": "models.vggt",
    "load_image": "models.preprocess",
}

__all__ = [
    "PRESETS",
    "VGGT",
    "CheckpointMismatchError",
    "ModelConfig",
    "NonFiniteOutputError",
    "Reconstruction",
    "ReconstructionInput",
    "Reconstructor",
    "build_model",
    "load_image",
    "load_model",
]

if TYPE_CHECKING:
    from models.build import build_model, load_model
    from models.checkpoint import CheckpointMismatchError
    from models.config import PRESETS, ModelConfig
    from models.preprocess import load_image
    from models.reconstruct import NonFiniteOutputError, Reconstruction, ReconstructionInput, Reconstructor
    from models.vggt import VGGT


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")

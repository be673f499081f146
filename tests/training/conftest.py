"""Fixtures for training tests: a micro network of the real model code and a micro curriculum."""

from __future__ import annotations

import pytest

from models.config import (
    TINY,
    CameraHeadConfig,
    DPTConfig,
    GaussianHeadConfig,
    ModelConfig,
    PatchEmbedConfig,
    TrunkConfig,
    ZPressorConfig,
)
from models.training.config import TrainConfig
from models.training.curriculum import Stage
from models.training.step import LossWeights

_DPT = DPTConfig(features=8, out_channels=(8, 8, 8, 8), frames_chunk=8)

#: The tiny preset's code paths at a fraction of its width and depth (~270k parameters).
MICRO = ModelConfig(
    name="tiny",  # checkpoints carry the preset name; the micro net stands in for "tiny" in tests
    patch_size=14,
    embed_dim=32,
    input_width=56,
    patch_embed=PatchEmbedConfig(img_size=56, depth=1, num_heads=2, num_registers=2),
    trunk=TrunkConfig(depth=4, num_heads=2, num_registers=2, out_layers=(0, 1, 2, 3)),
    camera_head=CameraHeadConfig(trunk_depth=1, num_heads=2, iterations=2),
    depth_head=_DPT,
    point_head=_DPT,
    track_head=False,
    gaussian_head=GaussianHeadConfig(dpt=_DPT, sh_degree=0),
    zpressor=ZPressorConfig(layers=1, num_heads=1),
)
assert MICRO.gaussian_head is not None and TINY.gaussian_head is not None


@pytest.fixture
def micro_model_config() -> ModelConfig:
    return MICRO


def micro_train_config(render: float = 1.0, **changes) -> TrainConfig:
    """Two stages (plain, then with ZPressor steps) on 28-42 px images, no time-based checkpoints."""
    stages = (
        Stage(start=0, views=(2, 2), size=28, batch=2, targets=1),
        Stage(start=2, views=(2, 3), size=42, batch=1, targets=1, zpressor_prob=0.5, zpressor_views=(4, 4),
              zpressor_anchors=2),
    )  # fmt: skip
    base = {
        "warmup_steps": 2, "total_steps": 100, "lr": 1e-3, "checkpoint_every_s": 1e9, "stages": stages,
        "weights": LossWeights(render=render),
    }  # fmt: skip
    base.update(changes)
    return TrainConfig(**base)

"""Fixtures for the model tests: small networks with seeded random weights and a procedural scene."""

from __future__ import annotations

import pytest
import torch

from models.build import build_model
from models.config import TINY, CameraHeadConfig, DPTConfig, GaussianHeadConfig, PatchEmbedConfig, TrunkConfig
from models.reconstruct import Reconstructor

#: An even smaller configuration of the same code for unit tests (fast on one CPU thread).
_MICRO_DPT = DPTConfig(features=16, out_channels=(16, 16, 32, 32), frames_chunk=3)
MICRO = TINY.with_(
    name="micro",
    embed_dim=64,
    input_width=112,
    patch_embed=PatchEmbedConfig(img_size=112, depth=1, num_heads=1, num_registers=2),
    trunk=TrunkConfig(depth=4, num_heads=1, num_registers=2, out_layers=(0, 1, 2, 3)),
    camera_head=CameraHeadConfig(trunk_depth=1, num_heads=2, iterations=2),
    depth_head=_MICRO_DPT,
    point_head=_MICRO_DPT,
    gaussian_head=GaussianHeadConfig(dpt=_MICRO_DPT, sh_degree=1),
)


@pytest.fixture(scope="module")
def micro_model():
    return build_model(MICRO, seed=1).eval()


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(TINY, seed=0).eval()


@pytest.fixture(scope="module")
def tiny_reconstructor(tiny_model):
    return Reconstructor(model=tiny_model)


@pytest.fixture(scope="module")
def scene():
    from models.data.procedural import make_scene

    return make_scene(3, views=4, width=224, height=224, kind="objects")


def images_uint8(scene) -> list:
    return [(im * 255 + 0.5).clip(0, 255).astype("uint8") for im in scene.images]


def rand_images(n: int, hw=(112, 112), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, n, 3, *hw, generator=g)

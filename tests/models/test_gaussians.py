"""Pixel-aligned Gaussians: training-free path and Gaussian-head activations against their definitions."""

from __future__ import annotations

import pytest
import torch

from models.gaussians import GaussianOptions, pixel_gaussians, quat_multiply
from models.heads.gaussian_head import gaussian_channels
from renderer.conventions import look_at, quat_to_rotmat, rotmat_to_quat, unproject_depth
from renderer.types import SH_C0


def _setup(A=2, H=6, W=8):
    g = torch.Generator().manual_seed(0)
    depth = 1 + torch.rand(A, H, W, generator=g, dtype=torch.float64) * 3
    conf = 1 + torch.rand(A, H, W, generator=g, dtype=torch.float64) * 5
    colors = torch.rand(A, H, W, 3, generator=g, dtype=torch.float64)
    K = torch.tensor([[10.0, 0, W / 2], [0, 12.0, H / 2], [0, 0, 1]], dtype=torch.float64).expand(A, 3, 3)
    eyes = torch.tensor([[0.0, 0, 0], [1.0, -0.5, 0.3]], dtype=torch.float64)[:A]
    w2c = torch.stack([look_at(e, torch.tensor([0.2, 0.1, 5.0], dtype=torch.float64)) for e in eyes])
    valid = torch.ones(A, H, W, dtype=torch.bool)
    valid[-1, :, :2] = False
    return depth, conf, colors, K, w2c, valid


def test_training_free_gaussians_follow_their_definition():
    depth, conf, colors, K, w2c, valid = _setup()
    g = pixel_gaussians(depth, conf, colors, K, w2c, valid, options=GaussianOptions(drop_fraction=0.0))
    assert len(g) == int(valid.sum())
    pts = unproject_depth(depth, K, w2c)[valid]
    torch.testing.assert_close(g.means.double(), pts, rtol=1e-5, atol=1e-5)
    footprint = depth / torch.sqrt(K[:, 0, 0] * K[:, 1, 1])[:, None, None]
    torch.testing.assert_close(g.scales[:, 0].double(), footprint[valid], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g.opacities.double(), (1 - 1 / conf)[valid], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g.rgb.double(), colors[valid], rtol=1e-5, atol=1e-6)
    assert g.sh.shape[1:] == (1, 3)


def test_low_confidence_pixels_are_dropped():
    depth, conf, colors, K, w2c, valid = _setup()
    g = pixel_gaussians(depth, conf, colors, K, w2c, valid, options=GaussianOptions(drop_fraction=0.5))
    kept = conf[valid]
    assert len(g) == int((kept > kept.kthvalue(int(0.5 * kept.numel())).values).sum())
    assert g.opacities.min() >= (1 - 1 / kept.median()) - 1e-6


def test_by_default_only_the_training_free_path_drops_low_confidence_pixels():
    """A Gaussian head's opacity is learnt on every pixel (training drops none), so by default inference
    keeps them all too; the training-free path, whose opacity is a heuristic, drops the least confident 20 %
    of its pixels."""
    from models.gaussians import TRAINING_FREE_DROP

    depth, conf, colors, K, w2c, valid = _setup()
    free = pixel_gaussians(depth, conf, colors, K, w2c, valid)
    kept = conf[valid]
    threshold = kept.kthvalue(int(TRAINING_FREE_DROP * kept.numel())).values
    assert TRAINING_FREE_DROP == 0.2 and len(free) == int((kept > threshold).sum()) < int(valid.sum())
    raw = torch.zeros(*depth.shape, gaussian_channels(0))  # opacity 0.5 everywhere
    assert len(pixel_gaussians(depth, conf, colors, K, w2c, valid, raw)) == int(valid.sum())
    dropped = pixel_gaussians(depth, conf, colors, K, w2c, valid, raw, options=GaussianOptions(0.2))
    assert len(dropped) == len(free)  # an explicit fraction applies to either path


def test_head_with_zero_output_sits_on_the_depth_with_camera_aligned_rotation():
    depth, conf, colors, K, w2c, valid = _setup()
    raw = torch.zeros(*depth.shape, gaussian_channels(1))
    g = pixel_gaussians(depth, conf, colors, K, w2c, valid, raw, sh_degree=1, options=GaussianOptions(0.0))
    torch.testing.assert_close(g.means.double(), unproject_depth(depth, K, w2c)[valid], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g.opacities, torch.full_like(g.opacities, 0.5))
    R_c2w = w2c[:, :3, :3].transpose(1, 2)
    expected = R_c2w[:, None, None].expand(*depth.shape, 3, 3)[valid]
    torch.testing.assert_close(quat_to_rotmat(g.quats.double()), expected, rtol=1e-5, atol=1e-5)
    assert g.sh.shape[1:] == (4, 3)
    torch.testing.assert_close(g.sh[:, 0].double(), ((colors - 0.5) / SH_C0)[valid], rtol=1e-5, atol=1e-5)
    assert torch.all(g.sh[:, 1:] == 0)


def test_head_depth_offset_is_bounded_and_differentiable():
    depth, conf, colors, K, w2c, valid = _setup(A=1)
    raw = torch.zeros(*depth.shape, gaussian_channels(0), requires_grad=True)
    with torch.no_grad():
        raw[..., 0] = 100.0  # saturates: depth · e^0.5 at most
    g = pixel_gaussians(depth, conf, colors, K, w2c, valid, raw, options=GaussianOptions(0.0))
    z = (g.means.double() - w2c[0, :3, :3].T @ -w2c[0, :3, 3]).norm(dim=-1)
    assert torch.all(z <= depth[valid] * 1.65 * 1.2)
    g.means.sum().backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()


def test_quat_multiply_composes_rotations():
    a = rotmat_to_quat(look_at(torch.tensor([0.0, 1, 2]), torch.tensor([3.0, 0, 0]))[:3, :3])
    b = rotmat_to_quat(look_at(torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 2, 5]))[:3, :3])
    torch.testing.assert_close(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b))


def test_raw_channel_count_is_checked():
    depth, conf, colors, K, w2c, valid = _setup()
    with pytest.raises(ValueError, match="raw must have 12 channels for sh_degree=0, got 5"):
        pixel_gaussians(depth, conf, colors, K, w2c, valid, torch.zeros(*depth.shape, 5))
    with pytest.raises(ValueError, match="drop_fraction"):
        GaussianOptions(drop_fraction=1.0)


@pytest.mark.parametrize("with_raw", [False, True])
def test_blocked_computation_equals_one_pass(monkeypatch, with_raw):
    """Without gradients, large inputs are computed in blocks of kept pixels: the result must be the very
    same tensors as one pass over all of them (block size forced down to 7 pixels here)."""
    import models.gaussians as mg

    depth, conf, colors, K, w2c, valid = _setup()
    depth[0, 1, 2] = float("nan")  # dropped before the blocks
    raw = None
    if with_raw:
        raw = torch.randn(*depth.shape, gaussian_channels(1), generator=torch.Generator().manual_seed(1))
    kwargs = {"sh_degree": 1 if with_raw else 0, "options": GaussianOptions(drop_fraction=0.25)}
    with torch.no_grad():
        whole = pixel_gaussians(depth, conf, colors, K, w2c, valid, raw, **kwargs)
        monkeypatch.setattr(mg, "_BLOCK_PIXELS", 7)
        blocked = pixel_gaussians(depth, conf, colors, K, w2c, valid, raw, **kwargs)
    assert len(whole) > 7 * 3
    for name in ("means", "quats", "scales", "opacities", "sh"):
        assert torch.equal(getattr(whole, name), getattr(blocked, name)), name

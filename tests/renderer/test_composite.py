"""Compositing stage: the twin, a full Jacobian check, and gsplat's three constants one by one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer import _torch_ref
from renderer.cpu.binning import bin_gaussians
from renderer.cpu.composite import CompositeFn
from renderer.options import RenderOptions
from tests.renderer.scenes import pull


def _splats(means2d, sigma, opacities, colors, width, height, n_images=1):
    """Isotropic 2D Gaussians (std ``sigma`` px) in depth order of their index, binned like the renderer."""
    n = len(opacities)
    means2d = torch.as_tensor(means2d, dtype=torch.float64).reshape(n, 2)
    s2 = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1).expand(n) ** 2
    conics = torch.stack([1 / s2, torch.zeros(n, dtype=torch.float64), 1 / s2], -1)
    radii = torch.ceil(3.33 * s2.sqrt())[:, None].expand(n, 2).to(torch.int32).contiguous()
    opts = RenderOptions(width, height)
    tw, th = opts.tiles_wh
    bins = bin_gaussians(radii.numpy(), means2d.numpy(), np.arange(1.0, n + 1), n_images, 16, tw, th)
    opac = torch.as_tensor(opacities, dtype=torch.float64)
    cols = torch.as_tensor(colors, dtype=torch.float64).reshape(n, -1)
    return means2d, conics, cols, opac, bins, opts


def test_alpha_is_capped_at_0999():
    args = _splats([[8.5, 8.5]], 3.0, [1.0], [[1.0, 0.5]], 16, 16)
    color, alpha = CompositeFn.apply(*args[:4], None, args[4], 16, 16)
    assert alpha[0, 8, 8, 0].item() == 0.999  # centre: min(0.999, 1 · e⁰)
    assert alpha[0, 8, 9, 0].item() == pytest.approx(math.exp(-0.5 / 9), abs=1e-12)  # 1 px off: not capped
    assert color[0, 8, 8].tolist() == pytest.approx([0.999, 0.4995], abs=1e-12)


def test_stops_before_transmittance_reaches_1e4():
    # two opaque splats at one pixel: after the first T = 1e-3; the second would take it to 1e-6 → stop
    args = _splats([[4.5, 4.5], [4.5, 4.5]], 2.0, [1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]], 9, 9)
    color, alpha = CompositeFn.apply(*args[:4], None, args[4], 9, 9)
    assert alpha[0, 4, 4, 0].item() == pytest.approx(0.999, abs=1e-12)
    assert color[0, 4, 4].tolist() == pytest.approx([0.999, 0.0], abs=1e-12)
    # two half-transparent ones: T = 0.25, both contribute
    args = _splats([[4.5, 4.5], [4.5, 4.5]], 2.0, [0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]], 9, 9)
    color, alpha = CompositeFn.apply(*args[:4], None, args[4], 9, 9)
    assert color[0, 4, 4].tolist() == pytest.approx([0.5, 0.25], abs=1e-12)


def test_alphas_below_1_over_255_are_skipped():
    # opacity 0.01: alpha >= 1/255 only where exp(-σ) >= 0.392, i.e. within 1.367 σ of the centre
    args = _splats([[10.5, 10.5]], 1.0, [0.01], [[1.0]], 21, 21)
    _, alpha = CompositeFn.apply(*args[:4], None, args[4], 21, 21)
    a = alpha[0, 10, :, 0]
    assert a[10].item() == pytest.approx(0.01, abs=1e-12)
    assert a[9].item() == pytest.approx(0.01 * math.exp(-0.5), abs=1e-12)  # 1 σ: 0.0061 ≥ 1/255
    assert a[8].item() == 0.0  # 2 σ: 0.00135 < 1/255, skipped, although the Gaussian covers this tile


@pytest.mark.parametrize("width,height,n_images", [(40, 30, 2), (16, 16, 1), (7, 21, 3)])
def test_forward_and_backward_match_twin(width, height, n_images):
    g = torch.Generator().manual_seed(width)
    n = 40
    means2d = torch.rand(n_images * n, 2, generator=g, dtype=torch.float64) * torch.tensor([width, height])
    L = torch.randn(n_images * n, 2, 2, generator=g, dtype=torch.float64) * 2
    cov = L @ L.transpose(-1, -2) + 0.3 * torch.eye(2, dtype=torch.float64)
    inv = torch.linalg.inv(cov)
    conics = torch.stack([inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]], -1)
    opac = 0.1 + 0.9 * torch.rand(n_images * n, generator=g, dtype=torch.float64)
    cols = torch.rand(n_images * n, 4, generator=g, dtype=torch.float64)
    bg = torch.rand(n_images, 4, generator=g, dtype=torch.float64)
    radii = torch.ceil(3.33 * torch.stack([cov[:, 0, 0], cov[:, 1, 1]], -1).sqrt()).to(torch.int32)
    depths = torch.rand(n_images * n, generator=g, dtype=torch.float64) + 1
    opts = RenderOptions(width, height)
    tw, th = opts.tiles_wh
    bins = bin_gaussians(radii.numpy(), means2d.numpy(), depths.numpy(), n_images, 16, tw, th)
    params = [t.requires_grad_() for t in (means2d, conics, cols, opac, bg)]
    fast = CompositeFn.apply(*params, bins, width, height)
    slow = _torch_ref._composite(*params, torch.from_numpy(bins.offsets), torch.from_numpy(bins.flatten_ids),
                                 n_images, opts)  # fmt: skip
    for f, s in zip(fast, slow, strict=True):
        torch.testing.assert_close(f, s, rtol=1e-12, atol=1e-12)
    for name, f, s in zip(["means2d", "conics", "colors", "opacities", "bg"], pull(list(fast), params),
                          pull(list(slow), params), strict=True):  # fmt: skip
        torch.testing.assert_close(f, s, rtol=1e-9, atol=1e-10, msg=lambda m, n=name: f"{n}: {m}")


def test_full_jacobian_gradcheck():
    args = _splats([[3.0, 2.5], [4.2, 3.9], [2.4, 4.1]], [1.5, 2.0, 1.2], [0.6, 0.8, 0.4],
                   [[0.2, 0.9], [0.7, 0.1], [0.5, 0.5]], 7, 6)  # fmt: skip
    means2d, conics, cols, opac, bins, _ = args
    conics = conics + torch.tensor([0.0, 0.05, 0.0], dtype=torch.float64)  # not axis-aligned
    bg = torch.tensor([[0.3, 0.8]], dtype=torch.float64)
    params = [t.clone().requires_grad_() for t in (means2d, conics, cols, opac, bg)]
    assert torch.autograd.gradcheck(
        lambda *p: CompositeFn.apply(*p, bins, 7, 6), params, eps=1e-6, atol=1e-6, rtol=1e-5
    )

"""SH stage: gsplat's own PyTorch reference, our twin, analytic gradients (coefficients and means)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from renderer import _torch_ref
from renderer.cpu.sh import SHFn, camera_positions

HAS_GSPLAT = importlib.util.find_spec("gsplat") is not None


def _inputs(seed: int, n: int = 50, C: int = 3, K: int = 16, per_view: bool = False):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    campos = torch.randn(2, C, 3, generator=g, dtype=torch.float64) * 3
    coeffs = torch.randn(2, C if per_view else 1, n, K, 3, generator=g, dtype=torch.float64) * 0.5
    radii = torch.ones(2, C, n, 2, dtype=torch.int32)
    radii[0, 1, :5] = 0  # culled: colour 0, no gradient
    return means, campos, coeffs, radii


@pytest.mark.skipif(not HAS_GSPLAT, reason="gsplat is not installed (pip install gsplat)")
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_matches_gsplat_torch_reference(degree):
    from gsplat.cuda._torch_impl import _spherical_harmonics

    means, campos, coeffs, radii = _inputs(degree)
    ours = SHFn.apply(degree, means, campos, coeffs, radii)
    dirs = means[:, None] - campos[:, :, None]  # [2, C, N, 3]
    ref = torch.clamp_min(_spherical_harmonics(degree, dirs, coeffs.expand(2, 3, *coeffs.shape[2:])) + 0.5, 0)
    visible = (radii > 0).all(-1)
    torch.testing.assert_close(ours[visible], ref[visible], rtol=1e-5, atol=1e-5)
    assert (ours[~visible] == 0).all()


@pytest.mark.parametrize("degree,K,per_view", [(1, 4, False), (2, 16, True), (3, 16, False)])
def test_forward_and_backward_match_twin(degree, K, per_view):
    means, campos, coeffs, radii = _inputs(10 + degree, K=K, per_view=per_view)
    means.requires_grad_()
    coeffs.requires_grad_()
    ours = SHFn.apply(degree, means, campos, coeffs, radii)
    dirs = means[:, None] - campos[:, :, None]
    ref = torch.clamp_min(
        _torch_ref._spherical_harmonics(degree, dirs, coeffs.expand(2, 3, 50, K, 3)) + 0.5, 0
    )
    visible = (radii > 0).all(-1)[..., None]
    torch.testing.assert_close(ours * visible, ref * visible, rtol=1e-12, atol=1e-12)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(ours.shape, generator=g, dtype=torch.float64) * visible
    fast = torch.autograd.grad((ours * v).sum(), [means, coeffs])
    slow = torch.autograd.grad((ref * v).sum(), [means, coeffs])
    for f, r in zip(fast, slow, strict=True):
        torch.testing.assert_close(f, r, rtol=1e-10, atol=1e-10)


def test_clamped_channels_pass_no_gradient():
    means, campos, coeffs, radii = _inputs(20, n=4, C=2, K=1)
    coeffs = torch.full_like(coeffs, -5.0).requires_grad_()  # DC far below -0.5/C0: colour clamps at 0
    out = SHFn.apply(0, means, campos, coeffs, radii)
    assert (out == 0).all()
    (grad,) = torch.autograd.grad(out.sum(), [coeffs])
    assert (grad == 0).all()


def test_gradcheck():
    means, campos, coeffs, radii = _inputs(30, n=3, C=2, K=16)
    means.requires_grad_()
    coeffs.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda m, c: SHFn.apply(3, m, campos, c, radii), [means, coeffs], eps=1e-6, atol=1e-7, rtol=1e-6
    )


def test_camera_positions_invert_viewmats():
    from renderer.conventions import invert_rigid, look_at

    w2c = look_at(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(camera_positions(w2c[None])[0], invert_rigid(w2c)[:3, 3])

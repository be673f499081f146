"""Projection stage: gsplat's own PyTorch reference, our twin, analytic gradients, culling rules."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from renderer import _torch_ref
from renderer.cpu.projection import ProjectFn
from renderer.options import RenderOptions
from tests.renderer.scenes import flatten_batch, make_scene, pull

HAS_GSPLAT = importlib.util.find_spec("gsplat") is not None


@pytest.mark.skipif(not HAS_GSPLAT, reason="gsplat is not installed (pip install gsplat)")
@pytest.mark.parametrize("batch", [(), (2,), (1, 2)])
def test_matches_gsplat_torch_reference(batch):
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    s = make_scene(seed=1, n=200, cameras=3, batch=batch, width=48, height=36)
    opts = RenderOptions(48, 36, eps2d=0.3, near_plane=0.01, far_plane=1e10)
    means, quats, scales, _, viewmats, Ks = flatten_batch(s, batch)
    means2d, depths, conics, radii = ProjectFn.apply(means, quats, scales, None, viewmats, Ks, opts)
    covars, _ = _quat_scale_to_covar_preci(s.quats, s.scales, compute_preci=False)
    ref_radii, ref_means2d, ref_depths, ref_conics, _ = _fully_fused_projection(
        s.means, covars, s.viewmats, s.Ks, 48, 36, eps2d=0.3, near_plane=0.01, far_plane=1e10
    )
    lead = (*batch, 3, 200)
    radii, means2d, depths, conics = (
        radii.reshape(*lead, 2), means2d.reshape(*lead, 2), depths.reshape(lead), conics.reshape(*lead, 3)
    )  # fmt: skip
    torch.testing.assert_close(radii, ref_radii.to(torch.int32), rtol=0, atol=0)
    vis = radii[..., 0] > 0
    assert vis.sum() > 100  # the comparison covers many Gaussians
    torch.testing.assert_close(means2d[vis], ref_means2d[vis], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(depths[vis], ref_depths[vis], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conics[vis], ref_conics[vis], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_opacities", [False, True])
def test_forward_and_backward_match_twin(with_opacities):
    s = make_scene(seed=2, n=150, cameras=2, batch=(2,), width=40, height=30)
    opts = RenderOptions(40, 30)
    means, quats, scales, opac, viewmats, Ks = flatten_batch(s, (2,))
    params = [means.requires_grad_(), quats.requires_grad_(), scales.requires_grad_()]
    o = opac if with_opacities else None
    means2d, depths, conics, radii = ProjectFn.apply(*params, o, viewmats, Ks, opts)
    r_radii, r_means2d, r_depths, r_conics = _torch_ref._project(*params, o, viewmats, Ks, opts)
    torch.testing.assert_close(radii, r_radii, rtol=0, atol=0)
    vis = (radii > 0).all(-1)
    for fast, ref in ((means2d, r_means2d), (conics, r_conics)):
        torch.testing.assert_close(fast[vis], ref[vis], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(depths, r_depths, rtol=1e-12, atol=1e-12)
    # one random cotangent through both (culled entries get none, as in the renderer)
    masks = [vis[..., None], vis, vis[..., None]]
    fast = pull([means2d, depths, conics], params, masks=masks)
    ref = pull([r_means2d, r_depths, r_conics], params, masks=masks)
    for name, f, r in zip(("means", "quats", "scales"), fast, ref, strict=True):
        torch.testing.assert_close(f, r, rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"{n}: {m}")


def test_gradcheck():
    s = make_scene(seed=3, n=6, cameras=2, width=24, height=20, scale=0.3)
    opts = RenderOptions(24, 20)
    means, quats, scales, _, viewmats, Ks = flatten_batch(s, ())
    means2d, *_ = ProjectFn.apply(means, quats, scales, None, viewmats, Ks, opts)
    assert (ProjectFn.apply(means, quats, scales, None, viewmats, Ks, opts)[3] > 0).all()

    def f(m, q, sc):
        m2, d, c, _ = ProjectFn.apply(m, q, sc, None, viewmats, Ks, opts)
        return m2, d, c

    params = [t.clone().requires_grad_() for t in (means, quats, scales)]
    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_culling_rules():
    opts = RenderOptions(32, 32, near_plane=0.5, far_plane=50.0)
    K = torch.tensor([[[[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]]]], dtype=torch.float64)  # [B, C, 3, 3]
    V = torch.eye(4, dtype=torch.float64)[None, None]
    means = torch.tensor(
        [[0, 0, 5.0], [0, 0, -5.0], [0, 0, 0.2], [0, 0, 80.0], [40.0, 0, 5.0], [0, 0, 5.0], [0, 0, 5.0]],
        dtype=torch.float64,
    )[None]
    quats = torch.tensor([[1.0, 0, 0, 0]] * 5 + [[0.0, 0, 0, 0]] * 2, dtype=torch.float64)[None]
    scales = torch.full((1, 7, 3), 0.1, dtype=torch.float64)
    scales[0, 6] = 0.0  # a zero-size Gaussian is still an eps2d-sized splat
    opac = torch.tensor([[0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]], dtype=torch.float64)
    means2d, depths, conics, radii = ProjectFn.apply(means, quats, scales, opac, V, K, opts)
    visible = (radii[0, 0] > 0).all(-1).tolist()
    # in front, behind, before near, beyond far, off-screen, zero quaternion (identity), zero scales
    assert visible == [True, False, False, False, False, True, True]
    torch.testing.assert_close(conics[0, 0, 5], conics[0, 0, 0])  # zero quaternion = identity rotation
    assert torch.isfinite(conics).all() and torch.isfinite(means2d).all()
    # opacity below 1/255 is culled; the radius shrinks with opacity (opacity-aware extent)
    low = ProjectFn.apply(means[:, :1], quats[:, :1], scales[:, :1], opac[:, :1] * 0 + 0.003, V, K, opts)[3]
    faint = ProjectFn.apply(means[:, :1], quats[:, :1], scales[:, :1], opac[:, :1] * 0 + 0.02, V, K, opts)[3]
    assert (low == 0).all() and (faint[..., 0] < radii[0, 0, 0, 0]).all()

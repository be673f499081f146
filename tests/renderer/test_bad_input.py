"""Bad input to rasterize: non-finite Gaussians, degenerate shapes, errors that name the argument."""

from __future__ import annotations

import pytest
import torch

from renderer import rasterize
from tests.renderer.scenes import make_scene


def test_nonfinite_gaussians_are_dropped_and_counted():
    s = make_scene(seed=11, n=50, width=24, height=20, sh_degree=2)
    s.means[3, 0] = float("nan")
    s.scales[7, 1] = float("inf")
    s.opacities[9] = float("nan")
    s.colors[12, 5, 2] = float("-inf")
    s.quats[20] = float("nan")
    bad = [3, 7, 9, 12, 20]
    params = [p.clone().requires_grad_() for p in s.params()]
    colors, alphas, meta = rasterize(*params, s.viewmats, s.Ks, 24, 20, sh_degree=2)
    assert meta.n_nonfinite == 5
    assert torch.isfinite(colors).all() and torch.isfinite(alphas).all()
    assert (meta.radii[:, bad] == 0).all()
    keep = [i for i in range(50) if i not in bad]
    ref, ref_alpha, ref_meta = rasterize(
        *(p[keep] for p in s.params()), s.viewmats, s.Ks, 24, 20, sh_degree=2
    )
    assert ref_meta.n_nonfinite == 0
    torch.testing.assert_close(colors, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(alphas, ref_alpha, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(colors.sum() + alphas.sum(), params)
    for g in grads:
        assert torch.isfinite(g).all() and (g[bad] == 0).all()


def test_per_view_colors_with_nonfinite_entries():
    s = make_scene(seed=12, n=30, cameras=2, width=20, height=16)
    colors = s.colors[None].repeat(2, 1, 1)
    colors[1, 4, 0] = float("nan")  # bad in one view only → dropped everywhere
    out, _, meta = rasterize(s.means, s.quats, s.scales, s.opacities, colors, s.viewmats, s.Ks, 20, 16)
    assert meta.n_nonfinite == 1 and torch.isfinite(out).all()


def test_zero_scales_zero_quats_and_gaussians_behind_the_camera():
    s = make_scene(seed=13, n=20, cameras=1, width=20, height=16)
    s.scales[:5] = 0.0
    s.quats[5:10] = 0.0
    colors, alphas, meta = rasterize(*s.args())
    assert torch.isfinite(colors).all() and meta.n_nonfinite == 0
    assert (meta.radii[0, :10] > 0).any()  # point-like and unrotated Gaussians still render (eps2d blur)
    # everything behind the camera: nothing is drawn
    flipped = s.means.clone()
    flipped[:, 2] = flipped[:, 2] * 0 - 50.0
    behind = rasterize(flipped, s.quats, s.scales, s.opacities, s.colors, s.viewmats, s.Ks, 20, 16)
    assert (behind[1] == 0).all() and (behind[2].radii == 0).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"width": 0}, "width must be in \\[1, 8192\\], got 0"),
        ({"height": 8193}, "height must be in \\[1, 8192\\], got 8193"),
        ({"width": 12.5}, "width must be an int"),
        ({"render_mode": "RGBD"}, "render_mode must be one of"),
        ({"backend": "vulkan"}, "backend must be one of"),
        ({"sh_degree": 4}, "sh_degree must be None or an int in \\[0, 3\\], got 4"),
        ({"near_plane": 5.0, "far_plane": 1.0}, "near_plane and far_plane"),
        ({"eps2d": -1.0}, "eps2d must be >= 0"),
    ],
)
def test_bad_options_raise_naming_the_argument(kwargs, match):
    s = make_scene(n=5, width=8, height=8)
    args = list(s.args())
    if "width" in kwargs:
        args[7] = kwargs.pop("width")
    if "height" in kwargs:
        args[8] = kwargs.pop("height")
    error = TypeError if "must be an int" in match else ValueError
    with pytest.raises(error, match=match):
        rasterize(*args, **kwargs)


def test_bad_shapes_raise_naming_the_argument():
    s = make_scene(n=5, width=8, height=8, sh_degree=1)
    a = list(s.args())
    cases = [
        (1, s.quats[:, :3], "quats must have shape \\[5, 4\\], got \\[5, 3\\]"),
        (2, s.scales[:4], "scales must have shape \\[5, 3\\], got \\[4, 3\\]"),
        (3, s.opacities[:, None], "opacities must have shape \\[5\\], got \\[5, 1\\]"),
        (5, s.viewmats[:, :3], "viewmats must have shape \\[\\*, 4, 4\\], got \\[2, 3, 4\\]"),
        (6, s.Ks[:1], "Ks must have shape \\[2, 3, 3\\], got \\[1, 3, 3\\]"),
    ]
    for index, value, match in cases:
        bad = list(a)
        bad[index] = value
        with pytest.raises(ValueError, match=match):
            rasterize(*bad, sh_degree=1)
    with pytest.raises(ValueError, match="colors has K=3 SH bases; sh_degree=1 needs 4 <= K <= 16"):
        rasterize(*a[:4], s.colors[:, :3], *a[5:], sh_degree=1)
    with pytest.raises(ValueError, match="colors must be \\[..., N, D\\] or \\[..., C, N, D\\] features"):
        rasterize(*a)  # SH coefficients passed without sh_degree
    with pytest.raises(TypeError, match="means must be a floating-point tensor"):
        rasterize(s.means.long(), *a[1:], sh_degree=1)
    with pytest.raises(TypeError, match="must share one dtype"):
        rasterize(a[0], a[1].float(), *a[2:], sh_degree=1)
    bad_K = s.Ks.clone()
    bad_K[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="Ks must be finite"):
        rasterize(*a[:6], bad_K, 8, 8, sh_degree=1)
    with pytest.raises(ValueError, match="backgrounds must broadcast to \\[2, 3\\]"):
        rasterize(*a, sh_degree=1, backgrounds=torch.zeros(4))

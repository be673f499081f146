"""A procedural scene's ground-truth surfaces, turned into Gaussians, render back into its own images."""

from __future__ import annotations

import pytest
import torch

from renderer import Gaussians, render_gaussians
from renderer.conventions import unproject_depth

procedural = pytest.importorskip(
    "models.data.procedural", reason="procedural scenes (models.data) not available"
)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize("kind", ["objects", "room"])
def test_gaussians_on_gt_surfaces_reproduce_the_images(kind):
    scene = procedural.make_scene(3, views=3, width=64, height=64, kind=kind)
    depth = torch.from_numpy(scene.depth).double()
    K, w2c = torch.from_numpy(scene.K), torch.from_numpy(scene.world_to_camera)
    valid = torch.from_numpy(scene.valid) & (depth > 0)
    images = torch.from_numpy(scene.images).double()
    points = unproject_depth(depth, K, w2c)  # [S, H, W, 3] at pixel centres
    # one isotropic Gaussian per valid pixel, under a pixel footprint wide, coloured like the pixel
    n = int(valid.sum())
    footprint = (depth / K[:, 0, 0, None, None])[valid]
    gaussians = Gaussians(
        means=points[valid],
        quats=torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).expand(n, 4).clone(),
        scales=(0.4 * footprint)[:, None].expand(n, 3).clone(),
        opacities=torch.full((n,), 0.95, dtype=torch.float64),
        sh=Gaussians.rgb_to_sh0(images[valid]),
    )
    out = render_gaussians(gaussians, w2c, K, 64, 64)
    for v in range(3):
        m = valid[v].clone()
        m[:, :2] = m[:, -2:] = False  # columns that wrap around in the shifted baseline below
        assert m.float().mean() > 0.3
        rendered, truth = out.rgb[v][m], images[v][m]
        assert out.alpha[v][m].mean() > 0.99  # surfaces are covered
        psnr = _psnr(rendered, truth)
        flat = _psnr(truth.mean(0).expand_as(truth), truth)  # an image of the mean colour
        shifted = _psnr(torch.roll(images[v], 2, 1)[m], truth)  # the true image moved by two pixels
        assert psnr > 22 and psnr > flat + 5 and psnr > shifted + 1, (psnr, flat, shifted)
        rel = ((out.depth[v][m] - depth[v][m]).abs() / depth[v][m]).median()
        assert rel < 0.05, rel

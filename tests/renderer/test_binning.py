"""Binning stage: tile lists equal the plain-PyTorch twin's; the radix sort is a stable argsort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer import _torch_ref
from renderer.cpu.binning import _radix_argsort_u32, bin_gaussians
from renderer.cpu.projection import project_arrays
from renderer.options import RenderOptions
from tests.renderer.scenes import flatten_batch, make_scene


def test_radix_argsort_is_stable_argsort():
    rng = np.random.default_rng(0)
    depths = rng.choice(rng.uniform(0.01, 100.0, 500), 3000).astype(np.float32)  # many exact ties
    order = np.empty(depths.shape[0], np.int64)
    _radix_argsort_u32(depths.view(np.uint32), order)
    np.testing.assert_array_equal(order, np.argsort(depths, kind="stable"))


@pytest.mark.parametrize("width,height", [(40, 30), (16, 16), (33, 17)])
def test_matches_twin(width, height):
    s = make_scene(seed=4, n=300, cameras=3, batch=(2,), width=width, height=height)
    opts = RenderOptions(width, height)
    means, quats, scales, opac, viewmats, Ks = flatten_batch(s, (2,))
    radii, means2d, depths, _ = (
        torch.from_numpy(a) for a in project_arrays(means, quats, scales, opac, viewmats, Ks, opts)
    )
    n_images = 6
    tw, th = opts.tiles_wh
    flat = (radii.reshape(-1, 2), means2d.reshape(-1, 2), depths.reshape(-1))
    bins = bin_gaussians(*(t.numpy() for t in flat), n_images, opts.tile_size, tw, th)
    offsets, flatten_ids, tiles_per_gauss = _torch_ref._bin_tiles(*flat, n_images, opts)
    np.testing.assert_array_equal(bins.offsets, offsets.numpy())
    np.testing.assert_array_equal(bins.flatten_ids, flatten_ids.numpy())
    np.testing.assert_array_equal(bins.tiles_per_gauss, tiles_per_gauss.numpy())
    assert bins.n_isects > 300
    # every list is sorted front to back
    d = depths.reshape(-1).numpy().astype(np.float32)
    for t in range(n_images * tw * th):
        ids = bins.flatten_ids[bins.offsets[t] : bins.offsets[t + 1]]
        assert np.all(np.diff(d[ids]) >= 0)


def test_no_visible_gaussians_gives_empty_bins():
    radii = torch.zeros(10, 2, dtype=torch.int32).numpy()
    bins = bin_gaussians(radii, np.zeros((10, 2)), np.ones(10), 2, 16, 3, 2)
    assert bins.n_isects == 0 and (bins.offsets == 0).all() and bins.offsets.shape == (13,)

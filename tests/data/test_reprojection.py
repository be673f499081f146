"""Multi-view consistency of generated scenes: every view's depth, reprojected into every other view, must
land on the same surface with the same colour (issue 2's acceptance test)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.data import KINDS, make_scene, make_target_views
from renderer.conventions import project_points, unproject_depth


def _bilinear(img: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Sample ``img [H, W, C]`` at continuous pixel coordinates ``uv [N, 2]`` (pixel centres at +0.5)."""
    H, W = img.shape[:2]
    x, y = uv[:, 0] - 0.5, uv[:, 1] - 0.5
    x0, y0 = x.floor().long().clamp(0, W - 2), y.floor().long().clamp(0, H - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def reprojection_errors(scene, i: int, j: int) -> dict[str, np.ndarray]:
    """Reproject view ``i``'s valid pixels into view ``j``.

    Returns the relative depth errors and absolute RGB differences on co-visible pixels (inside view ``j``,
    all four neighbours valid there and on one smooth surface, i.e. not straddling a depth edge, and not
    occluded: projected depth within 1% of view ``j``'s depth), plus the fraction of view ``i``'s valid
    pixels that are co-visible.
    """
    depth = torch.as_tensor(scene.depth, dtype=torch.float64)
    images = torch.as_tensor(scene.images, dtype=torch.float64)
    valid = torch.as_tensor(scene.valid)
    K = torch.as_tensor(scene.K)
    w2c = torch.as_tensor(scene.world_to_camera)
    H, W = depth.shape[1:]
    pts = unproject_depth(depth[i], K[i], w2c[i])[valid[i]]  # [N, 3]
    uv, z = project_points(pts, w2c[j], K[j])
    inside = (z > 0) & (uv[:, 0] >= 0.5) & (uv[:, 0] <= W - 0.5) & (uv[:, 1] >= 0.5) & (uv[:, 1] <= H - 0.5)
    uv, z, src_rgb = uv[inside], z[inside], images[i][valid[i]][inside]
    # Inverse depth is affine in pixel coordinates on planes, so its bilinear interpolation is exact there.
    inv = torch.where(valid[j], 1.0 / depth[j].clamp_min(1e-12), torch.zeros_like(depth[j]))
    all_valid = _bilinear((valid[j] * 1.0)[..., None], uv)[:, 0] > 1 - 1e-9
    # Depth spread of the four neighbours: large across silhouettes, where interpolation means nothing.
    x0 = (uv[:, 0] - 0.5).floor().long().clamp(0, W - 2)
    y0 = (uv[:, 1] - 0.5).floor().long().clamp(0, H - 2)
    quad = torch.stack(
        [depth[j][y0, x0], depth[j][y0, x0 + 1], depth[j][y0 + 1, x0], depth[j][y0 + 1, x0 + 1]]
    )
    smooth = (quad.amax(0) - quad.amin(0)) < 0.02 * quad.amin(0)
    d_j = 1.0 / _bilinear(inv[..., None], uv)[:, 0].clamp_min(1e-12)
    rel = (z - d_j).abs() / z
    covis = all_valid & smooth & (rel < 0.01)
    rgb_diff = (_bilinear(images[j], uv[covis]) - src_rgb[covis]).abs().mean(-1)
    return {
        "rel_depth": rel[covis].numpy(),
        "rgb_diff": rgb_diff.numpy(),
        "covisible_fraction": np.array(covis.sum().item() / max(int(valid[i].sum()), 1)),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_views_agree_on_depth_and_colour(kind):
    scene = make_scene(1, views=4, width=128, height=96, kind=kind)
    covered = 0
    for i in range(scene.num_views):
        for j in range(scene.num_views):
            if i == j:
                continue
            e = reprojection_errors(scene, i, j)
            if e["rel_depth"].size < 200:  # too little overlap between these two views to judge
                continue
            covered += 1
            assert np.median(e["rel_depth"]) < 1e-3, (kind, i, j, np.median(e["rel_depth"]))
            assert np.median(e["rgb_diff"]) < 0.05, (kind, i, j, np.median(e["rgb_diff"]))
            assert np.mean(e["rgb_diff"] < 0.1) > 0.8, (kind, i, j)
    assert covered >= 6, f"{kind}: only {covered} of 12 view pairs overlap"


def test_reprojection_detects_wrong_cameras():
    """The check above can fail: with one camera swapped for another view's, depths stop agreeing."""
    scene = make_scene(5, views=3, width=96, height=96, kind="forward")
    scene.world_to_camera = scene.world_to_camera[[0, 2, 1]]
    e = reprojection_errors(scene, 0, 1)
    assert e["rel_depth"].size == 0 or np.median(e["rel_depth"]) > 1e-3 or e["covisible_fraction"] < 0.5


@pytest.mark.parametrize("kind", ["orbit", "room"])
def test_target_views_agree_with_input_views(kind):
    scene = make_scene(11, views=3, width=96, height=80, kind=kind)
    targets = make_target_views(scene, 2)
    both = dataclasses.replace(
        scene,
        **{
            name: np.concatenate([getattr(scene, name), getattr(targets, name)])
            for name in ("images", "depth", "valid", "K", "world_to_camera")
        },
    )
    rels = [reprojection_errors(both, 3 + t, i)["rel_depth"] for t in range(2) for i in range(3)]
    rels = np.concatenate(rels)
    assert rels.size > 500
    assert np.median(rels) < 1e-3

"""ZPressor: anchor selection, assignment, padded cluster tables, batched fusion vs loops, and the
registration pass (anchors unaffected by support order; every view gets a camera)."""

from __future__ import annotations

import pytest
import torch

from models._torch_ref import _assign_to_anchors, _farthest_point_anchors, _zpressor
from models.config import ZPressorConfig
from models.zpressor import (
    ZPressor,
    assign_to_anchors,
    cluster_table,
    farthest_point_anchors,
    partner_anchors,
    support_views,
    view_descriptors,
)
from tests.models.conftest import rand_images


def test_fps_starts_at_view_zero_and_takes_the_farthest():
    pts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0]]])
    assert farthest_point_anchors(pts, 1).tolist() == [[0]]
    assert farthest_point_anchors(pts, 2).tolist() == [[0, 3]]
    assert farthest_point_anchors(pts, 3).tolist() == [[0, 2, 3]]
    # view 0 is first even when it is not an extreme point
    pts = torch.tensor([[[5.0, 0, 0], [0, 0, 0], [10, 0, 0]]])
    assert farthest_point_anchors(pts, 2).tolist() == [[0, 1]]


def test_fps_and_assignment_match_loop_twins():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(3, 17, 5, generator=g)
    anchors = farthest_point_anchors(pts, 6)
    assert anchors.tolist() == _farthest_point_anchors(pts, 6)
    labels = assign_to_anchors(pts, anchors)
    assert labels.tolist() == _assign_to_anchors(pts, anchors.tolist())
    for b in range(3):  # anchors belong to their own slot
        assert labels[b, anchors[b]].tolist() == list(range(6))


def test_partner_is_the_nearest_anchor_other_than_view_zero():
    pts = torch.tensor([[[0.0, 0], [1, 0], [4, 0], [6, 0], [9, 0], [10, 0]]])
    anchors = torch.tensor([[0, 3, 5]])  # slots 0, 1, 2 at x = 0, 6, 10
    # view 1 (x=1) belongs to slot 0, its partner is the nearest *other* anchor (x=6); view 4 is nearer x=10
    assert partner_anchors(pts, anchors).tolist() == [[1, 1, 1, 1, 2, 2]]
    assert assign_to_anchors(pts, anchors).tolist() == [[0, 0, 1, 1, 2, 2]]
    with pytest.raises(ValueError, match="at least 2 anchors"):
        partner_anchors(pts, anchors[:, :1])


def test_pair_context_gathers_the_reference_and_partner_tokens():
    from models.vggt import PairContext

    B, nh, N, P, d = 2, 2, 4, 5, 3
    k = torch.randn(B, nh, N * P, d, generator=torch.Generator().manual_seed(0))
    v = k + 1
    partners = torch.tensor([[1, 3, 2], [2, 2, 1]])
    ctx = PairContext([(k, v)], partners, N)
    assert len(ctx) == 1
    pk, pv = ctx[0]
    assert pk.shape == (B * 3, nh, 2 * P, d)
    for b in range(B):
        for i, p in enumerate(partners[b].tolist()):
            want = torch.cat([k[b, :, :P], k[b, :, p * P : (p + 1) * P]], 1)
            assert torch.equal(pk[b * 3 + i], want) and torch.equal(pv[b * 3 + i], want + 1)


def test_fps_rejects_bad_counts():
    with pytest.raises(ValueError, match=r"num anchors must be in \[1, 3\], got 4"):
        farthest_point_anchors(torch.zeros(1, 3, 2), 4)


def test_support_views_and_cluster_table():
    anchors = torch.tensor([[0, 3, 5], [0, 1, 2]])
    sup = support_views(anchors, 7)
    assert sup.tolist() == [[1, 2, 4, 6], [3, 4, 5, 6]]
    labels = torch.tensor([[0, 2, 2, 1, 2, 2, 0], [0, 1, 2, 0, 0, 1, 0]])
    index, mask = cluster_table(labels, sup, 3)
    assert index.shape == mask.shape == (2, 3, 3)
    for b in range(2):
        for n in range(3):
            members = sorted(int(sup[b, j]) for j, m in zip(index[b, n], mask[b, n], strict=True) if m)
            expected = [int(v) for v in sup[b] if labels[b, v] == n]
            assert members == expected
    assert mask.sum().item() == 8
    assert mask[1, 0].all() and not mask[0, 1].any()  # anchor 3 of scene 0 has no support


def test_cluster_table_without_supports():
    index, mask = cluster_table(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long), 3)
    assert index.shape == (2, 3, 1) and not mask.any()


@pytest.mark.parametrize("context_views", [1, 6, 100])  # one anchor per group, groups across scenes, all
def test_batched_fusion_matches_loops_with_uneven_and_empty_clusters(context_views):
    torch.manual_seed(0)
    model = ZPressor(32, ZPressorConfig(layers=2, num_heads=2))
    for blk in model.blocks:
        blk.context_views = context_views
    B, N, p, C = 2, 3, 5, 32
    anchors = torch.randn(B, N, p, C)
    supports = torch.randn(B, 4, p, C)
    labels = torch.tensor([[0, 2, 2, 1, 2, 2, 0], [0, 1, 2, 0, 0, 1, 0]])
    sup = support_views(torch.tensor([[0, 3, 5], [0, 1, 2]]), 7)
    index, mask = cluster_table(labels, sup, N)
    clusters = [
        [[int(j) for j, m in zip(index[b, n], mask[b, n], strict=True) if m] for n in range(N)]
        for b in range(B)
    ]
    assert clusters[0][1] == []  # an anchor without supports
    anchors.requires_grad_(True)
    out = model(anchors, supports, index, mask)
    ref = _zpressor(model, anchors, supports, clusters)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # training backpropagates through the grouped updates
    (grad,) = torch.autograd.grad(out.square().sum(), anchors)
    (grad_ref,) = torch.autograd.grad(ref.square().sum(), anchors)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)


def test_descriptors_are_unit_norm_means():
    t = torch.randn(1, 3, 7, 16)
    d = view_descriptors(t)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(1, 3))
    torch.testing.assert_close(d, torch.nn.functional.normalize(t.mean(2), dim=-1))


# ------------------------------------------------------------------------------- registration pass
def test_every_view_gets_its_own_camera_and_depth(micro_model):
    x = rand_images(9, seed=1)
    with torch.inference_mode():
        out = micro_model.infer(x, max_anchors=3, chunk=4)
    assert out.compression == "zpressor"
    assert out.anchors.shape == (1, 3) and out.anchors[0, 0] == 0
    assert out.pose_enc.shape == (1, 9, 9) and torch.isfinite(out.pose_enc).all()
    assert out.depth.shape == (1, 9, 112, 112) and torch.isfinite(out.depth).all()
    # supports are not copies of their anchor: each view's camera comes from its own tokens
    assert torch.unique(out.pose_enc[0].round(decimals=5), dim=0).shape[0] == 9
    assert out.gaussian_raw.shape[:2] == (1, 3)


def test_permuting_support_views_does_not_change_anchor_outputs(micro_model):
    x = rand_images(10, seed=2)
    with torch.inference_mode():
        a = micro_model.infer(x, max_anchors=4, chunk=3)
    anchors = a.anchors[0].tolist()
    supports = [i for i in range(10) if i not in anchors]
    perm = list(range(10))
    shuffled = [
        supports[i] for i in torch.randperm(len(supports), generator=torch.Generator().manual_seed(0))
    ]
    for pos, src in zip(supports, shuffled, strict=True):
        perm[pos] = src
    with torch.inference_mode():
        b = micro_model.infer(x[:, perm], max_anchors=4, chunk=3)
    assert b.anchors[0].tolist() == anchors
    kw = {"rtol": 1e-4, "atol": 1e-4}
    torch.testing.assert_close(b.pose_enc[0, anchors], a.pose_enc[0, anchors], **kw)
    torch.testing.assert_close(b.depth[0, anchors], a.depth[0, anchors], **kw)
    torch.testing.assert_close(b.gaussian_raw, a.gaussian_raw, **kw)
    # support views are registered independently of each other: their outputs just follow the permutation
    torch.testing.assert_close(b.pose_enc[0], a.pose_enc[0, perm], **kw)
    torch.testing.assert_close(b.depth[0], a.depth[0, perm], **kw)


def test_identity_compression_keeps_anchor_outputs_equal_to_an_anchors_only_run(micro_model):
    import copy

    model = copy.deepcopy(micro_model)
    model.zpressor = None  # a checkpoint without ZPressor weights (like VGGT-1B)
    x = rand_images(8, seed=3)
    with torch.inference_mode():
        out = model.infer(x, max_anchors=3, chunk=2)
        anchors = out.anchors[0]
        alone = model(x[:, anchors])
    assert out.compression == "identity"
    kw = {"rtol": 1e-4, "atol": 1e-4}
    torch.testing.assert_close(out.pose_enc[0, anchors], alone["pose_enc"][0], **kw)
    torch.testing.assert_close(out.depth[0, anchors], alone["depth"][0, ..., 0], **kw)
    torch.testing.assert_close(out.world_points[0, anchors], alone["world_points"][0], **kw)


def test_infer_without_compression_equals_forward(micro_model):
    x = rand_images(3, seed=4)
    with torch.inference_mode():
        out = micro_model.infer(x, max_anchors=8, chunk=2)
        ref = micro_model(x)
    assert out.compression == "none" and out.anchors.tolist() == [[0, 1, 2]]
    torch.testing.assert_close(out.pose_enc, ref["pose_enc"])
    torch.testing.assert_close(out.depth, ref["depth"][..., 0])
    torch.testing.assert_close(out.world_points_conf, ref["world_points_conf"])
    torch.testing.assert_close(out.gaussian_raw, ref["gaussians"])


def test_given_camera_centres_pick_the_anchors(micro_model):
    x = rand_images(6, seed=5)
    centres = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [5, 0, 0], [5.1, 0, 0], [0, 5, 0], [0.2, 0, 0]])
    with torch.inference_mode():
        out = micro_model.infer(x, max_anchors=3, anchor_points=[centres])
    assert out.anchors.tolist() == [[0, 3, 4]]
    assert out.labels.tolist() == [[0, 0, 1, 1, 2, 0]]


def test_infer_rejects_bad_arguments(micro_model):
    with pytest.raises(ValueError, match="max_anchors must be >= 1"):
        micro_model.infer(rand_images(2), max_anchors=0)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        micro_model.infer(torch.rand(1, 2, 3, 100, 112))
    with pytest.raises(TypeError, match="a float tensor in \\[0, 1\\] or uint8, got dtype torch.int32"):
        micro_model.infer(torch.zeros(1, 2, 3, 112, 112, dtype=torch.int32))
    with pytest.raises(TypeError, match="a float tensor in \\[0, 1\\], got dtype torch.uint8"):
        micro_model(torch.zeros(1, 2, 3, 112, 112, dtype=torch.uint8))  # the reference forward: floats only


def test_infer_on_uint8_equals_infer_on_the_same_images_as_floats(micro_model):
    from models.preprocess import as_unit_float

    images = (rand_images(10) * 255).round().to(torch.uint8)
    with torch.inference_mode():
        a = micro_model.infer(images, max_anchors=4, chunk=3)  # converted 3 views at a time
        b = micro_model.infer(as_unit_float(images), max_anchors=4, chunk=3)
    for name in ("pose_enc", "depth", "depth_conf", "world_points", "gaussian_raw"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def _registration(model, mode: str):
    import copy

    m = copy.copy(model)  # shares the weights; only the attribute differs
    m.registration = mode
    return m


def test_pair_registration_equals_all_with_two_anchors(micro_model):
    x = rand_images(7, seed=6)
    with torch.inference_mode():
        a = _registration(micro_model, "all").infer(x, max_anchors=2, chunk=3)
        p = _registration(micro_model, "pair").infer(x, max_anchors=2, chunk=3)
    # with two anchors the pair is every anchor, in the same order: the same keys, the same result
    for name in ("pose_enc", "depth", "depth_conf", "world_points"):
        torch.testing.assert_close(getattr(p, name), getattr(a, name), rtol=1e-5, atol=1e-5)


def test_pair_registration_changes_only_support_views(micro_model):
    import copy

    from models.layers.block import LayerScale

    model = copy.deepcopy(micro_model)
    with torch.no_grad():  # seeded weights start with tiny layer scales: make attention matter
        for m in model.modules():
            if isinstance(m, LayerScale):
                m.gamma.fill_(1.0)
    x = rand_images(12, seed=7)
    with torch.inference_mode():
        a = _registration(model, "all").infer(x, max_anchors=4, chunk=5)
        p = _registration(model, "pair").infer(x, max_anchors=4, chunk=5)
    anchors = a.anchors[0].tolist()
    supports = [i for i in range(12) if i not in anchors]
    assert p.anchors[0].tolist() == anchors
    torch.testing.assert_close(p.pose_enc[0, anchors], a.pose_enc[0, anchors])
    torch.testing.assert_close(p.gaussian_raw, a.gaussian_raw)
    assert torch.isfinite(p.pose_enc).all() and torch.isfinite(p.depth).all()
    # support views attend to 2 anchors instead of 4: their outputs differ
    # (well above float noise: the two-anchor test above agrees to 1e-7)
    assert (p.depth[0, supports] - a.depth[0, supports]).abs().amax() > 1e-5
    assert (p.pose_enc[0, supports] - a.pose_enc[0, supports]).abs().amax() > 1e-5
    with pytest.raises(ValueError, match="registration must be one of"):
        _registration(micro_model, "none").infer(x, max_anchors=4)

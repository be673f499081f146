"""Network pieces against the spec's formulas: RoPE, uv pos-embed, residual quirk, LN eps, activations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models._torch_ref import _attention
from models.config import VGGT_1B
from models.heads.camera_head import activate_pose
from models.heads.dpt_head import ResidualConvUnit, uv_pos_embed
from models.heads.head_act import activate_depth, activate_points
from models.layers.attention import Attention
from models.layers.rope import apply_rope, rope_tables, token_positions
from models.vggt import VGGT


def test_token_positions_row_major_and_specials_at_origin():
    pos = token_positions(2, 3, 5)
    assert pos[:5].tolist() == [[0, 0]] * 5
    assert pos[5:].tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]


def test_rope_matches_the_formula_elementwise():
    d, base = 16, 100.0
    pos = token_positions(2, 3, 1)
    t = torch.randn(2, pos.shape[0], d, dtype=torch.float64)
    cos, sin = rope_tables(pos, d, base, dtype=torch.float64)
    out = apply_rope(t, cos, sin).numpy()
    m = d // 2  # per axis; rotate-half pairs i and i + m/2 share frequency base^(-2i/m)
    ref = np.empty_like(out)
    for n in range(pos.shape[0]):
        for axis in (0, 1):
            p = float(pos[n, axis])
            for i in range(m // 2):
                a = p * base ** (-2 * i / m)
                lo, hi = axis * m + i, axis * m + i + m // 2
                x0, x1 = t[:, n, lo].numpy(), t[:, n, hi].numpy()
                ref[:, n, lo] = x0 * math.cos(a) - x1 * math.sin(a)
                ref[:, n, hi] = x1 * math.cos(a) + x0 * math.sin(a)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out[:, 0], t[:, 0].numpy())  # special token: no rotation


def test_rope_scores_depend_only_on_relative_position():
    d = 8
    cos, sin = rope_tables(torch.tensor([[1, 1], [3, 2], [5, 4], [7, 5]]), d, dtype=torch.float64)
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    rq = apply_rope(q.expand(4, d), cos, sin)
    rk = apply_rope(k.expand(4, d), cos, sin)
    # positions 0→1 and 2→3 have the same offset (2, 1)
    torch.testing.assert_close(rq[0] @ rk[1], rq[2] @ rk[3])


def test_rope_applies_per_view_in_concatenated_sequences():
    cos, sin = rope_tables(token_positions(2, 2, 1), 8)
    t = torch.randn(1, 2, 3 * 5, 8)  # three views of five tokens, as in global attention
    per_view = torch.cat([apply_rope(t[:, :, i * 5 : (i + 1) * 5], cos, sin) for i in range(3)], 2)
    torch.testing.assert_close(apply_rope(t, cos, sin), per_view)


def test_uv_pos_embed_matches_the_formula():
    D, h, w, W, H = 8, 3, 4, 56, 42
    x = torch.zeros(1, D, h, w)
    out = uv_pos_embed(x, W, H)[0].numpy()
    a = W / H
    sx, sy = a / math.sqrt(a * a + 1), 1 / math.sqrt(a * a + 1)
    xs = np.linspace(-sx * (w - 1) / w, sx * (w - 1) / w, w)
    ys = np.linspace(-sy * (h - 1) / h, sy * (h - 1) / h, h)
    q = D // 4
    omega = 1.0 / 100.0 ** (np.arange(q) / q)
    for r in range(h):
        for c in range(w):
            ref = np.concatenate(
                [np.sin(xs[c] * omega), np.cos(xs[c] * omega), np.sin(ys[r] * omega), np.cos(ys[r] * omega)]
            )
            np.testing.assert_allclose(out[:, r, c], 0.1 * ref, rtol=1e-6, atol=1e-7)


def test_residual_unit_adds_relu_of_its_input():
    torch.manual_seed(0)
    rcu = ResidualConvUnit(4)
    x = torch.randn(1, 4, 5, 5)
    expected = rcu.conv2(F.relu(rcu.conv1(F.relu(x)))) + F.relu(x)
    torch.testing.assert_close(rcu(x), expected)
    plain = rcu.conv2(F.relu(rcu.conv1(F.relu(x)))) + x
    assert not torch.allclose(rcu(x), plain)  # the quirk matters for negative inputs


def test_layernorm_eps_follow_the_reference():
    with torch.device("meta"):
        m = VGGT(VGGT_1B)
    assert m.aggregator.patch_embed.blocks[0].norm1.eps == 1e-6
    assert m.aggregator.patch_embed.norm.eps == 1e-6
    assert m.aggregator.frame_blocks[0].norm1.eps == 1e-5
    assert m.aggregator.global_blocks[5].attn.q_norm.eps == 1e-5
    assert m.camera_head.trunk[0].norm2.eps == 1e-5
    assert m.camera_head.adaln_norm.eps == 1e-6 and not m.camera_head.adaln_norm.elementwise_affine
    assert m.aggregator.frame_blocks[0].ls1.gamma.shape == (1024,)


def test_attention_with_external_keys_values_and_index():
    torch.manual_seed(0)
    attn = Attention(16, 2, qk_norm=True)
    x, other = torch.randn(2, 6, 16), torch.randn(2, 4, 16)
    _, k, v = attn.qkv_heads(other, None)
    q, _, _ = attn.qkv_heads(x, None)
    expected = attn.proj(_attention(q, k, v).transpose(1, 2).reshape(2, 6, 16))
    torch.testing.assert_close(attn(x, kv=(k, v)), expected, rtol=1e-5, atol=1e-6)
    idx = torch.tensor([[0, 2], [1, 5]])
    q, k, v = attn.qkv_heads(x, None)
    b = torch.arange(2)[:, None]
    ks, vs = k.transpose(1, 2)[b, idx].transpose(1, 2), v.transpose(1, 2)[b, idx].transpose(1, 2)
    expected = attn.proj(_attention(q, ks, vs).transpose(1, 2).reshape(2, 6, 16))
    torch.testing.assert_close(attn(x, kv_index=idx), expected, rtol=1e-5, atol=1e-6)


def test_head_activations():
    depth, conf = activate_depth(torch.tensor([[0.0, 0.0], [math.log(2.0), -5.0]]))
    torch.testing.assert_close(depth[:, 0], torch.tensor([1.0, 2.0]))
    assert torch.all(conf > 1) and conf[0] == 2.0
    pts, _ = activate_points(torch.tensor([[-1.0, 0.0, 2.0, 0.0]]))
    torch.testing.assert_close(pts[0], torch.tensor([-(math.e - 1), 0.0, math.exp(2) - 1]))
    pose = activate_pose(torch.tensor([1.0, -2, 3, 0.1, -0.2, 0.3, -0.9, -0.5, 0.7]))
    assert pose[:7].tolist() == pytest.approx([1.0, -2, 3, 0.1, -0.2, 0.3, -0.9])
    assert pose[7:].tolist() == pytest.approx([0.0, 0.7])


def test_dino_pos_embed_is_resized_bicubic_antialiased_and_keeps_cls():
    from tests.models.conftest import MICRO

    with torch.random.fork_rng():
        torch.manual_seed(0)
        pe = VGGT(MICRO).aggregator.patch_embed
        torch.nn.init.normal_(pe.pos_embed)
    same = pe.interpolated_pos_embed(8, 8, torch.float32)
    torch.testing.assert_close(same, pe.pos_embed)
    out = pe.interpolated_pos_embed(6, 10, torch.float32)
    assert out.shape == (1, 1 + 60, 64)
    torch.testing.assert_close(out[:, 0], pe.pos_embed[:, 0])
    grid = pe.pos_embed[:, 1:].reshape(1, 8, 8, 64).permute(0, 3, 1, 2)
    ref = (
        F.interpolate(grid, size=(6, 10), mode="bicubic", antialias=True)
        .permute(0, 2, 3, 1)
        .reshape(1, 60, 64)
    )
    torch.testing.assert_close(out[:, 1:], ref)

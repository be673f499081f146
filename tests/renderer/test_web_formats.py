"""``.splat`` and ``.spz``: byte layout, round trips within quantisation, and third-party readers."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from renderer.io.web_formats import load_spz, save_spz, splat_bytes, spz_bytes
from renderer.types import SH_C0
from tests.renderer.test_splat_ply import random_gaussians


def _unit(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[:, :1] < 0, -q, q)


def test_splat_layout_is_32_bytes_sorted_by_volume_times_opacity():
    g = random_gaussians(n=40, degree=1)
    data = splat_bytes(g)
    assert len(data) == 40 * 32
    rec = np.frombuffer(
        data, dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)]
    )
    key = (g.scales.prod(1) * g.opacities).numpy()
    order = np.argsort(-key, kind="stable")
    np.testing.assert_allclose(rec["pos"], g.means[order], rtol=1e-6)
    np.testing.assert_allclose(rec["scale"], g.scales[order], rtol=1e-6)
    rgb = np.clip(np.round((0.5 + SH_C0 * g.sh[order, 0].numpy()) * 255), 0, 255)
    np.testing.assert_array_equal(rec["rgba"][:, :3], rgb)
    np.testing.assert_array_equal(rec["rgba"][:, 3], np.round(g.opacities[order].numpy() * 255))
    q = (rec["rot"].astype(np.float64) - 128) / 128
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cos = np.abs((q * (g.quats[order] / g.quats[order].norm(dim=1, keepdim=True)).numpy()).sum(1))
    assert cos.min() > 0.995  # same rotation within 8-bit quantisation


def test_open3d_reads_our_splat_file(tmp_path):
    o3d = pytest.importorskip("open3d")
    g = random_gaussians(n=25, degree=0, seed=4)
    path = tmp_path / "scene.splat"
    path.write_bytes(splat_bytes(g))
    pc = o3d.t.io.read_point_cloud(str(path))
    order = np.argsort(-(g.scales.prod(1) * g.opacities).numpy(), kind="stable")
    np.testing.assert_allclose(pc.point["positions"].numpy(), g.means[order], rtol=1e-6)
    np.testing.assert_allclose(pc.point["scale"].numpy(), g.scales[order], rtol=1e-5)
    np.testing.assert_allclose(pc.point["f_dc"].numpy(), g.sh[order, 0], atol=0.5 / 255 / SH_C0 + 1e-6)


def test_spz_header_and_blocks():
    g = random_gaussians(n=30, degree=2)
    raw = gzip.decompress(spz_bytes(g))
    magic, version, n, degree, frac, flags, reserved = struct.unpack_from("<IIIBBBB", raw)
    assert (magic, version, n, degree, frac, flags, reserved) == (0x5053474E, 3, 30, 2, 12, 0, 0)
    assert len(raw) == 16 + 30 * (9 + 1 + 3 + 3 + 4 + 8 * 3)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_spz_round_trip_within_quantisation(tmp_path, degree):
    g = random_gaussians(n=200, degree=degree, seed=degree)
    back = load_spz(save_spz(g, tmp_path / "s.spz"))
    assert back.sh.shape == g.sh.shape
    torch.testing.assert_close(back.means, g.means, rtol=0, atol=0.5 / 4096 + 1e-6)
    torch.testing.assert_close(back.opacities, g.opacities, rtol=0, atol=0.5 / 255 + 1e-6)
    log_err = (back.scales.log() - g.scales.log()).abs().max()
    assert log_err <= 0.5 / 16 + 1e-5
    cos = (_unit(back.quats) * _unit(g.quats)).sum(1).abs()
    assert cos.min() > 0.9999
    torch.testing.assert_close(back.sh[:, 0], g.sh[:, 0], rtol=0, atol=0.5 / (0.15 * 255) + 1e-6)
    if degree:
        # x·128 rounded, then to 5 bits for band 1 (step 8/128) and 4 bits above (step 16/128)
        inside = g.sh.abs() < 0.9  # beyond ±127/128 the byte saturates
        err = (back.sh - g.sh).abs()
        assert err[:, 1:4][inside[:, 1:4]].max() <= 4.5 / 128 + 1e-6
        if degree > 1:
            assert err[:, 4:][inside[:, 4:]].max() <= 8.5 / 128 + 1e-6


def test_gsply_reads_our_spz_in_the_rub_frame(tmp_path):
    gsply = pytest.importorskip("gsply")
    g = random_gaussians(n=60, degree=3, seed=5)
    path = save_spz(g, tmp_path / "scene.spz")
    data = gsply.read_spz(path)
    ours = load_spz(path)  # back in our RDF frame
    flip = torch.tensor([1.0, -1.0, -1.0])
    np.testing.assert_allclose(data.means, ours.means * flip, atol=1e-6)
    np.testing.assert_allclose(np.exp(data.scales), ours.scales, rtol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-data.opacities)), ours.opacities, atol=1e-5)
    q_rub = ours.quats * torch.tensor([1.0, 1.0, -1.0, -1.0])
    cos = np.abs((np.asarray(data.quats) * _unit(q_rub).numpy()).sum(1))
    assert cos.min() > 0.99999
    np.testing.assert_allclose(data.sh0, ours.sh[:, 0], atol=1e-5)
    parity = torch.tensor([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1.0])[:, None]
    np.testing.assert_allclose(data.shN, ours.sh[:, 1:] * parity, atol=1e-5)
    assert np.abs(data.means - g.means.numpy() * flip.numpy()).max() < 1e-3


def test_spz_rub_conversion_preserves_rendered_colour():
    # evaluate SH in RDF for a direction d and in RUB for the flipped direction: colours must agree
    from renderer._torch_ref import _spherical_harmonics

    g = random_gaussians(n=20, degree=3, seed=6)
    back = load_spz(spz_bytes(g))
    d = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    parity = torch.tensor([1, -1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1.0])[:, None]
    rub = back.sh * parity
    a = _spherical_harmonics(3, d, back.sh)
    b = _spherical_harmonics(3, d * torch.tensor([1.0, -1.0, -1.0]), rub)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_spz_errors_name_the_source(tmp_path):
    with pytest.raises(ValueError, match="<bytes>: not a gzip-compressed SPZ file"):
        load_spz(b"plain bytes")
    with pytest.raises(ValueError, match="bad SPZ magic"):
        load_spz(gzip.compress(struct.pack("<IIIBBBB", 0x12345678, 3, 0, 0, 12, 0, 0)))
    with pytest.raises(ValueError, match="SPZ version 4 is not supported"):
        load_spz(gzip.compress(struct.pack("<IIIBBBB", 0x5053474E, 4, 0, 0, 12, 0, 0)))
    truncated = tmp_path / "t.spz"
    truncated.write_bytes(gzip.compress(gzip.decompress(spz_bytes(random_gaussians(5)))[:-7]))
    with pytest.raises(ValueError, match="t.spz: SPZ data truncated"):
        load_spz(truncated)
    far = random_gaussians(3)
    far.means[0, 0] = 5000.0
    with pytest.raises(ValueError, match="positions must lie within ±2048"):
        spz_bytes(far)

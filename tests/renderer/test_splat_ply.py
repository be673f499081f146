"""3DGS PLY: round trip, third-party readers (plyfile, Open3D) and writers (gsplat, hand-made INRIA)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from renderer.io.splat_ply import load_splat_ply, save_splat_ply, splat_ply_bytes
from renderer.types import Gaussians


def random_gaussians(n: int = 50, degree: int = 3, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g),
        scales=torch.rand(n, 3, generator=g) * 0.2 + 0.01,
        opacities=torch.rand(n, generator=g) * 0.98 + 0.01,
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g) * 0.3,
    )


def assert_same(a: Gaussians, b: Gaussians, atol: float = 1e-6) -> None:
    for name in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=atol, msg=name)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_and_plyfile_reads_the_inria_layout(tmp_path, degree):
    g = random_gaussians(degree=degree)
    path = save_splat_ply(g, tmp_path / "splats.ply")
    assert_same(load_splat_ply(path), g)
    v = PlyData.read(str(path))["vertex"]
    n_rest = 3 * ((degree + 1) ** 2 - 1)
    expected = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    expected += [f"f_rest_{i}" for i in range(n_rest)] + ["opacity", "scale_0", "scale_1", "scale_2"]
    expected += ["rot_0", "rot_1", "rot_2", "rot_3"]
    assert [p.name for p in v.properties] == expected and v.count == 50
    assert all(
        p.val_dtype in ("f4", "float32", "<f4") or np.dtype(p.val_dtype) == np.float32 for p in v.properties
    )
    np.testing.assert_allclose(v["opacity"], torch.logit(g.opacities).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v["scale_2"], torch.log(g.scales[:, 2]).numpy(), rtol=1e-6)
    if degree:
        # channel-major: f_rest_0 is band 1 red, f_rest_{K-1} is band 1 green
        np.testing.assert_allclose(v["f_rest_0"], g.sh[:, 1, 0], rtol=1e-6)
        np.testing.assert_allclose(v[f"f_rest_{n_rest // 3}"], g.sh[:, 1, 1], rtol=1e-6)


def test_open3d_tensor_reader_gets_the_gaussians(tmp_path):
    o3d = pytest.importorskip("open3d")
    g = random_gaussians(n=20, degree=3, seed=1)
    path = save_splat_ply(g, tmp_path / "splats.ply")
    pc = o3d.t.io.read_point_cloud(str(path))
    np.testing.assert_allclose(pc.point["positions"].numpy(), g.means, rtol=1e-6)
    np.testing.assert_allclose(pc.point["f_dc"].numpy(), g.sh[:, 0], rtol=1e-6)
    np.testing.assert_allclose(pc.point["f_rest"].numpy(), g.sh[:, 1:], rtol=1e-6)
    np.testing.assert_allclose(pc.point["rot"].numpy(), g.quats, rtol=1e-6)
    np.testing.assert_allclose(pc.point["scale"].numpy(), g.scales, rtol=1e-5)  # Open3D applies exp


def test_loads_gsplat_export_without_normals(tmp_path):
    exporter = pytest.importorskip("gsplat.exporter")
    g = random_gaussians(n=30, degree=2, seed=2)
    data = exporter.export_splats(
        means=g.means, scales=torch.log(g.scales), quats=g.quats,
        opacities=torch.logit(g.opacities), sh0=g.sh[:, :1], shN=g.sh[:, 1:], format="ply",
    )  # fmt: skip
    path = tmp_path / "gsplat.ply"
    path.write_bytes(data)
    names = [p.name for p in PlyData.read(str(path))["vertex"].properties]
    assert "nx" not in names
    assert_same(load_splat_ply(path), g, atol=1e-5)


def test_loads_inria_style_file_with_normals_doubles_and_shuffled_order_in_ascii(tmp_path):
    g = random_gaussians(n=10, degree=1, seed=3)
    n = len(g)
    cols = {"nx": np.zeros(n), "ny": np.zeros(n), "nz": np.zeros(n)}
    cols.update({"x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2]})
    cols.update({f"f_dc_{c}": g.sh[:, 0, c] for c in range(3)})
    rest = g.sh[:, 1:].transpose(1, 2).reshape(n, 9)
    cols.update({f"f_rest_{i}": rest[:, i] for i in range(9)})
    cols["opacity"] = torch.logit(g.opacities)
    cols.update({f"scale_{i}": torch.log(g.scales[:, i]) for i in range(3)})
    cols.update({f"rot_{i}": g.quats[:, i] for i in range(4)})
    cols["extra_confidence"] = np.ones(n)
    order = sorted(cols)[::-1]  # any order
    rec = np.empty(n, dtype=[(k, "f8") for k in order])
    for k in order:
        rec[k] = np.asarray(cols[k], np.float64)
    path = tmp_path / "inria.ply"
    PlyData([PlyElement.describe(rec, "vertex")], text=True).write(str(path))
    assert_same(load_splat_ply(path), g, atol=1e-5)


def test_malformed_files_name_the_problem(tmp_path):
    g = random_gaussians(n=4, degree=0)
    data = splat_ply_bytes(g)
    missing = tmp_path / "missing.ply"
    missing.write_bytes(data.replace(b"property float scale_1\n", b"property float scale_X\n"))
    with pytest.raises(ValueError, match="missing.ply: vertex property 'scale_1' is missing"):
        load_splat_ply(missing)
    rest = tmp_path / "rest.ply"
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "f_rest_0", "opacity", "scale_0", "scale_1"]
    names += ["scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    rec = np.zeros(2, dtype=[(k, "f4") for k in names])
    PlyData([PlyElement.describe(rec, "vertex")]).write(str(rest))
    with pytest.raises(ValueError, match="found 1 f_rest_\\* properties; expected 0, 9, 24 or 45"):
        load_splat_ply(rest)
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"not a ply at all")
    with pytest.raises(ValueError, match="garbage.ply: not a readable PLY file"):
        load_splat_ply(garbage)
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated.ply: not a readable PLY file"):
        load_splat_ply(truncated)
    with pytest.raises(FileNotFoundError, match="nope.ply"):
        load_splat_ply(tmp_path / "nope.ply")


def test_nonfinite_gaussians_are_dropped_from_exports():
    g = random_gaussians(n=6, degree=0)
    g.means[2, 1] = float("nan")
    assert PlyData.read(io.BytesIO(splat_ply_bytes(g)))["vertex"].count == 5

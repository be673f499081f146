"""``write_reconstruction`` and ``onepass reconstruct``: every file written, read back with real readers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.services.outputs import (
    OUTPUT_NAMES,
    POINT_DROP_FRACTION,
    confident_point_ply_bytes,
    select_points,
    write_reconstruction,
)
from renderer.io.scene_layout import read_cameras, read_depth, read_image
from tests.models.conftest import images_uint8


@pytest.fixture(scope="module")
def recon(tiny_reconstructor, scene):
    return tiny_reconstructor.reconstruct(images_uint8(scene))


def test_every_output_is_written_and_readable(tmp_path, recon, scene):
    import pycolmap
    import trimesh
    from plyfile import PlyData

    from renderer.io.splat_ply import load_splat_ply
    from renderer.io.web_formats import load_spz

    names = [f"{i:03d}.png" for i in range(4)]
    files = write_reconstruction(recon, tmp_path, names, images=images_uint8(scene))
    assert sorted(files) == sorted(OUTPUT_NAMES)

    frames, extra = read_cameras(tmp_path)
    assert [f.image for f in frames] == names and extra["anchors"] == [0, 1, 2, 3]
    assert all(f.extra["anchor"] for f in frames) and frames[0].extra["depth_hw"] == [224, 224]
    np.testing.assert_allclose(frames[2].world_to_camera, recon.world_to_camera[2])
    np.testing.assert_array_equal(read_image(tmp_path, "001.png"), images_uint8(scene)[1])
    np.testing.assert_array_equal(read_depth(tmp_path, "003"), recon.depth[3])
    assert (tmp_path / "depth" / "003.png").stat().st_size > 0

    ply = PlyData.read(str(tmp_path / "points.ply"))
    assert ply["vertex"].count > 1000
    g = load_splat_ply(tmp_path / "splats.ply")
    assert len(g) == len(recon.gaussians)
    np.testing.assert_allclose(g.means.numpy(), recon.gaussians.means.numpy(), rtol=1e-6, atol=1e-6)
    assert abs(len(load_spz(tmp_path / "splats.spz")) - len(recon.gaussians)) == 0
    glb = trimesh.load(tmp_path / "scene.glb")
    assert len(glb.geometry) >= 1
    model = pycolmap.Reconstruction(str(tmp_path / "colmap" / "sparse" / "0"))
    assert model.num_images() == 4 and model.num_points3D() == ply["vertex"].count
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["files"]["splats_spz"] == "splats.spz" and report["views"] == 4


def test_points_carry_confidence_and_stay_readable(tmp_path, recon):
    """points.ply: the model's point confidence as a float property; Open3D still reads points and colours."""
    import open3d as o3d
    from plyfile import PlyData

    write_reconstruction(recon, tmp_path, [f"{i:03d}.png" for i in range(4)], outputs=["points"])
    vertex = PlyData.read(str(tmp_path / "points.ply"))["vertex"]
    assert [p.name for p in vertex.properties] == ["x", "y", "z", "red", "green", "blue", "confidence"]
    assert vertex["confidence"].dtype == np.float32
    points, colors, conf = select_points(recon)
    np.testing.assert_array_equal(vertex["confidence"], conf)
    # The lowest-confidence 20 % of the valid pixels are left out; what remains is ranked by the model.
    kept_floor = np.quantile(recon.points_conf[recon.valid], POINT_DROP_FRACTION)
    assert conf.min() >= kept_floor * (1 - 1e-6) and conf.max() > conf.min() and (conf > 1).all()
    pcd = o3d.io.read_point_cloud(str(tmp_path / "points.ply"))
    assert pcd.has_colors() and len(pcd.points) == len(points)
    np.testing.assert_allclose(np.asarray(pcd.points), points, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pcd.colors), colors / 255.0, atol=1e-6)


def test_confident_point_ply_rejects_bad_arrays():
    pts, cols = np.zeros((5, 3), np.float32), np.zeros((5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"confidence \[5\], got \[5, 3\] and \[4\]"):
        confident_point_ply_bytes(pts, cols, np.ones(4))
    with pytest.raises(ValueError, match=r"points must have shape \[N, 3\], got \[5, 2\]"):
        confident_point_ply_bytes(pts[:, :2], cols, np.ones(5))
    with pytest.raises(ValueError, match="must be finite"):
        confident_point_ply_bytes(pts, cols, np.array([1, 2, np.nan, 1, 1]))


def test_write_rejects_bad_arguments(tmp_path, recon):
    with pytest.raises(ValueError, match="image_names has 2 names for 4 views"):
        write_reconstruction(recon, tmp_path, ["a.png", "b.png"])
    with pytest.raises(ValueError, match="distinct stems"):
        write_reconstruction(recon, tmp_path, ["a.png", "a.jpg", "b.png", "c.png"])
    with pytest.raises(ValueError, match="unknown names"):
        write_reconstruction(recon, tmp_path, list("abcd"), outputs=["cameras", "mesh"])
    with pytest.raises(ValueError, match="no images were given"):
        write_reconstruction(recon, tmp_path, list("abcd"), outputs=["images"])
    assert not (tmp_path / "cameras.json").exists()


def test_cli_reconstructs_a_folder(tmp_path, scene, capsys):
    from models.data.procedural import save_scene

    src = save_scene(scene, tmp_path / "scene")
    rc = main(["reconstruct", str(src / "images"), "-o", str(tmp_path / "out"), "--device", "cpu",
               "--poses", str(src / "cameras.json"), "--max-anchors", "2",
               "--resolution", "112", "--cpu-bf16", "--refine"])  # fmt: skip
    assert rc == 0
    frames, _ = read_cameras(tmp_path / "out")
    assert frames[0].extra["depth_hw"] == [112, 112] and frames[0].width == 224
    truth, _ = read_cameras(src)
    for got, want in zip(frames, truth, strict=True):
        np.testing.assert_allclose(got.world_to_camera, want.world_to_camera, atol=1e-9)
    assert [f.extra["anchor"] for f in frames].count(True) == 2
    assert {f.extra["pose_source"] for f in frames} == {"given"}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["compression"] == "zpressor" and report["poses"]["source"] == "given"
    assert report["precision"] == "bfloat16 autocast (trunk and dense heads)"
    # --refine arrived: given poses are kept as they are (above), only depth is fitted to them
    assert report["refinement"]["status"] == "done"
    assert report["refinement"]["method"] == "sift+triangulation (given cameras)"
    assert "wrote" in capsys.readouterr().out


def test_cli_errors_name_the_argument(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert "IMAGES: not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["reconstruct", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert "no image files" in capsys.readouterr().err
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"not an image")
    assert main(["reconstruct", str(tmp_path / "imgs"), "-o", str(tmp_path / "o")]) == 2
    assert "a.png" in capsys.readouterr().err
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"junk")
    from PIL import Image

    Image.new("RGB", (32, 24)).save(tmp_path / "imgs" / "a.png")
    args = ["reconstruct", str(tmp_path / "imgs"), "-o", str(tmp_path / "o"), "--weights", str(bad)]
    assert main(args) == 2
    assert "--weights" in capsys.readouterr().err
    assert main([*args[:4], "--poses", str(tmp_path / "nope.json")]) == 2
    assert "--poses: file not found" in capsys.readouterr().err
    assert main([*args[:4], "--resolution", "100"]) == 2
    assert "--resolution must be a multiple of the patch size 14 from 28 to 1036" in capsys.readouterr().err

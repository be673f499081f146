"""Point-cloud PLY (Open3D), GLB (trimesh) and COLMAP (pycolmap) exports read back by their own tools."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from renderer.conventions import look_at
from renderer.io.colmap import write_colmap_model
from renderer.io.glb import frustum_corners, scene_glb_bytes
from renderer.io.pointcloud import point_ply_bytes, save_point_ply
from renderer.io.scene_layout import Frame


def _cloud(n: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.integers(0, 256, size=(n, 3), dtype=np.uint8)


def _frames(count: int = 3) -> list[Frame]:
    frames = []
    for i in range(count):
        eye = torch.tensor([3.0 * np.sin(0.4 * i), 0.2 * i, -3.0 * np.cos(0.4 * i)], dtype=torch.float64)
        w2c = look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, -1.0, 0.0])).numpy()
        K = np.array([[500.0 + i, 0, 320.5], [0, 505.0, 240.25 - i], [0, 0, 1]])
        frames.append(Frame(f"{i:03d}.png", 640, 480, K, w2c))
    return frames


def test_open3d_reads_point_cloud_colours(tmp_path):
    o3d = pytest.importorskip("open3d")
    pts, cols = _cloud()
    pts[5] = np.nan  # dropped
    path = save_point_ply(pts, cols, tmp_path / "points.ply")
    pc = o3d.io.read_point_cloud(str(path))
    keep = np.isfinite(pts).all(1)
    np.testing.assert_allclose(np.asarray(pc.points), pts[keep], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pc.colors), cols[keep] / 255.0, atol=1e-9)
    with pytest.raises(ValueError, match="colors_uint8 must have shape \\[100, 3\\]"):
        point_ply_bytes(pts, cols[:10])
    with pytest.raises(ValueError, match="colors_uint8 must be in \\[0, 255\\]"):
        point_ply_bytes(pts, cols.astype(np.int32) * 2)


def test_glb_has_points_and_frustums_in_gltf_axes():
    trimesh = pytest.importorskip("trimesh")
    pts, cols = _cloud(50)
    frames = _frames()
    w2c = np.stack([f.world_to_camera for f in frames])
    K = np.stack([f.K for f in frames])
    data = scene_glb_bytes(pts, cols, w2c, K, [(480, 640)] * 3)
    assert data[:4] == b"glTF"
    scene = trimesh.load(io.BytesIO(data), file_type="glb")
    clouds = [g for g in scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    meshes = [g for name, g in scene.geometry.items() if name.startswith("camera_")]
    assert len(clouds) == 1 and len(meshes) == 3
    flip = np.diag([1.0, -1.0, -1.0])
    # the point cloud went through OpenCV → glTF (y and z negated)
    got = np.asarray(clouds[0].vertices)
    order = np.lexsort(got.T)
    want = pts @ flip
    np.testing.assert_allclose(got[order], want[np.lexsort(want.T)], rtol=1e-5, atol=1e-6)
    assert {tuple(c[:3]) for c in np.asarray(clouds[0].colors)} == {tuple(c) for c in cols}
    apexes = np.stack([np.asarray(m.vertices)[0] for m in meshes])
    for f in frames:
        centre = -f.world_to_camera[:3, :3].T @ f.world_to_camera[:3, 3]
        assert np.isclose(apexes, flip @ centre, atol=1e-5).all(1).any()


def test_frustum_corners_project_to_image_corners():
    f = _frames(1)[0]
    corners = frustum_corners(f.world_to_camera, f.K, (480, 640), depth=2.0)
    cam = corners[1:] @ f.world_to_camera[:3, :3].T + f.world_to_camera[:3, 3]
    np.testing.assert_allclose(cam[:, 2], 2.0)
    pix = (f.K @ (cam / cam[:, 2:]).T).T[:, :2]
    np.testing.assert_allclose(pix, [[0, 0], [640, 0], [640, 480], [0, 480]], atol=1e-9)


@pytest.mark.parametrize("binary,text", [(True, False), (False, True)])
def test_pycolmap_reads_model_with_exact_poses_and_intrinsics(tmp_path, binary, text):
    pycolmap = pytest.importorskip("pycolmap")
    frames = _frames()
    pts, cols = _cloud(40)
    out = tmp_path / "sparse" / "0"
    written = write_colmap_model(out, frames, pts, cols, binary=binary, text=text)
    assert {p.suffix for p in written} == {".bin" if binary else ".txt"}
    rec = pycolmap.Reconstruction()
    (rec.read_binary if binary else rec.read_text)(str(out))
    assert len(rec.images) == 3 and len(rec.cameras) == 3 and len(rec.points3D) == 40
    for i, f in enumerate(frames):
        image = rec.images[i + 1]
        assert image.name == f.image
        cam = rec.cameras[image.camera_id]
        assert cam.model_name == "PINHOLE" and (cam.width, cam.height) == (640, 480)
        np.testing.assert_allclose(cam.calibration_matrix(), f.K, atol=1e-6)
        np.testing.assert_allclose(image.cam_from_world().matrix(), f.world_to_camera[:3], atol=1e-6)
    got = sorted((tuple(np.round(p.xyz, 9)), tuple(p.color)) for p in rec.points3D.values())
    want = sorted((tuple(np.round(x, 9)), tuple(c)) for x, c in zip(pts, cols, strict=True))
    assert [g[1] for g in got] == [w[1] for w in want]
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], atol=1e-9)


def test_colmap_rejects_bad_input(tmp_path):
    frames = _frames(1)
    with pytest.raises(ValueError, match="frames must not be empty"):
        write_colmap_model(tmp_path, [], np.zeros((0, 3)), np.zeros((0, 3)))
    frames[0].image = "my image.png"
    with pytest.raises(ValueError, match="'my image.png' contains whitespace"):
        write_colmap_model(tmp_path, frames, np.zeros((0, 3)), np.zeros((0, 3)))

"""The viewer's point-cloud PLY reader (web/static/js/viewer/ply.js) on files written by plyfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement


def _write(path: Path, points: np.ndarray, colors: np.ndarray, conf: np.ndarray | None, **kw) -> None:
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if conf is not None:
        fields.append(("confidence", "f4"))
    v = np.empty(len(points), dtype=fields)
    v["x"], v["y"], v["z"] = points.T
    v["red"], v["green"], v["blue"] = colors.T
    if conf is not None:
        v["confidence"] = conf
    # A face element before the vertices checks that the reader skips other elements correctly.
    face = np.array([([0, 1, 2],)], dtype=[("vertex_indices", "i4", (3,))])
    elements = [PlyElement.describe(face, "face"), PlyElement.describe(v, "vertex")]
    PlyData(elements, **kw).write(str(path))


@pytest.mark.parametrize(
    ("text", "byte_order"), [(False, "<"), (False, ">"), (True, "=")], ids=["binary-le", "binary-be", "ascii"]
)
def test_reads_points_colours_and_confidence(run_js, tmp_path: Path, text: bool, byte_order: str) -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(257, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (257, 3), dtype=np.uint8)
    conf = rng.uniform(1, 5, 257).astype(np.float32)
    path = tmp_path / "points.ply"
    _write(path, pts, cols, conf, text=text, byte_order=byte_order)
    got = run_js("ply", {"path": str(path), "name": "points.ply"})
    assert got["count"] == 257
    np.testing.assert_allclose(np.reshape(got["positions"], (-1, 3)), pts, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.reshape(got["colors"], (-1, 3)), cols / 255.0, atol=1e-6)
    np.testing.assert_allclose(got["confidence"], conf, rtol=1e-6)
    assert got["confidenceName"] == "confidence"


def test_no_confidence_property(run_js, tmp_path: Path) -> None:
    path = tmp_path / "points.ply"
    _write(path, np.zeros((3, 3), np.float32), np.zeros((3, 3), np.uint8), None)
    got = run_js("ply", {"path": str(path), "name": "points.ply"})
    assert got["count"] == 3 and got["confidence"] is None


def test_errors_name_the_file(run_js, tmp_path: Path) -> None:
    path = tmp_path / "points.ply"
    _write(path, np.zeros((50, 3), np.float32), np.zeros((50, 3), np.uint8), None)
    data = path.read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[: len(data) - 40])
    (tmp_path / "junk.ply").write_bytes(b"not a ply at all")
    cut = run_js("ply", {"path": str(tmp_path / "cut.ply"), "name": "cut.ply"})
    assert cut["error"] == "cut.ply: file is truncated"
    junk = run_js("ply", {"path": str(tmp_path / "junk.ply"), "name": "junk.ply"})
    assert junk["error"] == "junk.ply: not a PLY file (no 'ply' header)"

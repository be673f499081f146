"""COLMAP sparse models (``cameras``, ``images``, ``points3D`` as .bin and/or .txt), PINHOLE cameras.

COLMAP shares our conventions: world→camera poses (quaternion w-first + translation), OpenCV camera axes
and pixel centres at +0.5, so ``K`` and ``world_to_camera`` transfer unchanged. One camera per frame
(``CAMERA_ID = IMAGE_ID = index + 1``); images carry no 2D points and points no tracks — enough for
Gaussian-splatting trainers and viewers, which read poses, intrinsics and the coloured points.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from renderer.conventions import rotmat_to_quat
from renderer.io.scene_layout import Frame, atomic_write_bytes

_PINHOLE = 1  # COLMAP camera model id


def _rows(frames: Sequence[Frame], points: np.ndarray, colors: np.ndarray):
    cams = [
        (i + 1, f.width, f.height, [f.K[0, 0], f.K[1, 1], f.K[0, 2], f.K[1, 2]]) for i, f in enumerate(frames)
    ]
    R = torch.from_numpy(np.stack([np.asarray(f.world_to_camera, np.float64)[:3, :3] for f in frames]))
    quats = rotmat_to_quat(R).numpy()
    images = [
        (i + 1, quats[i], np.asarray(f.world_to_camera, np.float64)[:3, 3], i + 1, f.image)
        for i, f in enumerate(frames)
    ]
    return cams, images, (points, colors)


#: one ``points3D.bin`` record with an empty track: id, xyz, rgb, reprojection error, track length
_POINT_RECORD = np.dtype(
    [("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("track_length", "<u8")]
)


def _binary(cams, images, pts) -> dict[str, bytes]:
    cam = [struct.pack("<Q", len(cams))]
    for cid, w, h, params in cams:
        cam.append(struct.pack("<IiQQ4d", cid, _PINHOLE, w, h, *params))
    img = [struct.pack("<Q", len(images))]
    for iid, q, t, cid, name in images:
        img.append(struct.pack("<I7dI", iid, *q, *t, cid) + name.encode() + b"\x00" + struct.pack("<Q", 0))
    xyz, rgb = pts
    records = np.zeros(len(xyz), _POINT_RECORD)  # packed: the same bytes as struct "<Q3d3BdQ" per point
    records["id"] = np.arange(1, len(xyz) + 1)
    records["xyz"] = xyz
    records["rgb"] = rgb
    p3d = struct.pack("<Q", len(xyz)) + records.tobytes()
    return {"cameras.bin": b"".join(cam), "images.bin": b"".join(img), "points3D.bin": p3d}


def _text(cams, images, pts) -> dict[str, bytes]:
    cam = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    cam += [
        f"{cid} PINHOLE {w} {h} " + " ".join(repr(float(p)) for p in params) for cid, w, h, params in cams
    ]
    img = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
    ]
    for iid, q, t, cid, name in images:
        img += [f"{iid} " + " ".join(repr(float(v)) for v in (*q, *t)) + f" {cid} {name}", ""]
    p3d = [
        "# 3D point list with one line of data per point:",
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[]",
    ]
    p3d += [
        f"{pid} " + " ".join(repr(float(v)) for v in xyz) + " " + " ".join(str(int(c)) for c in rgb) + " 0"
        for pid, (xyz, rgb) in enumerate(zip(*pts, strict=True), start=1)
    ]
    return {name: ("\n".join(lines) + "\n").encode() for name, lines in
            (("cameras.txt", cam), ("images.txt", img), ("points3D.txt", p3d))}  # fmt: skip


def write_colmap_model(
    out_dir: str | os.PathLike,
    frames: Sequence[Frame],
    points: np.ndarray | torch.Tensor,  # [N, 3]
    colors_uint8: np.ndarray | torch.Tensor,  # [N, 3]
    *,
    binary: bool = True,
    text: bool = False,
) -> list[Path]:
    """Write a COLMAP model into ``out_dir`` (e.g. ``.../sparse/0``); returns the files written.

    Raises:
        ValueError: no frames, neither format asked for, bad point/colour shapes, or an image name with
            whitespace (COLMAP's text format cannot hold it).
    """
    if not frames:
        raise ValueError("frames must not be empty")
    if not (binary or text):
        raise ValueError("at least one of binary=True or text=True is needed")
    pts = (
        points.detach().cpu().double().numpy()
        if isinstance(points, torch.Tensor)
        else np.asarray(points, float)
    )
    cols = colors_uint8.cpu().numpy() if isinstance(colors_uint8, torch.Tensor) else np.asarray(colors_uint8)
    if pts.ndim != 2 or pts.shape[1] != 3 or cols.shape != pts.shape:
        raise ValueError(
            f"points and colors_uint8 must both be [N, 3], got {list(pts.shape)}, {list(cols.shape)}"
        )
    for f in frames:
        if any(ch.isspace() for ch in f.image):
            raise ValueError(
                f"frame image name {f.image!r} contains whitespace, which COLMAP files cannot hold"
            )
    keep = np.isfinite(pts).all(1)
    rows = _rows(frames, pts[keep], np.clip(cols[keep], 0, 255).astype(np.uint8))
    files: dict[str, bytes] = {}
    if binary:
        files.update(_binary(*rows))
    if text:
        files.update(_text(*rows))
    out = Path(out_dir)
    written = []
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    return written

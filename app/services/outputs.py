"""Write a :class:`~models.reconstruct.Reconstruction` to disk in the scene layout plus every export.

::

    OUT/
      images/<name>           input images at their original size (when given)
      cameras.json            scene layout (OpenCV, K at the original size) + per frame "anchor",
                              "anchor_view", "pose_source" (predicted, refined, reference or given),
                              "depth_hw", "K_depth" (intrinsics of the depth map)
      depth/<stem>.npy        float32 z-depth at the model resolution (0 = no depth)
      depth/<stem>.png        the same, colour-mapped (turbo, 2–98 % range) for people
      points.ply              confident depth points, coloured, with their float "confidence"
      splats.ply              3D Gaussians (3DGS PLY)
      splats.spz              3D Gaussians (Niantic spz)
      scene.glb               points + camera frusta
      colmap/sparse/0/        cameras/images/points3D (PINHOLE, binary)
      report.json             the reconstruction report and the list of files

Each file is written atomically; ``report.json`` comes last. The exporters are the renderer's
(``renderer.io``); this module only chooses what goes in, except ``points.ply``, which is the renderer's
layout plus one vertex property, the model's point confidence (:func:`confident_point_ply_bytes`).
"""

from __future__ import annotations

import functools
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from models.reconstruct import NonFiniteOutputError, Reconstruction
from renderer.io.colmap import write_colmap_model
from renderer.io.glb import scene_glb_bytes
from renderer.io.scene_layout import Frame, atomic_write_bytes, write_cameras, write_depth, write_image
from renderer.io.splat_ply import save_splat_ply
from renderer.io.web_formats import spz_bytes

#: Every output name, in writing order.
OUTPUT_NAMES = ("images", "cameras", "depth", "points", "splats_ply", "splats_spz", "glb", "colmap", "report")

#: Threads writing outputs at once (each output is one task; most time is spent outside the GIL).
WRITER_THREADS = 4
#: Cap on exported points (random, seeded subsample, as VGGT's COLMAP demo): keeps PLY/GLB/COLMAP small.
MAX_POINTS = 100_000
#: Share of the lowest-confidence valid depth pixels left out of the point exports.
POINT_DROP_FRACTION = 0.2


def select_points(
    recon: Reconstruction, *, max_points: int = MAX_POINTS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident, finite world points, their uint8 colours and confidences.

    Returns:
        points ``[N, 3]`` float32, colours ``[N, 3]`` uint8 and the model's point confidence ``[N]``
        float32 (``points_conf``, above 1; higher is surer).
    """
    depth = recon.depth.reshape(-1)
    conf = recon.points_conf.reshape(-1)
    # a point is finite where its depth is (cameras are checked finite before a Reconstruction exists)
    keep = recon.valid.reshape(-1) & np.isfinite(depth) & np.isfinite(conf) & (depth > 0)
    if keep.any() and POINT_DROP_FRACTION > 0:
        keep &= conf >= np.quantile(conf[keep], POINT_DROP_FRACTION)
    idx = np.flatnonzero(keep)
    if idx.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    pts = recon.points_at(idx)  # only the chosen pixels are lifted, not every view's whole map
    return pts, recon.rgb.reshape(-1, 3)[idx], conf[idx].astype(np.float32)


def confident_point_ply_bytes(points: np.ndarray, colors_uint8: np.ndarray, confidence: np.ndarray) -> bytes:
    """Binary PLY of ``points [N, 3]``, ``colors_uint8 [N, 3]`` and ``confidence [N]``.

    The vertex layout of ``renderer.io.pointcloud.point_ply_bytes`` (``x y z`` float, ``red green blue``
    uchar, which Open3D, MeshLab and CloudCompare read) followed by ``float confidence``, which the
    viewer's slider filters on and other readers ignore or keep as a scalar field.

    Raises:
        ValueError: shapes other than ``[N, 3]``, ``[N, 3]``, ``[N]``, or non-finite values.
    """
    pts, cols, conf = np.asarray(points), np.asarray(colors_uint8), np.asarray(confidence)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3], got {list(pts.shape)}")
    if cols.shape != pts.shape or conf.shape != pts.shape[:1]:
        raise ValueError(
            f"colors_uint8 must have shape {list(pts.shape)} and confidence [{len(pts)}], "
            f"got {list(cols.shape)} and {list(conf.shape)}"
        )
    if not (np.isfinite(pts).all() and np.isfinite(conf).all()):
        raise ValueError("points and confidence must be finite (select_points keeps finite ones only)")
    rec = np.empty(len(pts), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3), ("confidence", "<f4")])
    rec["xyz"], rec["rgb"], rec["confidence"] = pts, cols.astype(np.uint8), conf
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(rec)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "property float confidence\nend_header\n"
    )
    return header.encode("ascii") + rec.tobytes()


def depth_png_bytes(depth: np.ndarray, valid: np.ndarray) -> bytes:
    """``[h, w]`` depth → PNG bytes, turbo colour map over the 2–98 % range of valid depths; invalid black."""
    ok = valid & np.isfinite(depth) & (depth > 0)
    rgb = np.zeros(depth.shape + (3,), dtype=np.uint8)
    if ok.any():
        lo, hi = np.percentile(depth[ok], [2, 98])
        level = np.clip((depth[ok] - lo) / max(hi - lo, 1e-12) * 255 + 0.5, 0, 255).astype(np.uint8)
        rgb[ok] = _turbo_lut()[level]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@functools.cache
def _turbo_lut() -> np.ndarray:
    """``[256, 3]`` uint8 turbo colour map (one matplotlib call, then table look-ups)."""
    from matplotlib import colormaps

    return (colormaps["turbo"](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def _check(recon: Reconstruction, image_names: list[str], images: list[np.ndarray] | None) -> None:
    S = recon.num_views
    if len(image_names) != S:
        raise ValueError(f"image_names has {len(image_names)} names for {S} views")
    stems = [Path(n).stem for n in image_names]
    if len(set(stems)) != S:
        raise ValueError("image_names must have distinct stems (depth maps are named by stem)")
    if images is not None and len(images) != S:
        raise ValueError(f"images has {len(images)} arrays for {S} views")
    for name, arr in (("world_to_camera", recon.world_to_camera), ("K", recon.K)):
        if not np.isfinite(arr).all():
            raise NonFiniteOutputError(f"reconstruction has non-finite {name}; refusing to write it")


def write_reconstruction(
    recon: Reconstruction,
    out_dir: str | os.PathLike,
    image_names: list[str],
    outputs: list[str] | tuple[str, ...] | None = None,
    *,
    images: list[np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write the chosen outputs (default: all) and return ``{output name: path}``.

    Args:
        recon: the reconstruction.
        out_dir: folder (created).
        image_names: one file name per view (``images/<name>``, stems name the depth maps).
        outputs: subset of :data:`OUTPUT_NAMES`; ``"images"`` needs ``images``.
        images: the original ``[H, W, 3]`` uint8 images, to complete the scene layout.

    Raises:
        ValueError: unknown output names or inconsistent arguments.
        NonFiniteOutputError: the reconstruction holds non-finite cameras (nothing is written).
    """
    wanted = list(OUTPUT_NAMES if outputs is None else outputs)
    unknown = sorted(set(wanted) - set(OUTPUT_NAMES))
    if unknown:
        raise ValueError(f"outputs: unknown names {unknown}; choose from {list(OUTPUT_NAMES)}")
    if images is None and outputs is None:
        wanted.remove("images")
    elif images is None and "images" in wanted:
        raise ValueError("outputs: 'images' requested but no images were given")
    _check(recon, image_names, images)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    anchors = set(recon.anchors)
    pose_sources = recon.pose_sources
    frames = [
        Frame(
            image=name,
            width=int(hw[1]),
            height=int(hw[0]),
            K=recon.K[i],
            world_to_camera=recon.world_to_camera[i],
            extra={
                "anchor": i in anchors,
                "anchor_view": int(recon.assignment[i]),
                "pose_source": pose_sources[i],
                "depth_hw": [int(recon.depth.shape[1]), int(recon.depth.shape[2])],
                "K_depth": np.asarray(recon.K_model[i], dtype=np.float64).tolist(),
            },
        )
        for i, (name, hw) in enumerate(zip(image_names, recon.image_hw, strict=True))
    ]
    points = colors = confidence = None
    if {"points", "glb", "colmap"} & set(wanted):
        points, colors, confidence = select_points(recon)

    def write_one(name: str) -> Path:
        """Write output ``name``; returns its path (a file or a folder)."""
        if name == "images":
            for fname, img in zip(image_names, images, strict=True):
                write_image(out, fname, img)
            return out / "images"
        if name == "cameras":
            return write_cameras(
                out,
                frames,
                source="onepass reconstruct",
                preset=recon.report.get("preset"),
                anchors=recon.anchors,
            )
        if name == "depth":
            for i, fname in enumerate(image_names):
                stem = Path(fname).stem
                write_depth(out, stem, recon.depth[i])
                atomic_write_bytes(
                    out / "depth" / f"{stem}.png", depth_png_bytes(recon.depth[i], recon.valid[i])
                )
            return out / "depth"
        if name == "points":
            atomic_write_bytes(out / "points.ply", confident_point_ply_bytes(points, colors, confidence))
            return out / "points.ply"
        if name == "splats_ply":
            return save_splat_ply(recon.gaussians, out / "splats.ply")
        if name == "splats_spz":
            atomic_write_bytes(out / "splats.spz", spz_bytes(recon.gaussians))
            return out / "splats.spz"
        if name == "glb":
            hws = [tuple(hw) for hw in recon.image_hw]
            glb = scene_glb_bytes(points, colors, recon.world_to_camera, recon.K, hws)
            atomic_write_bytes(out / "scene.glb", glb)
            return out / "scene.glb"
        assert name == "colmap", name
        folder = out / "colmap" / "sparse" / "0"
        folder.mkdir(parents=True, exist_ok=True)
        write_colmap_model(folder, frames, points, colors, binary=True, text=False)
        return folder

    # The encoders spend their time in zlib, numpy, Pillow and file writes, which release the GIL, so the
    # files are written by a few threads at once; report.json comes last and lists what was written.
    files = [name for name in wanted if name != "report"]
    with ThreadPoolExecutor(max_workers=max(1, min(WRITER_THREADS, len(files)))) as pool:
        futures = {name: pool.submit(write_one, name) for name in files}
    written: dict[str, Path] = {name: futures[name].result() for name in files}  # re-raises a failure
    if "report" in wanted:
        written["report"] = out / "report.json"
        doc = dict(recon.report)
        doc["files"] = {k: str(v.relative_to(out)) for k, v in written.items()}
        atomic_write_bytes(written["report"], json.dumps(doc, indent=1, default=_json_default).encode())
    return written


def _json_default(obj):
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

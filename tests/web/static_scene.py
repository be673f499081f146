"""A reconstruction with exact geometry for viewer tests: a procedural scene turned into Gaussians.

Every valid pixel of every view becomes one small isotropic Gaussian at its true depth with its true
colour, so drawing the Gaussians from an input camera must reproduce that input photo. Served by a small
read-only app with the API's read routes for finished jobs, plus the real page routes (``install``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from app.services.outputs import confident_point_ply_bytes
from app.web import install
from renderer.io.scene_layout import Frame, atomic_write_bytes, write_cameras, write_image
from renderer.io.splat_ply import save_splat_ply
from renderer.io.web_formats import save_spz
from renderer.types import Gaussians


def _unproject(depth: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    """``[H, W]`` z-depth → ``[H, W, 3]`` world points at pixel centres (OpenCV)."""
    H, W = depth.shape
    v, u = np.mgrid[0:H, 0:W] + 0.5
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    cam = np.stack([x, y, depth], -1)
    c2w = np.linalg.inv(w2c)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


#: cameras.json "pose_source" of the static scene's views (exact cameras; the labels exercise the viewer)
_POSE_SOURCES = ["reference", "refined", "predicted", "predicted", "predicted", "predicted", "predicted"]


def write_static_reconstruction(
    scene, out: Path, *, stride: int = 1, splat_formats: tuple[str, ...] = ("ply",)
) -> None:
    """Write ``inputs/<name>`` (the input photos) and ``artifacts/`` as the service does: ``cameras.json``,
    ``splats.ply`` and/or ``splats.spz`` (the renderer's writers) and ``points.ply`` (the service's writer,
    :func:`app.services.outputs.confident_point_ply_bytes`), whose ``confidence`` is here the view number
    (1, 2, 3 …) so that the viewer's slider has a known effect.

    Args:
        scene: a ``models.data.procedural.Scene``.
        out: job folder to fill.
        stride: keep every ``stride``-th pixel per axis (each Gaussian then covers ``stride`` pixels).
        splat_formats: which of "ply" and "spz" to write.
    """
    arts = out / "artifacts"
    arts.mkdir(parents=True, exist_ok=True)
    names = [f"{i:03d}.png" for i in range(scene.num_views)]
    for name, img in zip(names, scene.images, strict=True):
        write_image(out, name, img)  # → images/<name>
    (out / "images").rename(out / "inputs")
    frames = [
        Frame(
            n,
            scene.width,
            scene.height,
            scene.K[i],
            scene.world_to_camera[i],
            {"anchor": i == 0, "pose_source": source},
        )
        for i, (n, source) in enumerate(zip(names, _POSE_SOURCES[: len(names)], strict=True))
    ]
    write_cameras(arts, frames)

    means, colors, radii, conf = [], [], [], []
    for i in range(scene.num_views):
        pts = _unproject(scene.depth[i], scene.K[i], scene.world_to_camera[i])[::stride, ::stride]
        ok = scene.valid[i][::stride, ::stride]
        means.append(pts[ok])
        colors.append(scene.images[i][::stride, ::stride][ok])
        # Footprint of `stride` pixels at that depth, so neighbours overlap a little.
        radii.append(scene.depth[i][::stride, ::stride][ok] * stride * 0.6 / scene.K[i][0, 0])
        conf.append(np.full(int(ok.sum()), float(i + 1), np.float32))
    means = np.concatenate(means).astype(np.float32)
    colors = np.concatenate(colors).astype(np.float32)
    radii = np.concatenate(radii).astype(np.float32)
    n = len(means)

    g = Gaussians(
        means=torch.from_numpy(means),
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 4).contiguous(),
        scales=torch.from_numpy(radii)[:, None].expand(n, 3).contiguous(),
        opacities=torch.full((n,), 0.98),
        sh=Gaussians.rgb_to_sh0(torch.from_numpy(colors)),
    )
    if "ply" in splat_formats:
        save_splat_ply(g, arts / "splats.ply")
    if "spz" in splat_formats:
        save_spz(g, arts / "splats.spz")

    rgb8 = (np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8)
    atomic_write_bytes(arts / "points.ply", confident_point_ply_bytes(means, rgb8, np.concatenate(conf)))


def make_static_app(jobs_root: Path, *, web_dir: Path | None = None) -> FastAPI:
    """The API's read routes (job, artifacts, inputs) for finished jobs under ``jobs_root/<id>/`` and the
    real pages."""
    app = FastAPI(docs_url=None, redoc_url=None)
    media = {".json": "application/json", ".ply": "application/octet-stream", ".png": "image/png"}

    def job_dir(job_id: str) -> Path:
        d = jobs_root / job_id
        if not job_id.isalnum() or not d.is_dir():
            raise HTTPException(404, detail=f"no reconstruction '{job_id}'")
        return d

    @app.get("/v1/reconstructions/{job_id}")
    def job(job_id: str) -> dict:
        d = job_dir(job_id)
        names = sorted(p.name for p in (d / "inputs").iterdir())
        return {"id": job_id, "status": "succeeded", "stage": "done", "progress": 1.0, "image_names": names}

    @app.get("/v1/reconstructions/{job_id}/artifacts")
    def artifacts(job_id: str) -> dict:
        d = job_dir(job_id) / "artifacts"
        items = [
            {
                "name": p.relative_to(d).as_posix(),
                "size": p.stat().st_size,
                "media_type": media.get(p.suffix, "application/octet-stream"),
                "url": f"/v1/reconstructions/{job_id}/artifacts/{p.relative_to(d).as_posix()}",
            }
            for p in sorted(d.rglob("*"))
            if p.is_file()
        ]
        return {"job_id": job_id, "items": items}

    @app.get("/v1/reconstructions/{job_id}/artifacts/{name:path}")
    def artifact(job_id: str, name: str) -> FileResponse:
        arts = job_dir(job_id) / "artifacts"
        path = (arts / name).resolve()
        if not path.is_relative_to(arts.resolve()) or not path.is_file():
            raise HTTPException(404, detail=f"no artifact '{name}'")
        return FileResponse(path, media_type=media.get(path.suffix, "application/octet-stream"))

    @app.get("/v1/reconstructions/{job_id}/inputs/{name}")
    def input_image(job_id: str, name: str) -> FileResponse:
        path = job_dir(job_id) / "inputs" / name
        if "/" in name or not path.is_file():
            raise HTTPException(404, detail=f"input image '{name}' not found")
        return FileResponse(path, media_type="image/png")

    install(app, web_dir=web_dir)
    return app


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())

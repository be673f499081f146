"""Request and response bodies of the HTTP API (pydantic), with the validation of camera matrices.

Matrices travel as nested JSON lists: ``K`` ``[3, 3]`` in pixels of the image it belongs to (pixel
centres at +0.5), ``world_to_camera`` ``[4, 4]`` (OpenCV axes), as in ``renderer.conventions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
RIGID_TOL = 1e-3


def check_intrinsics(value: list[list[float]], where: str) -> np.ndarray:
    """``[3, 3]`` finite pinhole K with positive focal lengths and last row ``[0, 0, 1]``."""
    K = np.asarray(value, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"{where} must be a 3x3 matrix, got shape {list(K.shape)}")
    if not np.isfinite(K).all():
        raise ValueError(f"{where} has non-finite entries")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{where} needs positive focal lengths, got fx={K[0, 0]:g}, fy={K[1, 1]:g}")
    if np.abs(K[2] - [0.0, 0.0, 1.0]).max() > 1e-9 or K[1, 0] != 0:
        raise ValueError(f"{where} must have the form [[fx, s, cx], [0, fy, cy], [0, 0, 1]]")
    return K


def check_rigid(value: list[list[float]], where: str) -> np.ndarray:
    """``[4, 4]`` finite rigid transform: rotation block orthonormal, det +1, last row ``[0, 0, 0, 1]``."""
    T = np.asarray(value, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"{where} must be a 4x4 matrix, got shape {list(T.shape)}")
    if not np.isfinite(T).all():
        raise ValueError(f"{where} has non-finite entries")
    if np.abs(T[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-9:
        raise ValueError(f"{where} must have last row [0, 0, 0, 1], got {T[3].tolist()}")
    R = T[:3, :3]
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    if err > RIGID_TOL or np.linalg.det(R) < 0:
        raise ValueError(
            f"{where} is not rigid: its 3x3 block must be a rotation (R^T R = I within {RIGID_TOL}, det +1); "
            f"max |R^T R - I| = {err:.3g}, det = {np.linalg.det(R):.3g}"
        )
    return T


class ReconstructionOptions(BaseModel):
    """The JSON ``options`` form field of an upload (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="model preset; default: the one the server loaded")
    max_anchors: int = Field(8, ge=1, le=64, description="ZPressor anchor views (compression bound)")
    resolution: int | None = Field(
        None, ge=28, le=1036, description="model input width in pixels (multiple of the patch size)"
    )
    outputs: list[str] | None = Field(None, description="artifact groups to write; default all")
    intrinsics: list[list[list[float]]] | None = Field(None, description="per image K [3, 3] in its pixels")
    poses: list[list[list[float]]] | None = Field(None, description="per image world_to_camera [4, 4]")
    video_fps: float | None = Field(None, gt=0, le=60, description="frames sampled per second of video")
    refine: bool = Field(
        False,
        description="refine the predicted cameras with SIFT matches, the predicted depth, PnP and bundle "
        "adjustment (slower; much better cameras from the built-in model); with given poses the cameras "
        "stay and each depth map is fitted to matches triangulated with them",
    )

    @field_validator("intrinsics")
    @classmethod
    def _intrinsics(cls, v: list | None) -> list | None:
        if v is not None:
            for i, K in enumerate(v):
                check_intrinsics(K, f"intrinsics[{i}]")
        return v

    @field_validator("poses")
    @classmethod
    def _poses(cls, v: list | None) -> list | None:
        if v is not None:
            for i, T in enumerate(v):
                check_rigid(T, f"poses[{i}]")
        return v

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        from app.services.pipeline import OUTPUT_GROUPS

        bad = [o for o in v if o not in OUTPUT_GROUPS]
        if bad:
            raise ValueError(f"unknown outputs {bad}; choose from {list(OUTPUT_GROUPS)}")
        return list(dict.fromkeys(v))

    def check_counts(self, num_images: int) -> None:
        """Intrinsics and poses, when given, must come one per image."""
        for name in ("intrinsics", "poses"):
            got = getattr(self, name)
            if got is not None and len(got) != num_images:
                raise ValueError(f"options.{name} has {len(got)} entries for {num_images} images")


class JobLinks(BaseModel):
    self: str
    events: str
    artifacts: str
    render: str


class JobPublic(BaseModel):
    id: str
    status: JobStatus
    stage: str
    progress: float = Field(ge=0, le=1)
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    attempts: int
    num_images: int
    image_names: list[str]
    options: dict
    timings: dict[str, float]
    batch_id: str | None = None
    scene: str | None = None
    links: JobLinks


class JobsPublic(BaseModel):
    items: list[JobPublic]
    total: int
    limit: int
    offset: int


class ArtifactPublic(BaseModel):
    name: str
    size: int
    etag: str
    media_type: str
    url: str


class ArtifactsPublic(BaseModel):
    job_id: str
    items: list[ArtifactPublic]


class CameraPublic(BaseModel):
    image: str
    width: int
    height: int
    K: list[list[float]]
    world_to_camera: list[list[float]]
    anchor: bool | None = None


class SyncReconstructionPublic(BaseModel):
    """``POST /v1/reconstruct``: the finished job, its cameras and links to every artifact."""

    job: JobPublic
    cameras: list[CameraPublic]
    artifacts: list[ArtifactPublic]


class RenderCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    K: list[list[float]]
    world_to_camera: list[list[float]]
    width: int = Field(ge=1)
    height: int = Field(ge=1)

    @field_validator("K")
    @classmethod
    def _k(cls, v: list) -> list:
        check_intrinsics(v, "camera.K")
        return v

    @field_validator("world_to_camera")
    @classmethod
    def _t(cls, v: list) -> list:
        check_rigid(v, "camera.world_to_camera")
        return v


class RenderPath(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["orbit", "spiral", "inputs"]
    frames: int = Field(30, ge=1)
    width: int | None = Field(None, ge=1, description="default: the first input image's width")
    height: int | None = Field(None, ge=1)
    format: Literal["zip", "mp4"] = "zip"
    fps: float = Field(24.0, gt=0, le=120)


class RenderRequest(BaseModel):
    """Exactly one of ``camera`` (→ PNG) or ``path`` (→ zip of PNGs or MP4)."""

    model_config = ConfigDict(extra="forbid")

    camera: RenderCamera | None = None
    path: RenderPath | None = None
    background: tuple[float, float, float] | None = Field(None, description="RGB in [0, 1]; default black")

    @model_validator(mode="after")
    def _one(self) -> RenderRequest:
        if (self.camera is None) == (self.path is None):
            raise ValueError("give exactly one of 'camera' or 'path'")
        if self.background is not None and not all(np.isfinite(c) and 0 <= c <= 1 for c in self.background):
            raise ValueError(f"background must be 3 numbers in [0, 1], got {list(self.background)}")
        return self


class BatchManifest(BaseModel):
    """``POST /v1/batches`` as JSON: folders under the server's ``ONEPASS_BATCH_ROOT``, one job each."""

    model_config = ConfigDict(extra="forbid")

    folders: list[str] = Field(min_length=1)
    options: ReconstructionOptions = Field(default_factory=ReconstructionOptions)


class BatchPublic(BaseModel):
    id: str
    source: str
    created_at: datetime
    done: bool
    counts: dict[str, int]
    jobs: list[JobPublic]


class ReadinessPublic(BaseModel):
    ready: bool
    workers: list[dict]

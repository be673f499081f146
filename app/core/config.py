"""Service settings: the only place that reads the environment (prefix ``ONEPASS_``).

Every field can be set as ``ONEPASS_<FIELD>`` (e.g. ``ONEPASS_MAX_PIXELS=20000000``), in a ``.env`` file,
or passed to the constructor (the CLI does that for its flags). docs/API.md lists them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Typed settings; every field can be set as ``ONEPASS_<FIELD>`` or passed to the constructor."""

    model_config = SettingsConfigDict(env_prefix="ONEPASS_", env_file=".env", extra="ignore")

    # Network and storage.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/onepass.db (PostgreSQL works too)"
    )

    # Model and workers.
    preset: str = "tiny"
    weights: Path | None = None
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    workers: int | None = Field(
        None,
        ge=0,
        description="inference workers; default one per CUDA device, else one on the CPU; 0 = queue only",
    )
    warmup: bool = True
    cpu_bf16: bool = Field(
        False,
        description="CPU workers run the network under bfloat16 autocast: ~1.2x faster where the CPU has "
        "native bf16 (AVX512-BF16, AMX), results within ~0.2 % of float32 (docs/MODEL.md); no effect on CUDA",
    )
    registration: Literal["all", "pair"] = Field(
        "all",
        description="what support views attend to in the registration pass (scenes with more views than "
        "max_anchors): all anchors, or a pair (view 0 and the nearest other anchor): 10-20 % faster at 16-64 "
        "views, slightly less accurate cameras (docs/MODEL.md)",
    )
    torch_threads: int | None = Field(
        None, ge=1, description="intra-op threads of each worker; default torch's (one per core)"
    )

    # Upload limits.
    max_files: int = Field(500, ge=1, description="images per reconstruction (after zip/video expansion)")
    max_body_bytes: int = Field(2048 * MiB, ge=1)
    max_file_bytes: int = Field(256 * MiB, ge=1, description="one uploaded part (image, zip or video)")
    max_pixels: int = Field(50_000_000, ge=1, description="pixels of one image; larger images answer 413")
    max_zip_bytes: int = Field(4096 * MiB, ge=1, description="total uncompressed size of a zip")
    max_zip_ratio: float = Field(200.0, gt=1, description="largest compression ratio of one zip entry")
    max_video_frames: int = Field(120, ge=1)
    default_video_fps: float = Field(2.0, gt=0)
    max_batch_scenes_upload: int = Field(100, ge=1, description="scenes in one POST /v1/batches")
    batch_root: Path | None = Field(None, description="server folder that batch manifests may read from")

    # Synchronous endpoint.
    sync_max_images: int = Field(16, ge=1)
    sync_timeout_s: float = Field(600.0, gt=0)

    # Batching.
    batching: bool | None = Field(
        None,
        description="group same-shape scenes into one forward pass; default on for CUDA workers, off on the "
        "CPU (measured: no throughput gain there, only added latency; see docs/BENCHMARKS.md)",
    )
    max_batch_tokens: int = Field(16384, ge=1, description="sum of views×patches of the scenes in one batch")
    max_batch_scenes: int = Field(8, ge=1)
    max_wait_ms: float = Field(10.0, ge=0)
    max_attempts: int = Field(3, ge=1, description="starts of one job before it is failed (restarts count)")
    idle_trim_s: float = Field(
        30.0,
        ge=0,
        description="seconds without a job after which the workers' free memory goes back to the OS "
        "(models.runtime.trim_malloc); 0: never",
    )

    # Rendering.
    scene_cache_size: int = Field(4, ge=1, description="scenes kept in memory per worker for /render")
    max_render_size: int = Field(2048, ge=16, description="largest render width or height in pixels")
    max_render_frames: int = Field(240, ge=1)

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("auto", "cpu", "cuda") and not (v.startswith("cuda:") and v[5:].isdigit()):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        if self.max_file_bytes > self.max_body_bytes:
            raise ValueError(
                f"max_file_bytes ({self.max_file_bytes}) exceeds max_body_bytes ({self.max_body_bytes})"
            )
        if self.sync_max_images > self.max_files:
            raise ValueError(
                f"sync_max_images ({self.sync_max_images}) must not exceed max_files ({self.max_files})"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'onepass.db').resolve()}"

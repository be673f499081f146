"""The training run's settings (one frozen dataclass, saved in every checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from models.training.curriculum import DEFAULT_STAGES, Stage
from models.training.step import LossWeights

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule, curriculum and bookkeeping of one run.

    AdamW (β = 0.9, 0.95; weight decay on matrices only), linear warmup then cosine decay to
    ``min_lr_ratio·lr`` at ``total_steps`` (VGGT: peak 2e-4, 8k warmup over 160k steps; scaled down here),
    gradient-norm clipping at ``grad_clip`` (VGGT: 1.0).
    """

    preset: str = "tiny"
    seed: int = 0
    lr: float = 3e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 500
    total_steps: int = 40_000
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    checkpoint_every_s: float = 300.0
    val_every_s: float = 1800.0  # held-out validation cadence (0 = never)
    #: recompute trunk blocks in backward to save memory (VGGT does on GPUs); off: the CPU has RAM to spare
    gradient_checkpointing: bool = False
    val_views: int = 4
    #: warm start: a new run that begins from these weights (``.safetensors``) at global step ``init_step``
    #: with a fresh optimizer, re-warmed over ``rewarm_steps`` (see ``Trainer``); None: a run from scratch
    init_weights: str | None = None
    init_step: int = 0
    rewarm_steps: int = 300
    #: final decay: from global step ``anneal_start`` the rate falls linearly to zero over ``anneal_steps``
    #: and the run ends there (``models.training.schedule``); None: the cosine schedule to ``total_steps``
    anneal_start: int | None = None
    anneal_steps: int = 0
    #: run the network in bfloat16 autocast on the CPU (``VGGT.cpu_bf16``: trunk and dense heads; losses,
    #: optimizer and master weights stay float32). ~1.2× faster steps on a CPU with native bf16
    #: (AVX512-BF16/AMX); validation always runs in float32. No effect on CUDA, which autocasts anyway.
    cpu_bf16: bool = False
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"lr and grad_clip must be > 0, got lr={self.lr}, grad_clip={self.grad_clip}")
        if self.total_steps <= self.warmup_steps:
            raise ValueError(
                f"total_steps ({self.total_steps}) must exceed warmup_steps ({self.warmup_steps})"
            )
        if self.init_step < 0 or self.rewarm_steps < 0:
            raise ValueError(
                f"init_step and rewarm_steps must be >= 0, got {self.init_step}, {self.rewarm_steps}"
            )
        if self.init_step > 0 and self.init_weights is None:
            raise ValueError("init_step needs init_weights (the weights that reached that step)")
        if self.anneal_start is not None and (self.anneal_start < 0 or self.anneal_steps < 1):
            raise ValueError(
                "anneal_start must be >= 0 and anneal_steps >= 1, "
                f"got {self.anneal_start}, {self.anneal_steps}"
            )

    @property
    def end_step(self) -> int:
        """The global step the run stops at: the anneal's end, else ``total_steps``."""
        if self.anneal_start is not None:
            return self.anneal_start + self.anneal_steps
        return self.total_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"train config has unknown fields {unknown}")
        d = dict(d)
        if "stages" in d:
            d["stages"] = tuple(
                Stage(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
                for s in d["stages"]
            )
        if "weights" in d:
            d["weights"] = LossWeights(**d["weights"])
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return TrainConfig(**d)

"""Learning-rate schedule: linear warmup, then cosine decay to ``min_ratio · peak`` at ``total_steps``.

Expressed as a ``LambdaLR`` multiplier so the scheduler's state (its step count) is saved and restored with
the optimizer; after ``total_steps`` the rate stays at the floor (long background runs simply continue).
"""

from __future__ import annotations

import math

import torch

__all__ = ["lr_multiplier", "make_scheduler"]


def lr_multiplier(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak rate at optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.05
) -> torch.optim.lr_scheduler.LambdaLR:
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")

    def fn(step: int) -> float:
        return lr_multiplier(step, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)

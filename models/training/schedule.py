"""Learning-rate schedule: linear warmup, then cosine decay to ``min_ratio · peak`` at ``total_steps``,
optionally cut short by an **anneal**: from global step ``anneal_start`` the rate falls linearly from where
the cosine had it to zero over ``anneal_steps`` (the "decay" phase of warmup-stable-decay schedules: a
short final decay consolidates a long run at any point, without committing to its length in advance).

A run warm-started from an earlier run's weights joins the schedule at that run's step, with a short
linear re-warmup (its optimizer moments start from zero).

Expressed as a ``LambdaLR`` multiplier so the scheduler's state (its step count) is saved and restored with
the optimizer; after ``total_steps`` the rate stays at the floor (long background runs simply continue).
"""

from __future__ import annotations

import math

import torch

__all__ = ["lr_multiplier", "make_scheduler"]


def lr_multiplier(
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    anneal_start: int | None = None,
    anneal_steps: int = 0,
) -> float:
    """Multiplier of the peak rate at optimizer step ``step`` (0-based)."""
    if anneal_start is not None and step >= anneal_start:
        at_start = lr_multiplier(
            anneal_start, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio
        )
        return at_start * max(0.0, 1.0 - (step - anneal_start) / max(1, anneal_steps))
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.05,
    start_step: int = 0,
    rewarm_steps: int = 0,
    anneal_start: int | None = None,
    anneal_steps: int = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule as a ``LambdaLR``; its own counter ``i`` is steps taken by this optimizer.

    A warm-started run (weights from an earlier run, fresh optimizer) begins at global step ``start_step``:
    the rate follows the schedule at ``start_step + i``, ramped up linearly over ``rewarm_steps`` so
    Adam's new moments settle before full-size updates. ``anneal_start``/``anneal_steps``: see the module.
    """
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    if start_step < 0 or rewarm_steps < 0:
        raise ValueError(f"start_step and rewarm_steps must be >= 0, got {start_step}, {rewarm_steps}")

    def fn(i: int) -> float:
        base = lr_multiplier(
            start_step + i,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            min_ratio=min_ratio,
            anneal_start=anneal_start,
            anneal_steps=anneal_steps,
        )
        return base * min(1.0, (i + 1) / rewarm_steps) if rewarm_steps > 0 else base

    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)

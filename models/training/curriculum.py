"""What each training step looks like: views, image size, batch, held-out targets, ZPressor use.

A step's shape is a pure function of ``(seed, step)`` (:func:`step_plan`), so a resumed run sees exactly the
batches an uninterrupted one would. The curriculum follows the issue's plan — learn two-view geometry on
small images first, then more views at larger sizes — in :class:`Stage`\\ s keyed by step:

* the image's longer side is ``size``; the shorter side is ``size·a`` rounded to the patch size, with the
  aspect ``a`` drawn from ``aspect_range`` and the orientation (landscape/portrait) at random, so the model
  sees varied aspect ratios (VGGT trains on 0.33–1.0);
* ``zpressor_prob`` of the steps use more views than ``max_anchors`` and run the compressed path
  (anchors + ZPressor fusion + registration), so the fusion blocks learn;
* ``pair_registration_prob`` of those ZPressor steps register the support views against a pair of anchors
  (``VGGT.registration = "pair"``) instead of all of them, so the network learns both registration modes;
* ``targets`` extra views of each scene are held out as novel-view targets for the rendering loss.

Scene seeds for training are drawn from ``[TRAIN_SEED_MIN, 2³¹)``; evaluation uses seeds below
:data:`TRAIN_SEED_MIN` (see ``models.eval.suite``), so no evaluation scene is ever trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["TRAIN_SEED_MIN", "Stage", "StepPlan", "DEFAULT_STAGES", "step_plan", "stage_at"]

#: Training scene seeds are >= this; evaluation and validation seeds are below it.
TRAIN_SEED_MIN = 1_000_000
_SEED_MAX = 2**31 - 1


@dataclass(frozen=True)
class Stage:
    """Batches from step ``start`` on (until the next stage's start)."""

    start: int
    views: tuple[int, int]  # inclusive range of input views S
    size: int  # longer image side in pixels (a multiple of the patch size)
    batch: int
    aspect_range: tuple[float, float] = (0.6, 1.0)
    targets: int = 1
    zpressor_prob: float = 0.0
    zpressor_views: tuple[int, int] = (5, 6)  # S on a ZPressor step (each > max_anchors)
    zpressor_anchors: int = 3  # max_anchors on a ZPressor step
    pair_registration_prob: float = 0.0  # of the ZPressor steps, those with registration against a pair


_FULL_SIZE = Stage(start=12_000, views=(2, 8), size=224, batch=1, zpressor_prob=0.2, zpressor_views=(8, 12),
                   zpressor_anchors=4)  # fmt: skip

DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage(start=0, views=(2, 2), size=112, batch=4),
    Stage(start=2_000, views=(2, 4), size=112, batch=3, zpressor_prob=0.1),
    Stage(start=6_000, views=(2, 6), size=168, batch=2, zpressor_prob=0.15, zpressor_views=(6, 8)),
    _FULL_SIZE,
    # from session 13 on, the same with half the ZPressor steps registering against a pair of anchors
    replace(_FULL_SIZE, start=21_103, pair_registration_prob=0.5),
)


@dataclass(frozen=True)
class StepPlan:
    """The shape of one step's batch."""

    step: int
    seeds: tuple[int, ...]  # B scene seeds
    views: int  # S input views
    targets: int  # T held-out views per scene (rendered with the inputs, disjoint from them)
    height: int
    width: int
    target_index: tuple[int, ...]  # which of the S+T rendered views are the targets
    max_anchors: int | None  # None: reference forward (all views attend to all); else the ZPressor path
    registration: str = "all"  # the ZPressor path's registration mode (``VGGT.registration``)

    @property
    def batch(self) -> int:
        return len(self.seeds)


def stage_at(stages: tuple[Stage, ...], step: int) -> Stage:
    if not stages or stages[0].start != 0:
        raise ValueError("stages must be non-empty and the first must start at step 0")
    current = stages[0]
    for s in stages:
        if s.start <= step:
            current = s
    return current


def _side(size: int, aspect: float, patch: int) -> int:
    return max(patch, int(round(size * aspect / patch)) * patch)


def step_plan(stages: tuple[Stage, ...], step: int, seed: int, patch_size: int = 14) -> StepPlan:
    """The batch shape of ``step`` for a run seeded ``seed`` (deterministic)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    st = stage_at(stages, step)
    if st.size % patch_size:
        raise ValueError(f"stage size {st.size} is not a multiple of the patch size {patch_size}")
    rng = np.random.default_rng([seed, step])
    zp = st.zpressor_prob > 0 and rng.random() < st.zpressor_prob
    if zp:
        views = int(rng.integers(st.zpressor_views[0], st.zpressor_views[1] + 1))
        max_anchors = st.zpressor_anchors
    else:
        views = int(rng.integers(st.views[0], st.views[1] + 1))
        max_anchors = None
    aspect = float(rng.uniform(*st.aspect_range))
    long_side, short_side = st.size, _side(st.size, aspect, patch_size)
    height, width = (short_side, long_side) if rng.random() < 0.5 else (long_side, short_side)
    seeds = tuple(int(s) for s in rng.integers(TRAIN_SEED_MIN, _SEED_MAX, size=st.batch))
    total = views + st.targets
    target_index = tuple(sorted(int(i) for i in rng.choice(total, size=st.targets, replace=False)))
    # drawn last, and only where it can matter, so the draws above stay those of earlier runs
    pair = zp and st.pair_registration_prob > 0 and rng.random() < st.pair_registration_prob
    return StepPlan(
        step=step,
        seeds=seeds,
        views=views,
        targets=st.targets,
        height=height,
        width=width,
        target_index=target_index,
        max_anchors=max_anchors,
        registration="pair" if pair else "all",
    )

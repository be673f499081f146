"""Render upcoming batches in worker processes while the current step trains.

Every batch is a pure function of its :class:`~models.training.curriculum.StepPlan`, so rendering it in
another process changes nothing but wall time; ``workers=0`` renders in the training process itself.
Workers run one torch thread each and are started with ``spawn`` (no forked torch state).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from torch import Tensor

from models.training.curriculum import StepPlan

__all__ = ["BatchSource", "render_batch"]


def render_batch(plan: StepPlan) -> dict[str, Tensor]:
    """The rendered ``S + T`` views of ``plan`` (inputs and held-out targets)."""
    from models.data.procedural import make_batch

    return make_batch(list(plan.seeds), views=plan.views + plan.targets, width=plan.width, height=plan.height)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


class BatchSource:
    """``get(step)`` returns the batch of ``plan_of(step)``, prefetching ``workers`` steps ahead."""

    def __init__(self, plan_of: Callable[[int], StepPlan], workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.plan_of = plan_of
        self.workers = workers
        self._pending: dict[int, Future] = {}
        self._pool: ProcessPoolExecutor | None = None

    def get(self, step: int) -> dict[str, Tensor]:
        if self.workers == 0:
            return render_batch(self.plan_of(step))
        if self._pool is None:  # started lazily, so a closed source can be used again
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker)
        for ahead in range(step, step + self.workers + 1):
            if ahead not in self._pending:
                self._pending[ahead] = self._pool.submit(render_batch, self.plan_of(ahead))
        for stale in [s for s in self._pending if s < step]:
            self._pending.pop(stale).cancel()
        return self._pending.pop(step).result()

    def close(self) -> None:
        for f in self._pending.values():
            f.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

"""Dynamic batching: group pending scenes into one forward pass per device.

Two pieces, shaped so that Ray Serve can later replace the second without touching the first:

* :class:`Batcher` is one device's replica (what a ``@serve.deployment`` class would be): it owns a
  :class:`~models.Reconstructor` and a single thread for all work on its device, and its
  ``async run_batch(list[JobInput]) -> list[JobResult]`` is the ``@serve.batch`` method: a list in, a list
  of the same length out. A CUDA (or CPU allocator) out-of-memory error splits the batch in halves and
  retries each; a scene that fails alone gets a clear error in its result. Nothing a scene contains can
  raise out of ``run_batch``, so the worker never dies of bad input.
* :class:`BatchQueue` is the scheduler (what ``@serve.batch`` plus the router do): callers ``submit`` one
  scene; scenes wait in buckets keyed by (preset, H, W, views), since only same-shape scenes stack into one
  tensor; a free replica takes the oldest bucket, up to ``max_tokens`` (Σ views × patches, the memory
  bound) and ``max_scenes``, waiting at most ``max_wait_ms`` for the bucket to fill.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("onepass.batcher")


@dataclass(frozen=True)
class BatchKey:
    """Scenes with equal keys stack into one ``[B, S, 3, H, W]`` tensor (and share the anchor budget,
    which the model needs to be equal within one forward pass)."""

    preset: str
    height: int
    width: int
    views: int
    max_anchors: int = 8


@dataclass
class JobInput:
    """One scene to reconstruct. ``payload`` is what the reconstructor takes (a ReconstructionInput)."""

    job_id: str
    key: BatchKey
    tokens: int  # views × patches at model resolution: the scene's share of the batch budget
    payload: Any


@dataclass
class JobResult:
    """The outcome of one scene: ``reconstruction`` or an ``error`` with its ``error_kind``.

    ``error_kind`` is ``"input"`` (the model refused this scene), ``"oom"`` (no memory even alone) or
    ``"internal"``.
    """

    job_id: str
    reconstruction: Any = None
    error: str | None = None
    error_kind: str | None = None
    batch_size: int = 1
    forward_s: float = 0.0
    worker: str = ""


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA OOM (typed) or an allocator failure reported as RuntimeError (CPU: "can't allocate memory")."""
    import torch

    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError | MemoryError) and (
        "out of memory" in msg or "can't allocate memory" in msg
    )


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Batcher:
    """One device's replica: a reconstructor and the single thread that runs everything on its device.

    ``run_many(payloads) -> list[Reconstruction]`` is the batched model call (``reconstruct_batch``); it
    is a parameter so a worker can wrap it (timings, fault injection in tests) without subclassing.
    """

    def __init__(
        self,
        name: str,
        run_many: Callable[[list[Any]], Sequence[Any]],
        *,
        on_batch: Callable[[int, float], None] | None = None,
        on_oom: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._run_many = run_many
        self._on_batch = on_batch
        self._on_oom = on_oom
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"onepass-{name}")

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on this device's thread (renders and warm-up share it with batches)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run_batch(self, jobs: list[JobInput]) -> list[JobResult]:
        """Reconstruct ``jobs`` in as few forward passes as memory allows; one result per job, in order."""
        if not jobs:
            return []
        return await self.call(self._run_sync, jobs)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _run_sync(self, jobs: list[JobInput]) -> list[JobResult]:
        t0 = time.perf_counter()
        try:
            recons = list(self._run_many([j.payload for j in jobs]))
            if len(recons) != len(jobs):
                raise RuntimeError(f"reconstruct_batch returned {len(recons)} results for {len(jobs)} scenes")
        except Exception as e:  # noqa: BLE001 - every failure becomes a per-job result
            return self._recover(jobs, e)
        dt = time.perf_counter() - t0
        if self._on_batch is not None:
            self._on_batch(len(jobs), dt)
        return [
            JobResult(j.job_id, r, batch_size=len(jobs), forward_s=dt, worker=self.name)
            for j, r in zip(jobs, recons, strict=True)
        ]

    def _recover(self, jobs: list[JobInput], e: Exception) -> list[JobResult]:
        if is_out_of_memory(e):
            del e  # the traceback pins the failed attempt's tensors
            _free_memory()
            if self._on_oom is not None:
                self._on_oom()
            if len(jobs) == 1:
                j = jobs[0]
                msg = (
                    f"out of memory on {self.name} for one scene of {j.key.views} views at "
                    f"{j.key.width}x{j.key.height}; send fewer images or a lower resolution"
                )
                log.warning("job %s: %s", j.job_id, msg)
                return [JobResult(j.job_id, error=msg, error_kind="oom", worker=self.name)]
            half = len(jobs) // 2
            log.warning(
                "out of memory with %d scenes on %s: splitting into %d + %d",
                len(jobs),
                self.name,
                half,
                len(jobs) - half,
            )
            return self._run_sync(jobs[:half]) + self._run_sync(jobs[half:])
        if len(jobs) > 1:
            # Some scene broke the whole batch: run them one by one so only that one fails.
            log.warning(
                "batch of %d failed on %s (%s: %s); retrying scenes one by one",
                len(jobs),
                self.name,
                type(e).__name__,
                e,
            )
            return [r for j in jobs for r in self._run_sync([j])]
        j = jobs[0]
        kind = "input" if isinstance(e, ValueError | TypeError) else "internal"
        if kind == "internal":
            log.error("job %s failed on %s", j.job_id, self.name, exc_info=e)
        return [JobResult(j.job_id, error=f"{type(e).__name__}: {e}", error_kind=kind, worker=self.name)]


@dataclass
class _Pending:
    job: JobInput
    future: asyncio.Future
    since: float = field(default_factory=time.monotonic)


class BatchQueue:
    """Buckets submitted scenes by :class:`BatchKey` and feeds free :class:`Batcher` replicas.

    ``max_scenes=1`` turns batching off (every scene is its own forward pass, FIFO).
    """

    def __init__(
        self,
        replicas: Sequence[Batcher],
        *,
        max_tokens: int,
        max_scenes: int,
        max_wait_ms: float,
        on_dispatch: Callable[[list[str]], None] | None = None,
    ) -> None:
        if not replicas:
            raise ValueError("BatchQueue needs at least one replica")
        self.max_tokens = max_tokens
        self.max_scenes = max_scenes
        self.max_wait_s = max_wait_ms / 1000.0
        self._buckets: OrderedDict[BatchKey, deque[_Pending]] = OrderedDict()
        self._free: deque[Batcher] = deque(replicas)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._on_dispatch = on_dispatch

    @property
    def pending(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="onepass-batch-queue")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._running, return_exceptions=True)
        for bucket in self._buckets.values():
            for p in bucket:
                if not p.future.done():
                    p.future.cancel()
        self._buckets.clear()

    async def submit(self, job: JobInput) -> JobResult:
        """Queue one scene and wait for its result."""
        fut = asyncio.get_running_loop().create_future()
        self._buckets.setdefault(job.key, deque()).append(_Pending(job, fut))
        self._wake.set()
        return await fut

    def _take(self, key: BatchKey) -> list[_Pending]:
        """Pop the longest prefix of a bucket that fits the budget (always at least one scene)."""
        bucket = self._buckets[key]
        group = [bucket.popleft()]
        tokens = group[0].job.tokens
        while bucket and len(group) < self.max_scenes and tokens + bucket[0].job.tokens <= self.max_tokens:
            tokens += bucket[0].job.tokens
            group.append(bucket.popleft())
        if not bucket:
            del self._buckets[key]
        return group

    def _full(self, key: BatchKey) -> bool:
        bucket = self._buckets[key]
        tokens = sum(p.job.tokens for p in bucket)
        return len(bucket) >= self.max_scenes or tokens >= self.max_tokens

    def _drop_abandoned(self) -> None:
        """Forget scenes whose caller stopped waiting (cancelled request)."""
        for key in list(self._buckets):
            kept = deque(p for p in self._buckets[key] if not p.future.done())
            if kept:
                self._buckets[key] = kept
            else:
                del self._buckets[key]

    async def _loop(self) -> None:
        while True:
            self._drop_abandoned()
            if not self._buckets or not self._free:
                self._wake.clear()
                await self._wake.wait()
                continue
            # Oldest bucket first (by its oldest scene): FIFO across shapes, so no shape starves.
            key = min(self._buckets, key=lambda k: self._buckets[k][0].since)
            if self.max_scenes > 1 and not self._full(key):
                deadline = self._buckets[key][0].since + self.max_wait_s
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=remaining)
                    except TimeoutError:
                        pass
                    continue
            group = self._take(key)
            replica = self._free.popleft()
            task = asyncio.get_running_loop().create_task(self._dispatch(replica, group))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _dispatch(self, replica: Batcher, group: list[_Pending]) -> None:
        if self._on_dispatch is not None:
            self._on_dispatch([p.job.job_id for p in group])
        try:
            results = await replica.run_batch([p.job for p in group])
        except Exception as e:  # noqa: BLE001 - run_batch should not raise; never lose the futures if it does
            log.exception("replica %s raised from run_batch", replica.name)
            results = [
                JobResult(p.job.job_id, error=f"internal error: {e}", error_kind="internal") for p in group
            ]
        finally:
            self._free.append(replica)
            self._wake.set()
        for p, r in zip(group, results, strict=True):
            if not p.future.done():
                p.future.set_result(r)

"""The inference workers of one service process and the loop that feeds them jobs from the store.

Per device one :class:`~app.jobs.batcher.Batcher` (model loaded once, warmed up, one thread). A dispatcher
task claims queued jobs from the store (highest priority, then oldest), decodes their images on an I/O
thread, submits them to the :class:`~app.jobs.batcher.BatchQueue`, and writes each result's artifacts into
a temporary folder that is renamed into place when complete. Every failure ends as a failed job with a
message; none escapes the loop. At most ``max_inflight`` jobs are held in memory at once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.core.metrics import Metrics
from app.jobs import store as st
from app.jobs.batcher import Batcher, BatchQueue, JobResult
from app.jobs.events import JobEvents
from app.jobs.files import JobFiles
from app.services import pipeline
from app.services.render_cache import SceneCache

#: jobs whose upload-decoded pixels the pool keeps at once (the synchronous route's jobs run next)
MAX_HANDED_OVER = 8

log = logging.getLogger("onepass.workers")

#: reconstructor for a device; the default loads ``models.Reconstructor`` with the settings' preset
ReconstructorProvider = Callable[[str], Any]


@dataclass
class Worker:
    """One device: its batcher (thread + model), scene cache for renders, and readiness."""

    name: str
    device: str
    batcher: Batcher | None = None
    reconstructor: Any = None
    scenes: SceneCache | None = None
    ready: bool = False
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def batching_enabled(setting: bool | None, devices: list[str]) -> bool:
    """``ONEPASS_BATCHING`` when set, else on when the workers run on CUDA.

    On the CPU the model's cost grows linearly with the batch (1.3–2.0 s per 4-view 224² scene at batch
    sizes 1 to 8, one intra-op thread, measured here), so grouping scenes only makes them wait for each
    other; on a GPU one small scene leaves most of the device idle.
    """
    if setting is not None:
        return setting
    return any(d.startswith("cuda") for d in devices)


def set_torch_threads(n: int) -> int:
    """Intra-op threads for torch calls made from the calling (worker) thread; returns the count."""
    import torch

    torch.set_num_threads(n)
    return torch.get_num_threads()


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        store: st.JobStore,
        files: JobFiles,
        events: JobEvents,
        metrics: Metrics,
        devices: list[str],
        provider: ReconstructorProvider | None = None,
    ) -> None:
        self.settings, self.store, self.files, self.events, self.metrics = (
            settings,
            store,
            files,
            events,
            metrics,
        )
        self.workers = [Worker(f"worker{i}-{d}", d) for i, d in enumerate(devices)]
        self._provider = provider or (
            lambda device: pipeline.load_reconstructor(
                settings.preset,
                settings.weights,
                device,
                cpu_bf16=settings.cpu_bf16,
                registration=settings.registration,
            )
        )
        self.io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="onepass-io")
        self.queue: BatchQueue | None = None
        self.batching = batching_enabled(settings.batching, devices)
        self.max_inflight = (
            max(1, len(self.workers)) * (settings.max_batch_scenes if self.batching else 1) + 1
        )
        self._inflight: dict[asyncio.Task, str] = {}  # task → job id
        #: job id → pixels decoded at upload (synchronous route), taken by the job; oldest dropped first
        self._pixels: OrderedDict[str, list[Any]] = OrderedDict()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._idle_trim: asyncio.TimerHandle | None = None

    # ---- life cycle ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Every worker loaded and warmed up (a pool of zero workers is never ready to reconstruct)."""
        return bool(self.workers) and all(w.ready for w in self.workers)

    @property
    def queue_depth(self) -> int:
        return self.queue.pending if self.queue is not None else 0

    def start(self) -> None:
        """Load models in the background; the dispatcher starts once every worker is ready."""
        if self.workers:
            self._tasks.append(asyncio.get_running_loop().create_task(self._boot(), name="onepass-boot"))

    async def stop(self) -> None:
        """Stop taking jobs; jobs in flight go back to the queue without using up an attempt."""
        self._stopping = True
        if self._idle_trim is not None:
            self._idle_trim.cancel()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        unfinished = list(self._inflight.values())
        for t in list(self._inflight):
            t.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self.queue is not None:
            await self.queue.stop()
        for w in self.workers:
            if w.batcher is not None:
                w.batcher.close()
        self.io.shutdown(wait=True, cancel_futures=True)
        if unfinished:
            released = self.store.release(unfinished)
            log.info("shutdown: %d running job(s) returned to the queue", len(released))

    def wake(self) -> None:
        """New jobs were queued: claim them now instead of at the next poll."""
        self._wake.set()

    async def _boot(self) -> None:
        await asyncio.gather(*(self._load(w) for w in self.workers))
        loaded = [w for w in self.workers if w.batcher is not None and w.ready]
        if not loaded:
            log.error("no worker could load the model; jobs stay queued")
            return
        s = self.settings
        self.queue = BatchQueue(
            [w.batcher for w in loaded],
            max_tokens=s.max_batch_tokens,
            max_scenes=s.max_batch_scenes if self.batching else 1,
            max_wait_ms=s.max_wait_ms if self.batching else 0.0,
            on_dispatch=self._on_dispatch,
        )
        self.queue.start()
        self._tasks.append(
            asyncio.get_running_loop().create_task(self._dispatch_loop(), name="onepass-dispatch")
        )

    async def _load(self, w: Worker) -> None:
        def on_batch(n: int, seconds: float) -> None:
            self.metrics.batch_size.observe(n)
            self.metrics.forward_seconds.observe(seconds)

        t0 = time.perf_counter()
        try:
            w.reconstructor = await asyncio.to_thread(self._provider, w.device)
            w.info["load_s"] = round(time.perf_counter() - t0, 3)
            w.batcher = Batcher(
                w.name, w.reconstructor.reconstruct_batch, on_batch=on_batch, on_oom=self.metrics.oom.inc
            )
            if self.settings.torch_threads is not None:
                w.info["torch_threads"] = await w.batcher.call(set_torch_threads, self.settings.torch_threads)
            if self.settings.warmup:
                t1 = time.perf_counter()
                w.info.update(await w.batcher.call(pipeline.warmup, w.reconstructor))
                w.info["warmup_s"] = round(time.perf_counter() - t1, 3)
            w.scenes = SceneCache(self.settings.scene_cache_size, w.device)
            w.ready = True
            log.info("%s ready (%s)", w.name, w.info)
        except Exception as e:  # noqa: BLE001 - reported by /readyz, the service stays up
            w.error = f"{type(e).__name__}: {e}"
            log.exception("%s failed to load the model", w.name)

    # ---- jobs ------------------------------------------------------------------------------------------

    def hand_over_pixels(self, job_id: str, images: list[Any]) -> None:
        """Keep a queued job's decoded images for its worker (see ``accept_upload``). At most
        :data:`MAX_HANDED_OVER` jobs' worth: one that never runs (cancelled) is dropped in time."""
        self._pixels[job_id] = images
        while len(self._pixels) > MAX_HANDED_OVER:
            self._pixels.popitem(last=False)

    def _publish(self, job_id: str) -> None:
        self.events.publish(job_id)

    def _on_dispatch(self, job_ids: list[str]) -> None:
        def mark() -> None:
            for job_id in job_ids:
                self.store.set_progress(job_id, stage="reconstructing", progress=0.2)
                self._publish(job_id)

        self.io.submit(mark)

    async def _io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            room = self.max_inflight - len(self._inflight)
            claimed = await self._io(self.store.claim, room) if room > 0 else []
            if claimed and self._idle_trim is not None:
                self._idle_trim.cancel()
                self._idle_trim = None
            for job in claimed:
                self._publish(job.id)
                task = asyncio.get_running_loop().create_task(self._run_job(job), name=f"job-{job.id}")
                self._inflight[task] = job.id
                task.add_done_callback(self._job_done)
            if not claimed or len(self._inflight) >= self.max_inflight:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=2.0)  # poll: other processes may queue
                except TimeoutError:
                    pass

    def _job_done(self, task: asyncio.Task) -> None:
        self._inflight.pop(task, None)
        self._wake.set()
        self._arm_idle_trim()

    # ---- memory after a burst --------------------------------------------------------------------------

    def _arm_idle_trim(self) -> None:
        """Once the last job is done, give free memory back after ``idle_trim_s`` unless work comes first.

        The malloc setting (``models.runtime.tune_malloc``) keeps freed memory mapped so back-to-back jobs
        reuse it; after a big scene that would hold its peak forever on an idle server.
        """
        delay = self.settings.idle_trim_s
        if delay <= 0 or self._inflight or self.queue_depth or self._stopping:
            return
        if self._idle_trim is not None:
            self._idle_trim.cancel()
        self._idle_trim = asyncio.get_running_loop().call_later(delay, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        self._idle_trim = None
        if self._inflight or self.queue_depth or self._stopping:
            return
        from models.runtime import trim_malloc

        def trim() -> None:
            released = trim_malloc()
            self.metrics.idle_trims.inc()
            self.metrics.idle_trim_released.inc(released)
            idle = self.settings.idle_trim_s
            log.info("idle for %g s: %.0f MiB of free memory returned", idle, released / 2**20)

        self.io.submit(trim)

    async def _run_job(self, job: st.JobRecord) -> None:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        tmp = None
        try:
            rec = self._any_ready().reconstructor
            paths = [self.files.inputs_dir(job.id) / name for name in job.image_names]
            pixels = self._pixels.pop(job.id, None)
            inp = await self._io(pipeline.prepare, rec, job.id, paths, job.options, pixels)
            del pixels
            timings["load_s"] = round(time.perf_counter() - t0, 4)
            if not await self._progress(job.id, "waiting", 0.15):
                return
            t1 = time.perf_counter()
            result: JobResult = await self.queue.submit(inp)
            timings["forward_s"] = round(result.forward_s, 4)
            timings["queue_s"] = round(time.perf_counter() - t1 - result.forward_s, 4)
            timings["batch_size"] = result.batch_size
            if result.error is not None:
                await self._fail(job.id, result.error, timings, kind=result.error_kind or "internal")
                return
            if not await self._progress(job.id, "writing", 0.7):
                return
            t2 = time.perf_counter()
            tmp = self.files.new_artifacts_tmp(job.id)
            images = inp.payload.images if "images" in (job.options.get("outputs") or ()) else None
            del inp
            finished = await self._io(self._write, job, result.reconstruction, tmp, images)
            if not finished:
                return
            timings["write_s"] = round(time.perf_counter() - t2, 4)
            timings["total_s"] = round(time.perf_counter() - t0, 4)
            ok = await self._io(self.store.succeed, job.id, timings)
            if ok:
                self.metrics.jobs_finished.labels(st.SUCCEEDED).inc()
                self.metrics.job_seconds.observe(timings["total_s"])
        except asyncio.CancelledError:
            raise  # shutdown: the job stays "running" and is re-queued at the next start
        except Exception as e:  # noqa: BLE001 - a job's failure must never stop the loop
            log.exception("job %s failed", job.id)
            await self._fail(job.id, f"internal error: {type(e).__name__}: {e}", timings)
        finally:
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                if self.store.get_job(job.id) is None:  # deleted meanwhile: leave no empty folder behind
                    self.files.delete_job(job.id)
            self._publish(job.id)

    def _write(self, job: st.JobRecord, recon: Any, tmp: Path, images: Any) -> bool:
        """Write the artifacts into ``tmp`` and rename it into place, unless the job was cancelled."""
        pipeline.write_outputs(recon, tmp, job.image_names, job.options.get("outputs"), images)
        if not self.store.set_progress(job.id, stage="publishing", progress=0.95):
            return False
        self.files.publish_artifacts(job.id, tmp)
        return True

    async def _progress(self, job_id: str, stage: str, progress: float) -> bool:
        alive = await self._io(lambda: self.store.set_progress(job_id, stage=stage, progress=progress))
        self._publish(job_id)
        return alive

    async def _fail(self, job_id: str, error: str, timings: dict[str, float], kind: str = "internal") -> None:
        if await self._io(lambda: self.store.fail(job_id, error, timings, kind=kind)):
            self.metrics.jobs_finished.labels(st.FAILED).inc()

    def _any_ready(self) -> Worker:
        for w in self.workers:
            if w.ready:
                return w
        raise RuntimeError("no ready worker")

    # ---- renders ---------------------------------------------------------------------------------------

    def worker_for_scene(self, job_id: str) -> Worker:
        """The worker that already holds this scene, else the one with the fewest cached scenes."""
        ready = [w for w in self.workers if w.ready]
        if not ready:
            raise RuntimeError("no ready worker")
        for w in ready:
            if w.scenes is not None and job_id in w.scenes:
                return w
        return min(ready, key=lambda w: len(w.scenes) if w.scenes is not None else 0)

    def forget_scene(self, job_id: str) -> None:
        self._pixels.pop(job_id, None)
        for w in self.workers:
            if w.scenes is not None:
                w.scenes.discard(job_id)

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": w.name,
                "device": w.device,
                "ready": w.ready,
                "error": w.error,
                "batching": self.batching,
                **w.info,
            }
            for w in self.workers
        ]

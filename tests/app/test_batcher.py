"""The dynamic batcher: buckets by shape, token budget, max wait, OOM splitting, per-scene failures.

The scheduler is model-agnostic (it batches whatever ``run_many`` takes), so most tests drive it with a
function that records each batch it gets; one test wraps the real tiny model to check the OOM path end
to end.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import torch

from app.jobs.batcher import Batcher, BatchKey, BatchQueue, JobInput, is_out_of_memory
from app.workers.devices import worker_devices
from app.workers.pool import batching_enabled

KEY_A = BatchKey("tiny", 112, 224, 2)
KEY_B = BatchKey("tiny", 224, 224, 2)


def job(i: int, key: BatchKey = KEY_A, tokens: int = 100) -> JobInput:
    return JobInput(f"job{i}", key, tokens, payload=i)


class Recorder:
    """``run_many`` that records each batch and answers ``payload * 10`` (raises on payload < 0)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    def __call__(self, payloads: list[int]) -> list[int]:
        self.batches.append(list(payloads))
        time.sleep(self.delay)
        if any(p < 0 for p in payloads):
            raise ValueError(f"scene {min(payloads)} has no views")
        return [p * 10 for p in payloads]


async def run_all(queue: BatchQueue, jobs: list[JobInput]) -> list:
    queue.start()
    try:
        return await asyncio.gather(*(queue.submit(j) for j in jobs))
    finally:
        await queue.stop()


def test_groups_same_shape_within_budget() -> None:
    rec = Recorder()
    batcher = Batcher("w0", rec)
    queue = BatchQueue([batcher], max_tokens=300, max_scenes=8, max_wait_ms=50)
    jobs = [job(0), job(1, KEY_B), job(2), job(3), job(4), job(5, KEY_B)]
    results = asyncio.run(run_all(queue, jobs))
    batcher.close()
    assert [r.reconstruction for r in results] == [0, 10, 20, 30, 40, 50]
    assert [r.job_id for r in results] == [j.job_id for j in jobs]
    # Same-shape scenes only, at most 3 × 100 tokens per batch, oldest bucket first.
    assert rec.batches == [[0, 2, 3], [1, 5], [4]]
    assert [r.batch_size for r in results] == [3, 2, 3, 3, 1, 2]


def test_max_scenes_one_turns_batching_off() -> None:
    rec = Recorder()
    batcher = Batcher("w0", rec)
    queue = BatchQueue([batcher], max_tokens=10_000, max_scenes=1, max_wait_ms=50)
    asyncio.run(run_all(queue, [job(i) for i in range(4)]))
    batcher.close()
    assert rec.batches == [[0], [1], [2], [3]]


def test_lone_scene_waits_at_most_max_wait() -> None:
    rec = Recorder()
    batcher = Batcher("w0", rec)
    queue = BatchQueue([batcher], max_tokens=10_000, max_scenes=8, max_wait_ms=200)

    async def late_arrivals() -> list:
        queue.start()
        try:
            first = asyncio.ensure_future(queue.submit(job(0)))
            await asyncio.sleep(0.05)
            second = asyncio.ensure_future(queue.submit(job(1)))
            return await asyncio.gather(first, second)
        finally:
            await queue.stop()

    results = asyncio.run(late_arrivals())
    batcher.close()
    assert rec.batches == [[0, 1]]  # the second arrived inside the first one's wait window
    assert [r.reconstruction for r in results] == [0, 10]


def test_failing_scene_fails_alone() -> None:
    rec = Recorder()
    batcher = Batcher("w0", rec)
    queue = BatchQueue([batcher], max_tokens=10_000, max_scenes=8, max_wait_ms=50)
    results = asyncio.run(run_all(queue, [job(1), job(-1), job(3)]))
    batcher.close()
    assert [r.reconstruction for r in results] == [10, None, 30]
    assert results[1].error_kind == "input" and "scene -1 has no views" in results[1].error
    assert rec.batches[0] == [1, -1, 3] and sorted(rec.batches[1:]) == [[-1], [1], [3]]


def test_oom_splits_then_fails_clearly() -> None:
    def run_many(payloads: list[int]) -> list[int]:
        if sum(payloads) > 2:  # "memory" holds a total of 2
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return payloads

    ooms = []
    batcher = Batcher("cuda:0", run_many, on_oom=lambda: ooms.append(1))
    jobs = [job(1, tokens=1), job(1, tokens=1), job(1, tokens=1), job(3, tokens=1)]
    results = asyncio.run(batcher.run_batch(jobs))
    batcher.close()
    assert [r.reconstruction for r in results] == [1, 1, 1, None]
    assert results[3].error_kind == "oom" and "out of memory on cuda:0" in results[3].error
    assert "fewer images" in results[3].error
    assert len(ooms) == 3  # [1,1,1,3] → [1,1] ok + [1,3] → [1] ok + [3] fails alone


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 1 TB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_queue_needs_a_replica() -> None:
    with pytest.raises(ValueError, match="at least one replica"):
        BatchQueue([], max_tokens=1, max_scenes=1, max_wait_ms=0)


@pytest.mark.slow
def test_oom_split_with_the_real_model(tiny_reconstructor) -> None:
    """Fault injection around the real tiny model: batches of 2+ scenes "run out of memory"."""
    from models import ReconstructionInput

    calls: list[int] = []

    def run_many(payloads: list) -> list:
        calls.append(len(payloads))
        if len(payloads) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return tiny_reconstructor.reconstruct_batch(payloads)

    rng = np.random.default_rng(0)
    scenes = [
        ReconstructionInput(
            [rng.integers(0, 255, (80, 160, 3), dtype=np.uint8) for _ in range(2)], max_anchors=2
        )
        for _ in range(2)
    ]
    batcher = Batcher("cuda:0", run_many)
    results = asyncio.run(batcher.run_batch([JobInput(f"j{i}", KEY_A, 1, s) for i, s in enumerate(scenes)]))
    batcher.close()
    assert calls == [2, 1, 1]
    assert all(r.error is None for r in results)
    assert [r.reconstruction.world_to_camera.shape for r in results] == [(2, 4, 4), (2, 4, 4)]


def test_batching_default_follows_the_device() -> None:
    assert batching_enabled(None, ["cuda:0", "cuda:1"]) and not batching_enabled(None, ["cpu"])
    assert batching_enabled(True, ["cpu"]) and not batching_enabled(False, ["cuda:0"])


def test_worker_devices() -> None:
    assert worker_devices("auto", None, n_cuda=0) == ["cpu"]
    assert worker_devices("auto", None, n_cuda=2) == ["cuda:0", "cuda:1"]
    assert worker_devices("cuda", 3, n_cuda=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert worker_devices("cuda:1", None, n_cuda=2) == ["cuda:1"]
    assert worker_devices("cpu", 0, n_cuda=2) == []
    with pytest.raises(ValueError, match="asks for CUDA but this machine has 0"):
        worker_devices("cuda", None, n_cuda=0)
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        worker_devices("tpu", None, n_cuda=0)

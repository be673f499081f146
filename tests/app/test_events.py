"""Job change notifications: a change published while a waiter reads the job row must not be lost."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from app.jobs.events import JobEvents
from app.jobs.store import JobStore
from app.services.jobs import wait_until_done


def test_change_during_the_row_read_wakes_the_next_wait_at_once() -> None:
    async def main() -> tuple[bool, float]:
        events = JobEvents(asyncio.get_running_loop())
        with events.subscribe("j") as changes:
            events.publish("j")  # e.g. the job finished while the waiter was reading its row
            t0 = time.perf_counter()
            woke = await changes.wait(timeout=5.0)
            return woke, time.perf_counter() - t0

    woke, waited = asyncio.run(main())
    assert woke and waited < 0.5


def test_wait_times_out_without_a_change_and_clears_after_a_wake() -> None:
    async def main() -> tuple[bool, bool, bool]:
        events = JobEvents(asyncio.get_running_loop())
        with events.subscribe("j") as changes:
            quiet = await changes.wait(timeout=0.05)
            threading.Thread(target=events.publish, args=("j",)).start()  # from a worker thread
            woke = await changes.wait(timeout=5.0)
            again = await changes.wait(timeout=0.05)  # the wake was consumed
        return quiet, woke, again

    assert asyncio.run(main()) == (False, True, False)


def test_wait_until_done_returns_when_the_job_ends_during_its_first_read(tmp_path: Path) -> None:
    """The job succeeds (and is published) while ``wait_until_done`` reads the row for the first time:
    it must return right after, not sleep out its one-second poll."""
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.create_job(job_id="j", options={}, image_names=["a.png"])
    store.claim(1)
    real_get = store.get_job

    async def main() -> float:
        events = JobEvents(asyncio.get_running_loop())
        loop = asyncio.get_running_loop()
        first = True

        def get_job(job_id: str):
            nonlocal first
            row = real_get(job_id)  # still running
            if first:
                first = False
                store.succeed(job_id, {"total_s": 0.1})
                loop.call_soon_threadsafe(events.publish, job_id)
                time.sleep(0.05)  # the publish lands while this read is still in flight
            return row

        store.get_job = get_job  # type: ignore[method-assign]
        t0 = time.perf_counter()
        job = await wait_until_done(store, events, "j", timeout=30.0)
        assert job is not None and job.status == "succeeded"
        return time.perf_counter() - t0

    try:
        assert asyncio.run(main()) < 0.5
    finally:
        store.close()

"""In-process change notifications for jobs, so progress streams and synchronous calls wake at once.

The database stays the source of truth: a waiter re-reads the row after waking, and waits time out, so a
job changed by another process (shared PostgreSQL) is still seen, one poll interval later.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class JobEvents:
    """``publish(job_id)`` from any thread; ``await wait(job_id, timeout)`` on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def publish(self, job_id: str) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake(job_id)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake, job_id)

    def _wake(self, job_id: str) -> None:
        for ev in self._waiters.get(job_id, ()):
            ev.set()

    async def wait(self, job_id: str, timeout: float) -> bool:
        """True if the job changed before ``timeout`` seconds passed."""
        ev = asyncio.Event()
        self._waiters[job_id].add(ev)
        try:
            await asyncio.wait_for(ev.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters[job_id].discard(ev)
            if not self._waiters[job_id]:
                del self._waiters[job_id]

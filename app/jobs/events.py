"""In-process change notifications for jobs, so progress streams and synchronous calls wake at once.

The database stays the source of truth: a waiter re-reads the row after waking, and waits time out, so a
job changed by another process (shared PostgreSQL) is still seen, one poll interval later.

Waiters use a :meth:`JobEvents.subscribe` subscription, registered *before* they read the row: a change
published while the row is being read then wakes the next wait at once. (Registering only when starting
to wait lost such changes, and a caller slept until its timeout: up to a second for a synchronous
reconstruction, fifteen for a progress stream.)
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


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

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        """Listen for changes of ``job_id`` from now on (use on the event loop)::

        with events.subscribe(job_id) as changes:
            while True:
                job = read_the_row()
                ...
                await changes.wait(timeout)
        """
        sub = Subscription()
        self._waiters[job_id].add(sub.event)
        try:
            yield sub
        finally:
            self._waiters[job_id].discard(sub.event)
            if not self._waiters[job_id]:
                del self._waiters[job_id]

    async def wait(self, job_id: str, timeout: float) -> bool:
        """True if the job changed before ``timeout`` seconds passed (changes before the call are missed:
        to read and then wait without a gap, use :meth:`subscribe`)."""
        with self.subscribe(job_id) as sub:
            return await sub.wait(timeout)


class Subscription:
    """Changes of one job since the subscription started or since the last :meth:`wait` returned."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True at once if the job changed since the last wait, else when it changes; False on timeout."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.event.clear()

"""Per-key ordering with concurrency across keys.

Each key gets a queue and at most one runner task draining it in submission order, so events
of one ordering key are handled one after the other; different keys run side by side. How many
handlers run at once is bounded by whoever the work function acquires (the pipeline holds a
semaphore only while a handler runs, not while it sleeps between retries).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class KeyedScheduler(Generic[K, T]):
    def __init__(self, work: Callable[[T], Awaitable[None]], *, name: str = "keyed") -> None:
        self._work = work
        self._name = name
        self._queues: dict[K, deque[T]] = {}
        self._runners: dict[K, asyncio.Task[None]] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._changed = asyncio.Event()
        self.failure: BaseException | None = None
        """The first exception a work function raised; the owner decides what it means."""

    @property
    def pending(self) -> int:
        """Items submitted and not finished (queued or running)."""
        return self._pending

    def submit(self, key: K, item: T) -> None:
        self._queues.setdefault(key, deque()).append(item)
        self._pending += 1
        self._idle.clear()
        if key not in self._runners:
            self._runners[key] = asyncio.create_task(self._run(key), name=f"{self._name}:{key!r}")

    async def _run(self, key: K) -> None:
        queue = self._queues[key]
        try:
            while queue:
                item = queue[0]
                try:
                    await self._work(item)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # recorded for the owner; the key moves on
                    if self.failure is None:
                        self.failure = exc
                finally:
                    if queue and queue[0] is item:
                        queue.popleft()
                        self._finished(1)
        finally:
            if self._runners.get(key) is asyncio.current_task():
                del self._runners[key]
                if not queue:
                    self._queues.pop(key, None)

    def _finished(self, count: int) -> None:
        self._pending -= count
        self._changed.set()
        if self._pending == 0:
            self._idle.set()

    async def wait_changed(self, timeout: float) -> None:
        """Return when some item finished, or after ``timeout`` seconds."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    async def join(self) -> None:
        """Wait until every submitted item has finished."""
        await self._idle.wait()

    def drop_queued(self, which: Callable[[K], bool]) -> int:
        """Forget the not-yet-started items of the keys ``which`` selects; returns how many."""
        dropped = 0
        for key, queue in list(self._queues.items()):
            if not which(key):
                continue
            running = 1 if key in self._runners and queue else 0
            while len(queue) > running:
                queue.pop()
                dropped += 1
        if dropped:
            self._finished(dropped)
        return dropped

    async def settle(self, which: Callable[[K], bool], timeout: float) -> int:
        """Let the running items of the selected keys finish, for up to ``timeout`` seconds, then
        cancel what still runs. Queued items of those keys are dropped first. Returns how many were
        cancelled."""
        self.drop_queued(which)
        tasks = {key: task for key, task in self._runners.items() if which(key)}
        if not tasks:
            return 0
        _, still = await asyncio.wait(tasks.values(), timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        for key in tasks:
            queue = self._queues.pop(key, None)
            if queue:
                self._finished(len(queue))
            self._runners.pop(key, None)
        return len(still)

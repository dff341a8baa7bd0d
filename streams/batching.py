"""Batches of faust events for the agents, without losing one at a batch boundary.

faust's ``Stream.noack_take`` fills its buffer from a background processor and, when it
yields on a timeout, clears the *same* list after the batch was handled; a record appended
in between (after the copy, before the clear) is dropped without ever reaching the agent
and without an ack. faust then commits the offsets around it, so after a restart it is
lost for good.

Here the agent appends to the current list and a handler swaps in a fresh one before it
works on the old one, so every event read ends up in exactly one handled batch. Batches are
handled one at a time, in the order their events were read: when the buffer is full the
agent handles it itself (and so stops reading: backpressure); a lone event waits at most
``within_s`` for company, then a background flusher handles it.

Every event read is also checked against the one before it in its partition, and the first one
read after an assignment against the group's committed offset (``resume_offset``): offsets only
ever move by one, except back (faust re-reads from the committed offset after a rebalance). A jump
forward means the consumer skipped records; faust would then commit past them as soon as a
later offset is acknowledged. So on a jump the skipped range is read straight from the broker
(``records_between``): if it holds records (not just transaction markers, or watermarks that a
later one supersedes), the worker stops before acknowledging anything past them and exits 1,
so its supervisor restarts it and the fresh process reads them again. The causes known are
fixed in ``transport``; this guard stays, so that an unknown one costs a restart, not an event.

An exception from the handler crashes the app (the worker exits non-zero and is restarted
by its supervisor): the events of that batch are not acknowledged, so the restart reads them
again. Carrying on would let faust commit past them once later offsets are acknowledged.

After such a failure, or skipped records, the worker's Batches share a ``Halt``: none of them
hands out another event, so this process acknowledges nothing more. faust restarts the agents
while the app stops, and the stages forget their partitions when they are revoked; events
handled then would be acknowledged as a fresh start, past the failed one, and faust's commit
would not refuse them (``hookstream.kafka.offsets`` says what it does not check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import faust
from faust.types import EventT, StreamT

from hookstream.errors import HookstreamError

log = logging.getLogger("hookstream.streams")

Handler = Callable[[Sequence[EventT]], Awaitable[None]]
RecordsBetween = Callable[[str, int, int, int], Awaitable[int]]
"""``(topic, partition, start, end)`` → how many records the log holds at offsets ``start <= o < end``."""


ResumeOffset = Callable[[str, int], Awaitable[int]]
"""``(topic, partition)`` → the offset the group resumes that partition from (committed, else log start)."""


class SkippedRecords(HookstreamError):
    """The consumer skipped records of a partition; acknowledging past them would lose them.

    A HookstreamError: its message says what happened and what the worker does about it, so faust's
    crash line for it carries no traceback (``worker.ExpectedCrashTracebacks``)."""


class Halt:
    """Shared by a worker's Batches: the first failure stops all of them handing out events."""

    def __init__(self) -> None:
        self.reason: BaseException | None = None

    def __bool__(self) -> bool:
        return self.reason is not None

    def set(self, reason: BaseException) -> None:
        if self.reason is None:
            self.reason = reason

    async def stop(self, app: faust.App, reason: BaseException) -> None:
        """Halt, and crash the app with ``reason`` as the line the worker's exit names (faust's
        ``crash_reason`` ends up as whatever failed last while stopping)."""
        self.set(reason)
        app.hookstream_stop_reason = reason  # type: ignore[attr-defined]
        await app.crash(reason)


class Batches:
    def __init__(
        self,
        app: faust.App,
        name: str,
        handle: Handler,
        max_size: int,
        within_s: float,
        records_between: RecordsBetween | None = None,
        resume_offset: ResumeOffset | None = None,
        halt: Halt | None = None,
        on_skipped: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.on_skipped = on_skipped
        self.records_between = records_between
        self.resume_offset = resume_offset
        self.halt = halt if halt is not None else Halt()
        self._next: dict[tuple[str, int], int] = {}
        self._drops = 0
        self.name = name
        self._handle = handle
        self.max_size = max_size
        self.within_s = within_s
        self._buffer: list[EventT] = []
        self._arrived = asyncio.Event()
        self._lock = asyncio.Lock()

    async def run(self, stream: StreamT) -> None:
        """The agent's body: read events (not acknowledged here) and hand them out in batches."""
        flusher = asyncio.ensure_future(self._flush_after_a_while())
        try:
            async for event in stream.noack().events():
                if self.halt:
                    return  # not acknowledged: the restarted worker reads it again
                verdict = await self._in_sequence(event)
                if verdict is None:
                    continue  # read before a rebalance: faust reads it again from the committed offset
                if not verdict:
                    return
                self._buffer.append(event)
                self._arrived.set()
                if len(self._buffer) >= self.max_size:
                    await self.flush()
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def flush(self) -> None:
        """Handle what is buffered now (after the batch in hand, if any)."""
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch or self.halt:
                return
            try:
                await self._handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.halt.set(exc)
                # A HookstreamError's message says it all (e.g. a topic too small, and its fix).
                log.error(
                    "%s: a batch of %d failed; stopping so a restart reads it again: %s",
                    self.name,
                    len(batch),
                    exc,
                    exc_info=not isinstance(exc, HookstreamError),
                )
                await self.app.crash(exc)
                raise

    async def idle(self) -> None:
        """Return once the batch in hand (and any flush already waiting for it) is handled."""
        async with self._lock:
            pass

    def drop(self) -> None:
        """A rebalance: forget what was read but not handled (faust reads it again)."""
        self._buffer = []
        self._next = {}
        self._drops += 1

    async def _in_sequence(self, event: EventT) -> bool | None:
        """True: hand the event out. False: the app was stopped because records were skipped.
        None: a rebalance began while the event waited here (for the broker's answer about its
        partition's offsets), so ``drop`` forgot where the partition was; handled, the event
        would look like a jump past the committed offset. It is left: faust reads it again from
        there. (faust's stream itself lets no event of an earlier generation through.)"""
        drops = self._drops
        message = event.message
        where = (message.topic, message.partition)
        expected = self._next.get(where)
        if expected is None:
            expected = await self._resume_offset(message.topic, message.partition)
            if self._drops != drops:
                return None
        self._next[where] = message.offset + 1
        if expected is None or message.offset <= expected or self.records_between is None:
            return True
        skipped = await self.records_between(message.topic, message.partition, expected, message.offset)
        if self._drops != drops:
            return None
        if not skipped:
            return True  # transaction markers, watermarks or compacted records: nothing to lose
        exc = SkippedRecords(
            f"the consumer skipped {skipped} record(s) of {message.topic}[{message.partition}] at offsets "
            f"{expected}..{message.offset - 1}; stopping before acknowledging past them, so that a "
            "restart reads them again"
        )
        log.error("%s: %s", self.name, exc)
        if self.on_skipped is not None:
            self.on_skipped(skipped)
        await self.flush()  # everything buffered precedes the skipped records
        await self.halt.stop(self.app, exc)
        return False

    async def _resume_offset(self, topic: str, partition: int) -> int | None:
        """Where the first event read from a partition should be; None if that cannot be known."""
        if self.resume_offset is None:
            return None
        try:
            return await self.resume_offset(topic, partition)
        except Exception as exc:  # the broker is busy or unreachable: the check is skipped, not the event
            log.warning("%s: cannot check where %s[%d] resumes: %s", self.name, topic, partition, exc)
            return None

    async def _flush_after_a_while(self) -> None:
        with contextlib.suppress(Exception):  # logged and crashed in flush()
            while True:
                await self._arrived.wait()
                await asyncio.sleep(self.within_s)
                self._arrived.clear()
                await self.flush()

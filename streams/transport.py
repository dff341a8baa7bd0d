"""faust's aiokafka transport, with the seek back to the committed offsets made complete and
done before the stream partitions read again, and windowed tables that RocksDB expires and
whose changelogs go out in batches; and ``current_event``, which attributes a table write to
the event it belongs to. The one module that reaches into faust's private names.

At every assignment (and whenever its fetcher finds the flow stopped) faust drops records it
fetched but did not hand to a stream (partitions still paused for table recovery, a
generation change mid-batch, a rebalance starting), trusting ``perform_seek`` to set each
partition back to the group's committed offset. That seek is aiokafka's
``seek_to_committed``, which moves only partitions whose committed offset is above 0: one
with nothing committed yet, or 0, keeps the position past the dropped records. The worker
would then resume past them; ``batching`` notices the jump and restarts the process: nothing
is lost, but a worker with a backlog would restart again and again.

Here the stream partitions with no committed offset go back to the beginning (the app's
``consumer_auto_offset_reset`` is "earliest": where the group starts anyway), and those at 0
to 0. Changelog partitions are left to faust's table recovery, which seeks them itself.

Second, faust's recovery (``Recovery._resume_streams`` and ``on_recovery_completed`` in
faust-streaming 0.15.3) resumes the stream partitions *before* awaiting ``perform_seek``. Its
fetcher is still running for the changelogs, so in between it hands the streams records from
wherever the partitions had been fetched to, past the committed offset; the seek then moves
them back, and the stream has seen a jump (faust-streaming #216: PR #217 put the flow's resume
after the seek, not the partitions').
Here stream partitions asked to resume wait, paused, until the seek that follows has finished.

Third, faust's fetcher hands its consumer thread the set of active partitions itself, not a
copy (faust-streaming #239 made ``_set_active_tps`` update that set in place), and checks that
it is not empty only before the hop to the thread. aiokafka's ``fetched_records`` returns every
partition's records when asked for none, and faust then drops those of paused partitions as it
iterates: when the active set emptied in between (the changelogs paused once recovery finished,
the stream partitions still waiting for their seek), records just fetched from the committed
offset were consumed and dropped, and the stream resumed past them (robinhood/faust PR #69
fixed this race with a copy and a lock; the copy is gone from faust-streaming 0.15.3). Here the
thread gets a snapshot taken before the hop, and an empty one fetches nothing.

Fourth, a seek that never returns leaves the worker silent for good. faust's recovery awaits it
with a timeout (``broker_request_timeout``) through ``Recovery._wait``, which reports a timeout as
``ServiceStopped``: the recovery task then ends, and no later rebalance resumes anything (the
class of hangs in faust-streaming #21). The consumer says how long stream partitions have waited
for their seek (``waiting_for_seek_s``); the app's watchdog stops the worker when that passes
``SEEK_STALL_S``, so its supervisor restarts it instead of it sitting assigned and idle.

Fifth (a table, not the consumer): windowed tables expire through an in-memory index of every key
written, which a RocksDB store loses at a restart, so its old keys never expire (faust-streaming
#385). ``Table`` turns that index off when the store has a TTL (``tables.store_options``):
RocksDB expires the entries itself.

Sixth, faust sends a table's changelog one record per write: each goes through its producer
buffer (``send_soon``), a task that sends it alone, and a callback that stores its offset; the
stream waits whenever more than 100 are queued ("producer buffer full"). The stages write
hundreds per batch, so ``Table`` queues the records of one turn of the event loop and sends
them in whole batches through the stages' producer (``kafka.produce``), storing the offset of
each batch's last record where faust's callback stores each record's.

Seventh, faust's fetcher hands every message to the conductor through ``wait_first(callback(
message), suspend_flow.wait())`` (``Consumer._drain_messages``), and mode's ``wait_first`` wraps
each argument, and the service's stopped and crashed events, in a task of its own: four tasks and
an ``asyncio.wait`` per message, twice per event (the raw topic and the repartition topic), where
the callback almost never has to wait (it decodes the message and puts it in a queue with room).
Here the callback runs at once, as a task would start it, and only one that does have to wait
(flow control, a full queue) goes on in a task, through mode's own ``wait_first``; the result is
the same, without the four tasks per message. No upstream issue or fix exists for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiokafka
import faust
from aiokafka import TopicPartition
from faust.streams import _current_event  # faust keeps the current event in this ContextVar
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitArgT, WaitResults

from hookstream.kafka.produce import OutRecord, Sent, delivered

log = logging.getLogger("hookstream.streams")

SEEK_STALL_S = 60.0
"""How long stream partitions may wait for the seek to the committed offsets (a round trip or
two to the group coordinator) before the worker counts itself stalled and stops."""


async def seek_to_committed(
    consumer: aiokafka.AIOKafkaConsumer, is_changelog: Callable[[TopicPartition], bool]
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to the group's committed offset (aiokafka's own seek),
    and the stream partitions it leaves alone (committed None or 0) to where the group starts
    them: the beginning, or 0. Returns the committed offsets, as aiokafka's does."""
    committed = await consumer.seek_to_committed()
    unset = []
    for tp, offset in committed.items():
        if is_changelog(tp):
            continue
        if offset is None:
            unset.append(tp)
        elif offset == 0:
            consumer.seek(tp, 0)
    if unset:
        await consumer.seek_to_beginning(*unset)
    return committed


class _Started:
    """The rest of a coroutine that already ran up to its first suspension on ``yielded``, as
    an awaitable a task can drive (it yields what the coroutine yields and passes back what the
    task sends or throws in)."""

    def __init__(self, coro: Any, yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Any:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # noqa: BLE001 - cancellation and errors go to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _rest(started: _Started) -> Any:
    return await started


def close_unawaited(awaitables: Iterable[WaitArgT]) -> None:
    for waited in awaitables:
        if asyncio.iscoroutine(waited):
            waited.close()


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def getmany(self, active_partitions: set[Any] | None, timeout: float) -> Any:
        if active_partitions is None:  # a client-only app: every partition
            return await super().getmany(None, timeout)
        wanted = frozenset(active_partitions)
        if not wanted:
            return {}
        return await super().getmany(wanted, timeout)  # type: ignore[arg-type]

    async def seek_to_committed(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        return await self.call_thread(seek_to_committed, consumer, self.consumer._is_changelog_tp)


class Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resume_after_seek: set[Any] = set()
        self._waiting_since: float | None = None

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        """mode's ``wait_first``, except that a first coroutine that finishes without waiting
        has won at once, with no task for any argument (the seventh fix)."""
        first = coros[0] if coros else None
        if not asyncio.iscoroutine(first) or self.should_stop:
            return await super().wait_first(*coros, timeout=timeout)
        try:
            yielded = first.send(None)
        except StopIteration as stop:
            close_unawaited(coros[1:])
            return WaitResults([first], [stop.value], False)
        except BaseException:
            close_unawaited(coros[1:])
            raise
        return await super().wait_first(_rest(_Started(first, yielded)), *coros[1:], timeout=timeout)

    def resume_partitions(self, tps: Iterable[Any]) -> None:
        """Changelog partitions resume now; stream partitions once ``perform_seek`` returns
        (faust calls it right after resuming them)."""
        tps = set(tps)
        streams = {tp for tp in tps if not self._is_changelog_tp(tp)}
        self._resume_after_seek |= streams
        if self._resume_after_seek and self._waiting_since is None:
            self._waiting_since = time.monotonic()
        super().resume_partitions(tps - streams)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        waiting, self._resume_after_seek = self._resume_after_seek, set()
        self._waiting_since = None
        super().resume_partitions(waiting)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._resume_after_seek -= set(revoked)
        if not self._resume_after_seek:
            self._waiting_since = None
        await super().on_partitions_revoked(revoked)

    def waiting_for_seek_s(self, now: float | None = None) -> tuple[int, float]:
        """``(partitions, seconds)``: how many stream partitions wait, paused, for a seek to the
        committed offsets, and for how long the oldest has waited (0, 0.0 when none does)."""
        if self._waiting_since is None:
            return 0, 0.0
        now = time.monotonic() if now is None else now
        return len(self._resume_after_seek), now - self._waiting_since


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


class App(faust.App):
    """faust's App with the consumer above (its producer transport is faust's own)."""

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)


@contextmanager
def current_event(event: faust.types.EventT) -> Iterator[None]:
    """Make ``event`` faust's current event, as if the stream were handing it out right now."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


@dataclass(frozen=True, slots=True)
class QueuedWrite:
    """What faust's ``Table.on_key_set`` reads of a changelog write: ``message.partition``."""

    @dataclass(frozen=True, slots=True)
    class Message:
        partition: int

    message: Message


ChangelogSender = Callable[[str, Iterable[OutRecord]], Awaitable[list[Sent]]]


class Table(faust.Table):
    """A windowed table whose RocksDB store, given a TTL (``tables.store_options``), expires
    entries itself, and whose changelog goes out in batches through ``send_changelog_with``'s
    sender. ``changelog_sent`` waits until every write so far is acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changelog_sender: ChangelogSender | None = None
        self._queued: list[OutRecord] = []
        self._queued_sent: asyncio.Future[None] | None = None
        self._unacknowledged: list[asyncio.Future[None]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def send_changelog_with(self, sender: ChangelogSender) -> None:
        self._changelog_sender = sender

    def _should_expire_keys(self) -> bool:
        if self.options and self.options.get("ttl"):
            return False
        return super()._should_expire_keys()

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> QueuedWrite:
        """Queue the write, to go out with the others of this turn of the event loop
        (``changelog_sent`` waits for them). The tables write to the changelog partition of the
        current event's, always given here."""
        if self._changelog_sender is None or partition is None:
            raise RuntimeError(f"table {self.name}: a changelog write needs a sender and a partition")
        topic = self.changelog_topic
        key_bytes, _ = topic.prepare_key(key, key_serializer or self.key_serializer)
        value_bytes, _ = topic.prepare_value(value, value_serializer or self.value_serializer)
        self._queued.append((key_bytes, value_bytes, [], partition))
        if self._queued_sent is None:
            loop = asyncio.get_running_loop()
            self._queued_sent = loop.create_future()
            self._unacknowledged.append(self._queued_sent)
            loop.call_soon(self._send_queued)
        return QueuedWrite(QueuedWrite.Message(partition))

    async def changelog_sent(self) -> None:
        """Wait until every changelog write so far is acknowledged; raises the first failure."""
        futures = list(self._unacknowledged)
        if not futures:
            return
        # ``wait``, not ``gather``: a stage cancelled while waiting (the worker stopping) must not
        # cancel the writes' futures, which their sends still settle.
        await asyncio.wait(futures)
        failed = [f for f in futures if f.exception() is not None]
        if failed:
            self._unacknowledged = [f for f in self._unacknowledged if f not in failed]
            raise failed[0].exception()  # type: ignore[misc]

    def _send_queued(self) -> None:
        records, self._queued = self._queued, []
        done, self._queued_sent = self._queued_sent, None
        assert done is not None
        task = asyncio.ensure_future(self._send(records, done))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, records: list[OutRecord], done: asyncio.Future[None]) -> None:
        assert self._changelog_sender is not None
        topic = self.changelog_topic.get_topic_name()
        try:
            sent = await self._changelog_sender(topic, records)
            acks = await delivered(sent)
        except Exception as exc:
            # A stage that awaits its writes (``changelog_sent``) fails with this; for the others
            # a lost mark means a copy is forwarded again later, which consumers drop.
            log.warning("table %s: %d changelog write(s) failed: %s", self.name, len(records), exc)
            done.set_exception(exc)
            done.exception()  # retrieved: nobody may be waiting
            return
        for batch, ack in zip(sent, acks, strict=True):
            self.data.set_persisted_offset(
                TopicPartition(topic, batch.partition), ack.offset + batch.records - 1
            )
        done.set_result(None)
        self._unacknowledged.remove(done)  # a failed one stays, for ``changelog_sent`` to raise

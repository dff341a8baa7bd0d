"""Durable publishing to the raw topic with aiokafka.

One idempotent producer (acks=all) per process. Requests that arrive within ``linger_ms`` of
each other share one record batch per partition: ``publish`` (or ``enqueue``, which leaves
the waiting to its caller) appends the record to the partition's open batch and waits; the
batch is handed to aiokafka (``send_batch``) when it is full, or has lingered and its leader
has no batch in flight (a batch sealed earlier would only wait for that one; at most
``MAX_DEFER_S`` more), and every waiting request is answered
when Kafka acknowledged the batch. A deadline timer per batch, from its first record, enforces
``publish_timeout_seconds``: past it the waiting requests get PublishError (answered 503), so a
2xx is only ever sent for an acknowledged record.

Batching here rather than one ``producer.send`` per request keeps the per-request cost to an
append and a future: the request path of a webhook receiver is CPU-bound in Python.
Records are placed on partitions exactly as aiokafka's (and Java's) default partitioner
does (``kafka.produce.partition_of``), so the raw topic's layout does not depend on who
produced it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from functools import partial

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition

from hookstream.config import KafkaConfig
from hookstream.errors import PublishError, RecordTooLarge
from hookstream.kafka.admin import Admin
from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.message_size import compressed_bound
from hookstream.kafka.produce import batch_bytes, partition_of
from hookstream.schemas.progress import Progress, encode_progress, progress_headers

log = logging.getLogger("hookstream.ingest")

MAX_DEFER_S = 0.1
"""Longest a lingered batch waits for its leader's batches in flight before it is sealed anyway."""
REPLACE_QUIET_S = 60.0
"""A producer replaced within this long of the previous one waits first (see ``replace_delay``)."""


def replace_delay(previous: float, since_previous: float) -> float:
    """Seconds to wait before connecting a replacement producer.

    No wait for the first replacement in a while; then 0.5 s, doubling to 10 s while replacements
    keep following each other within ``REPLACE_QUIET_S``. A cluster that refuses every batch
    (say, no write permission) must not get a new producer per batch.
    """
    if since_previous >= REPLACE_QUIET_S:
        return 0.0
    return min(max(previous * 2, 0.5), 10.0)


async def ensure_raw_topic(kafka: KafkaConfig) -> int:
    """Create the raw topic if it does not exist, sized for ``kafka.max_message_bytes``; returns
    the largest record batch it takes.

    An existing topic with another partition count is an error (the dedupe table is
    co-partitioned with it); one that takes smaller records than the config is a warning, and
    its own limit is returned: events larger than that are refused (413) one by one rather
    than sent for the broker to refuse the whole batch they share.
    """
    topic = kafka.raw_topic
    async with Admin(kafka, "admin") as admin:
        sized = await admin.ensure_sized_topic(topic, kafka.partitions, log)
        if sized.created:  # with kafka.partitions; its metadata may take a moment to spread
            log.info("created topic", extra={"topic": topic, "partitions": kafka.partitions})
        else:
            await admin.require_partitions(
                {topic: kafka.partitions},
                "the dedupe table is co-partitioned with it, so the counts must match",
            )
        return sized.record_limit


class _Batch:
    """Records for one partition, and the requests waiting for their acknowledgement."""

    __slots__ = (
        "partition",
        "node",
        "builder",
        "waiters",
        "linger",
        "deadline",
        "lingered",
        "received_min",
        "marks",
    )

    def __init__(self, partition: int, node: int, builder: BatchBuilder) -> None:
        self.partition = partition
        self.node = node
        """The partition's leader when the batch opened: batches wait per leader (see ``_lingered``)."""
        self.builder = builder
        self.lingered = False
        """Its linger passed while the leader had batches in flight: sealed once it has none."""
        self.waiters: list[asyncio.Future[None]] = []
        self.linger: asyncio.TimerHandle | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.received_min: int | None = None
        """The earliest received_at (epoch ms) of its records: what a progress marker must wait for."""
        self.marks: list[asyncio.Future[None]] = []
        """Its progress markers' futures (not requests: ``waiters`` are)."""

    def fail(self, error: PublishError) -> None:
        for waiter in (*self.waiters, *self.marks):
            if not waiter.done():
                waiter.set_exception(PublishError(str(error)))  # one instance per request: tracebacks


class Publisher:
    """Owns the producer. ``start`` keeps retrying in the background until Kafka answers."""

    def __init__(
        self, config: KafkaConfig, *, max_defer_s: float = MAX_DEFER_S, progress_interval_ms: int = 0
    ) -> None:
        self.config = config
        self.instance = uuid.uuid4().hex[:16]
        """Names this process in its progress markers."""
        self._progress_s = progress_interval_ms / 1000
        self._progress_task: asyncio.Task[None] | None = None
        self._max_defer_s = max_defer_s
        self._producer: AIOKafkaProducer | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._replace_task: asyncio.Task[None] | None = None
        self._replaced_at = float("-inf")
        self._replace_delay = 0.0
        self._ready = asyncio.Event()
        self._closing = False
        self._partitions: list[int] = []
        self._open: dict[int, _Batch] = {}
        self._submit_locks: dict[int, asyncio.Lock] = {}
        self._submitting: set[asyncio.Task[None]] = set()
        self._unsettled: set[_Batch] = set()
        self._in_flight: dict[int, int] = {}
        """Batches handed to aiokafka whose delivery has not completed, per leader node."""
        self._linger_s = config.linger_ms / 1000
        self.batches_sent = 0
        """Batches handed to Kafka, and the records in them: their ratio is how well requests share."""
        self.records_sent = 0
        self.batches_abandoned = 0
        """Batches not sent because every request in them had been answered 503 already."""
        self._timeout_s = config.publish_timeout_seconds
        self.record_limit = config.max_message_bytes
        """The largest record batch the raw topic takes (known once connected)."""

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def waiting(self) -> int:
        """Requests waiting for Kafka to acknowledge their record (counted when asked, not kept)."""
        return sum(1 for batch in self._unsettled for waiter in batch.waiters if not waiter.done())

    def _make_producer(self, record_limit: int) -> AIOKafkaProducer:
        c = self.config
        timeout_ms = int(c.publish_timeout_seconds * 1000)
        return AIOKafkaProducer(
            bootstrap_servers=c.bootstrap_servers,
            client_id=f"{c.client_id}-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # batches are sealed here before aiokafka sees them
            compression_type=None if c.compression == "none" else c.compression,
            # Keep retrying a batch for as long as a request might still be waiting, and a bit.
            request_timeout_ms=max(timeout_ms, 5000),
            retry_backoff_ms=100,
            max_batch_size=batch_bytes(record_limit),
            max_request_size=c.max_message_bytes,
        )

    async def start(self) -> None:
        """Begin connecting; returns at once. ``ready`` turns true once Kafka answered."""
        self._connect_task = asyncio.create_task(self._connect_loop(), name="hookstream-kafka-connect")
        if self._progress_s > 0:
            self._progress_task = asyncio.create_task(self._progress_loop(), name="hookstream-progress")

    def received_before(self, now_ms: int) -> int:
        """Every record enqueued with a received_at before the returned time (epoch ms) has been
        acknowledged, or refused and answered 503; ``now_ms`` when none is waiting. A request
        stamps its received_at and enqueues its record in one step of the event loop, so no
        request between the two is missed."""
        waiting = [b.received_min for b in self._unsettled if b.received_min is not None]
        return min(waiting, default=now_ms)

    def mark_progress(self, before_ms: int | None) -> None:
        """Append a progress marker to every raw partition, behind the records batched there."""
        producer = self._producer
        if producer is None or not self._partitions:
            return
        value = encode_progress(Progress(self.instance, before_ms))
        headers = progress_headers()
        # A marker rides in the partition's open batch, or in a batch of its own where nothing is
        # waiting for Kafka; where something is (Kafka slow or away), it waits for the next round
        # instead of queueing batches of markers ahead of the requests' (leaving ones always go).
        busy = {b.partition for b in self._unsettled} - set(self._open)
        for partition in self._partitions:
            if before_ms is None or partition not in busy:
                self._append(producer, partition, None, value, headers, marker=True).add_done_callback(
                    _ignore_result
                )

    async def _progress_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._progress_s)
            if not self._closing:
                try:
                    self.mark_progress(self.received_before(int(time.time() * 1000)))
                except Exception as exc:  # the next round tries again; requests are unaffected
                    log.warning("could not append progress markers", extra={"error": str(exc)})

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _connect_loop(self) -> None:
        delay = 0.5
        c = self.config
        while not self._closing:
            producer = None
            try:
                record_limit = await ensure_raw_topic(c)
                producer = self._make_producer(record_limit)
                await producer.start()
                partitions = sorted(await producer.partitions_for(c.raw_topic))
                if len(partitions) != c.partitions:  # metadata of a topic created a moment ago
                    raise UnknownTopicOrPartitionError(
                        f"{len(partitions)} of {c.partitions} partitions known"
                    )
            except KafkaLayerError as exc:
                log.error("cannot publish: %s", exc)
                if producer is not None:
                    await producer.stop()
                return
            except (KafkaError, OSError) as exc:
                if producer is not None:
                    await producer.stop()
                log.warning(
                    "Kafka not reachable yet; retrying",
                    extra={"bootstrap_servers": c.bootstrap_servers, "error": str(exc), "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            self.record_limit = record_limit
            self._partitions = partitions
            self._producer = producer
            self._ready.set()
            log.info("producer connected", extra={"bootstrap_servers": c.bootstrap_servers})
            return

    def partition_for(self, key: bytes) -> int:
        """The partition of ``key``, as aiokafka's and Java's default partitioners place it."""
        return self._partitions[partition_of(key, len(self._partitions))]

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> float:
        """Send one record and wait for its acknowledgement; returns the seconds it took."""
        started = time.perf_counter()
        await self.enqueue(key, value, headers)
        return time.perf_counter() - started

    def enqueue(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], received_ms: int | None = None
    ) -> asyncio.Future[None]:
        """Add one record to its partition's batch; the future is done once Kafka acknowledged it.

        ``publish`` without its coroutine, for the request path: every coroutine between the
        request's task and this future is resumed when it completes. Raises PublishError (no
        producer) and RecordTooLarge at once; the future fails with PublishError.
        """
        if self._closing:
            raise PublishError("shutting down")
        producer = self._producer
        if producer is None:
            raise PublishError("not connected to Kafka yet")
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
        if compressed_bound(size, self.config.compression) > self.record_limit:
            raise RecordTooLarge(self._too_large(size))
        return self._append(producer, self.partition_for(key), key, value, headers, received_ms)

    def _append(
        self,
        producer: AIOKafkaProducer,
        partition: int,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        received_ms: int | None = None,
        *,
        marker: bool = False,
    ) -> asyncio.Future[None]:
        batch = self._open.get(partition) or self._open_batch(producer, partition)
        if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            self._seal(batch)  # full: hand it over and start the next one
            batch = self._open_batch(producer, partition)
            batch.builder.append(timestamp=None, key=key, value=value, headers=headers)  # first always fits
        if received_ms is not None and (batch.received_min is None or received_ms < batch.received_min):
            batch.received_min = received_ms
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (batch.marks if marker else batch.waiters).append(waiter)
        return waiter

    def _too_large(self, size: int) -> str:
        c = self.config
        limit = (
            f"kafka.max_message_bytes is {c.max_message_bytes}"
            if self.record_limit == c.max_message_bytes
            else f"topic {c.raw_topic} takes records up to {self.record_limit} bytes (max.message.bytes)"
        )
        grows = (
            ""
            if c.compression == "none"
            else f", and up to {compressed_bound(size, c.compression)} compressed"
        )
        return f"the event is {size} bytes in its envelope{grows}; {limit}"

    def _open_batch(self, producer: AIOKafkaProducer, partition: int) -> _Batch:
        loop = asyncio.get_running_loop()
        leader = producer.client.cluster.leader_for_partition(
            TopicPartition(self.config.raw_topic, partition)
        )
        batch = _Batch(partition, -1 if leader is None else leader, producer.create_batch())
        batch.linger = loop.call_later(self._linger_s, self._lingered, batch)
        batch.deadline = loop.call_later(self._timeout_s, self._expire, batch)
        self._open[partition] = batch
        self._unsettled.add(batch)
        return batch

    def _lingered(self, batch: _Batch) -> None:
        """``linger_ms`` passed since the batch's first record.

        aiokafka keeps one produce request in flight per broker, so while the leader still has
        batches in flight a sealed batch would only wait in its queue. It stays open instead
        and takes the requests that arrive meanwhile, sealed as soon as the leader has nothing
        in flight: bigger batches, fewer of them, and no request answered later for it.
        """
        if self._open.get(batch.partition) is not batch:
            return
        if self._in_flight.get(batch.node):
            batch.lingered = True
            # Bounded: a batch in flight for long (retrying) must not hold the others back.
            batch.linger = asyncio.get_running_loop().call_later(self._max_defer_s, self._seal, batch)
        else:
            self._seal(batch)

    def _seal(self, batch: _Batch) -> None:
        """No more records for ``batch``: hand it to aiokafka, in order per partition."""
        if self._open.get(batch.partition) is not batch:
            return
        del self._open[batch.partition]
        if batch.linger is not None:
            batch.linger.cancel()
        batch.builder.close()
        task = asyncio.get_running_loop().create_task(self._submit(batch))
        self._submitting.add(task)
        task.add_done_callback(self._submitting.discard)

    async def _submit(self, batch: _Batch) -> None:
        lock = self._submit_locks.get(batch.partition)
        if lock is None:
            lock = self._submit_locks[batch.partition] = asyncio.Lock()
        producer = self._producer
        try:
            async with lock:  # asyncio locks are FIFO: batches of a partition keep their order
                if producer is None:
                    raise PublishError("the producer is closed")
                if batch.waiters and all(waiter.done() for waiter in batch.waiters):
                    # Every request was already answered 503 (Kafka was too slow or away): its
                    # provider will retry. Not sending keeps a long outage from piling up
                    # batches behind the one aiokafka is still trying to deliver.
                    self.batches_abandoned += 1
                    self._settle(batch, PublishError("abandoned"))
                    return
                self.batches_sent += 1
                self.records_sent += len(batch.waiters)
                delivery = await producer.send_batch(
                    batch.builder, self.config.raw_topic, partition=batch.partition
                )
        except PublishError as exc:
            self._settle(batch, exc)
        except Exception as exc:  # aiokafka refused the batch (closed, timed out waiting for room)
            self._settle(batch, PublishError(f"Kafka refused the record: {exc}"))
        else:
            self._in_flight[batch.node] = self._in_flight.get(batch.node, 0) + 1
            delivery.add_done_callback(partial(self._delivered, batch, producer))

    def _delivered(self, batch: _Batch, producer: AIOKafkaProducer, delivery: asyncio.Future[object]) -> None:
        left = self._in_flight[batch.node] = self._in_flight[batch.node] - 1
        if not left:
            for waiting in [b for b in self._open.values() if b.lingered and b.node == batch.node]:
                self._seal(waiting)
        if delivery.cancelled():
            self._settle(batch, PublishError("the send was cancelled"))
        elif (exc := delivery.exception()) is not None:
            self._settle(batch, PublishError(f"Kafka refused the record: {exc}"))
            self._replace_producer(producer, exc)
        else:
            self._settle(batch, None)

    def _replace_producer(self, producer: AIOKafkaProducer, cause: BaseException) -> None:
        """A batch was refused for good: start again with a new producer.

        aiokafka's idempotent producer counts a batch's sequence numbers when it sends it, and
        does not give them back when the broker refuses the batch: every later batch for that
        partition would be refused as out of order, for as long as the process lives. A new
        producer gets a new producer id, whose sequences start afresh; connecting again also
        re-reads the raw topic's limit. Meanwhile requests are answered 503 and /readyz says so.
        (While Kafka is only unreachable, aiokafka keeps retrying and nothing fails here.)
        """
        if producer is not self._producer or self._closing:  # replaced already, or stopping
            return
        now = time.monotonic()
        self._replace_delay = replace_delay(self._replace_delay, now - self._replaced_at)
        self._replaced_at = now
        log.error(
            "Kafka refused a batch for good (%s); replacing the producer",
            cause,
            extra={"retry_in_s": self._replace_delay},
        )
        self._producer = None
        self._ready.clear()
        delay = self._replace_delay

        async def replace() -> None:
            await producer.stop()  # what it still has in flight is answered either way
            await asyncio.sleep(delay)
            if not self._closing:
                self._connect_task = asyncio.create_task(
                    self._connect_loop(), name="hookstream-kafka-connect"
                )

        self._replace_task = asyncio.get_running_loop().create_task(
            replace(), name="hookstream-kafka-replace"
        )

    def _settle(self, batch: _Batch, error: PublishError | None) -> None:
        if batch.deadline is not None:
            batch.deadline.cancel()
        self._unsettled.discard(batch)
        if error is not None:
            batch.fail(error)
            return
        for waiter in (*batch.waiters, *batch.marks):
            if not waiter.done():
                waiter.set_result(None)

    def _expire(self, batch: _Batch) -> None:
        """The publish timeout passed: the waiting requests are answered 503 (the batch may still land).

        A batch still open (a linger longer than the timeout) was never handed over: it is
        dropped here, so its records are never sent.
        """
        batch.fail(PublishError(f"Kafka did not acknowledge within {self._timeout_s:g} s"))
        if self._open.get(batch.partition) is batch:
            del self._open[batch.partition]
            if batch.linger is not None:
                batch.linger.cancel()
            self.batches_abandoned += 1
            self._settle(batch, None)

    async def stop(self) -> None:
        """Hand over what is batched, wait for it (up to the publish timeout), flush and close."""
        if self._progress_task is not None:
            self._progress_task.cancel()
            self.mark_progress(None)  # streams need not wait for this process any more
        self._closing = True
        if self._replace_task is not None:  # the old producer's stop; no reconnect after it
            await asyncio.wait({self._replace_task}, timeout=self._timeout_s)
            self._replace_task.cancel()  # still waiting out its delay: nothing left to do
        if self._connect_task and not self._connect_task.done():
            self._connect_task.cancel()
            try:
                await self._connect_task
            except asyncio.CancelledError:
                pass
        for batch in list(self._open.values()):
            self._seal(batch)
        if self._submitting:
            await asyncio.wait(set(self._submitting), timeout=self._timeout_s)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        for batch in list(self._unsettled):
            self._settle(batch, PublishError("the producer stopped before Kafka acknowledged"))
        self._ready.clear()


def _ignore_result(future: asyncio.Future[None]) -> None:
    """A progress marker that did not land is superseded by the next one."""
    if not future.cancelled():
        future.exception()

"""The live consumer: one Kafka consumer group per consumer, at-least-once, per-key order.

- Group ``hookstream.consumer.<name>``; a new group starts at ``start`` (earliest or latest),
  and its starting offsets are committed at once, so a crash before the first event cannot move
  a ``latest`` consumer past events it never saw.
- Events of one ordering key run one after the other (a KeyedScheduler keyed by partition and
  record key); different keys run concurrently, at most ``concurrency`` handlers at a time.
- An offset is committed only when every event before it in its partition succeeded or went to
  the DLQ (OffsetTracker); so a crash redelivers, never skips.
- A rate limit or an open circuit breaker holds handlers back; their keys' next events queue up
  behind them and fetching pauses (the backpressure above): nothing is dropped, the lag grows,
  and the lag metric and a progress line every few seconds say so.
- Stop (SIGTERM/SIGINT via ``stopping``) and rebalances let running handlers finish (up to
  ``drain_timeout_seconds``), drop what had not started, commit, then let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError

from hookstream.config import KafkaConfig
from hookstream.kafka.message_size import fetch_sizes
from hookstream.kafka.offsets import OffsetTracker

from .breaker import BreakerState
from .groups import group_id, pin_new_group_start, wait_for_topic
from .keyed import KeyedScheduler
from .metrics import ConsumerMetrics
from .pipeline import DeadLetterWriter, Outcome, Pipeline, Work
from .registry import ConsumerSpec

log = logging.getLogger("hookstream.consumers")

Progress = Callable[[str], None]
PROGRESS_EVERY_SECONDS = 5.0


def log_progress(line: str) -> None:
    log.info(line)


@dataclass
class _AssignedPartition:
    """What the runtime tracks of one assigned partition: its offsets, and the event that cuts its
    handlers' retry back-offs short once it is revoked."""

    offsets: OffsetTracker[None]
    abandon: asyncio.Event


def _partitions(tps: Sequence[TopicPartition] | set[TopicPartition]) -> str:
    return ", ".join(str(p) for p in sorted(tp.partition for tp in tps)) or "none"


class ConsumerRuntime:
    def __init__(
        self,
        kafka: KafkaConfig,
        spec: ConsumerSpec,
        *,
        stopping: asyncio.Event,
        progress: Progress = log_progress,
        poll_timeout_ms: int = 100,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self.kafka = kafka
        self.spec = spec
        self.settings = spec.settings
        self.stopping = stopping
        self.progress = progress
        self.poll_timeout_ms = poll_timeout_ms
        self.metrics = metrics or ConsumerMetrics()
        self.lag = 0
        """Records of the assigned partitions not yet done, as of the last fetch."""
        self.topic = kafka.events_topic
        self.group = group_id(spec.name)
        self.who = f"consumer {spec.name}"
        self.max_pending = max(200, 64 * self.settings.concurrency)
        self._partitions: dict[TopicPartition, _AssignedPartition] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._scheduler: KeyedScheduler[tuple[int, bytes | None], Work] | None = None
        self._pipeline: Pipeline | None = None
        self._paused = False
        self.assigned = asyncio.Event()
        """Set once the group has assigned partitions (for tests and tools that wait for it)."""

    @property
    def counts(self) -> dict[Outcome, int]:
        return dict(self._pipeline.counts) if self._pipeline else {o: 0 for o in Outcome}

    async def run(self) -> None:
        action = self.spec.make_action()
        dead_letters = DeadLetterWriter(self.kafka, self.spec.name)
        await action.open()
        try:
            if not await wait_for_topic(self.kafka, self.topic, self.stopping, self.progress, self.who):
                return
            await dead_letters.start()
            fresh = await pin_new_group_start(self.kafka, self.group, self.topic, self.settings.start)
            if fresh:
                self.progress(
                    f"{self.who}: new group {self.group}: starting at the {self.settings.start} offsets "
                    f"of partition(s) {', '.join(map(str, fresh))}"
                )
            self._pipeline = Pipeline(self.spec, action, dead_letters, self.stopping, metrics=self.metrics)
            self._scheduler = KeyedScheduler(self._process, name=self.spec.name)
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.kafka.bootstrap_servers,
                group_id=self.group,
                client_id=f"{self.kafka.client_id}-consumer-{self.spec.name}",
                enable_auto_commit=False,
                auto_offset_reset=self.settings.start,
                isolation_level="read_committed",
                max_poll_records=500,
                **fetch_sizes(self.kafka),
                # A rebalance waits for our running handlers (drain_timeout_seconds): the group must too.
                rebalance_timeout_ms=int(self.settings.drain_timeout_seconds * 1000) + 10_000,
            )
            self._consumer.subscribe([self.topic], listener=_Listener(self))
            self.progress(f"{self.who}: joining group {self.group} on {self.topic} …")
            ticker = asyncio.create_task(self._report_waiting())
            try:
                await self._consumer.start()
                await self._loop()
            finally:
                ticker.cancel()
                await self._shutdown()
        finally:
            await dead_letters.stop()
            await action.close()

    # -- the loop ---------------------------------------------------------------------------
    async def _loop(self) -> None:
        consumer, scheduler, pipeline = self._consumer, self._scheduler, self._pipeline
        assert consumer is not None and scheduler is not None and pipeline is not None
        while not self.stopping.is_set():
            if scheduler.failure is not None:
                raise RuntimeError(f"{self.who}: internal error in event handling") from scheduler.failure
            self._apply_backpressure()
            try:
                batch = await consumer.getmany(timeout_ms=self.poll_timeout_ms)
            except OffsetOutOfRangeError as exc:
                await self._out_of_range(exc)
                continue
            except KafkaError as exc:
                log.warning("fetch failed; retrying", extra={"consumer": self.spec.name, "error": str(exc)})
                await asyncio.sleep(0.5)
                continue
            assignment = consumer.assignment()
            for tp, records in batch.items():
                if tp not in assignment:  # fetched just as it was revoked: its new owner reads it
                    continue
                # Created here too: aiokafka may hand out records before the assign callback ran.
                partition = self._partition(tp)
                for record in records:
                    if not partition.offsets.fetched(record.offset):
                        continue
                    work = pipeline.prepare(record)
                    if work is None:
                        partition.offsets.done(record.offset)
                        continue
                    work.abandon = partition.abandon
                    work.tag = partition
                    scheduler.submit((tp.partition, record.key), work)
            await self._commit()
            self._measure_lag()

    def _measure_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        lag = 0
        for tp, partition in self._partitions.items():
            end, done_until = consumer.highwater(tp), partition.offsets.done_until
            if end is not None and done_until is not None:
                lag += max(0, end - done_until)
        self.lag = lag
        self.metrics.lag.labels(self.spec.name).set(lag)

    async def _report_waiting(self) -> None:
        """While the group is (re)forming, say so every few seconds: a join or rebalance can take
        a session timeout when a member died without leaving. Once it is formed, say how far
        behind a rate limit or an open breaker holds the consumer."""
        waiting_since: float | None = None
        lag_told = time.monotonic()
        while True:
            await asyncio.sleep(PROGRESS_EVERY_SECONDS / 5)
            now = time.monotonic()
            if self.assigned.is_set():
                waiting_since = None
                if now - lag_told >= PROGRESS_EVERY_SECONDS:
                    lag_told = now
                    self._report_held_back()
                continue
            if waiting_since is None:
                waiting_since = now
                told = now
            elif now - told >= PROGRESS_EVERY_SECONDS:
                told = now
                self.progress(
                    f"{self.who}: still waiting for group {self.group} to (re)assign partitions "
                    f"({now - waiting_since:.0f} s; a member that died without leaving is waited for "
                    "until its session times out)"
                )

    def _report_held_back(self) -> None:
        """Say how far behind the consumer is while its rate limit or breaker holds it back."""
        pipeline = self._pipeline
        if pipeline is None or not self.lag:
            return
        reasons = []
        breaker = pipeline.breaker
        if breaker is not None and breaker.state is not BreakerState.CLOSED:
            reasons.append(f"circuit breaker {breaker.state.value}")
        if pipeline.bucket is not None and self._paused:
            reasons.append(f"rate limit {self.settings.rate_limit}")
        if reasons:
            self.progress(f"{self.who}: {' and '.join(reasons)}: {self.lag} event(s) waiting (lag)")

    async def _process(self, work: Work) -> None:
        assert self._pipeline is not None
        outcome = await self._pipeline.deliver(work)
        partition: _AssignedPartition = work.tag
        if outcome is not Outcome.INTERRUPTED and not partition.offsets.revoked:
            partition.offsets.done(work.record.offset)

    def _apply_backpressure(self) -> None:
        consumer, scheduler = self._consumer, self._scheduler
        assert consumer is not None and scheduler is not None
        if not self._paused and scheduler.pending >= self.max_pending:
            consumer.pause(*consumer.assignment())
            self._paused = True
        elif self._paused and scheduler.pending <= self.max_pending // 2:
            consumer.resume(*consumer.assignment())
            self._paused = False

    async def _out_of_range(self, exc: OffsetOutOfRangeError) -> None:
        assert self._consumer is not None
        tps = list(exc.args[0]) if exc.args and isinstance(exc.args[0], dict) else []
        tps = tps or list(self._consumer.assignment())
        log.error(
            "committed offsets are outside the topic's retention; resuming per `start`",
            extra={
                "consumer": self.spec.name,
                "partitions": [tp.partition for tp in tps],
                "start": self.settings.start,
            },
        )
        await self._let_go(set(tps), "offsets out of range")
        if self.settings.start == "earliest":
            await self._consumer.seek_to_beginning(*tps)
        else:
            await self._consumer.seek_to_end(*tps)

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        assert consumer is not None
        offsets = {
            tp: offset
            for tp, partition in self._partitions.items()
            if (only is None or tp in only) and (offset := partition.offsets.to_commit()) is not None
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # e.g. a rebalance began; the revoke handler commits again
            log.warning("commit failed", extra={"consumer": self.spec.name, "error": str(exc)})
            return
        for tp, offset in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].offsets.committed(offset)

    # -- stop and rebalance -----------------------------------------------------------------
    async def _let_go(self, tps: set[TopicPartition], why: str) -> None:
        """Finish what runs on ``tps`` (bounded), drop what waits, commit, forget them."""
        scheduler = self._scheduler
        assert scheduler is not None
        ours = {tp for tp in tps if tp in self._partitions}
        if not ours:
            return
        numbers = {tp.partition for tp in ours}
        in_flight = sum(p.offsets.pending for tp, p in self._partitions.items() if tp in ours)
        if in_flight:
            self.progress(
                f"{self.who}: {why}: finishing running handlers of partition(s) {_partitions(ours)} "
                f"(up to {self.settings.drain_timeout_seconds:g} s), then committing"
            )
        for tp in ours:  # cut retry back-offs short: what has not finished is redelivered
            self._partitions[tp].abandon.set()
        cancelled = await scheduler.settle(lambda key: key[0] in numbers, self.settings.drain_timeout_seconds)
        if cancelled:
            self.progress(
                f"{self.who}: cancelled {cancelled} handler(s) still running; they will be redelivered"
            )
        await self._commit(ours)
        for tp in ours:
            partition = self._partitions.pop(tp)
            partition.offsets.revoked = True
            partition.abandon.set()

    async def _shutdown(self) -> None:
        try:
            if self._consumer is not None and self._scheduler is not None:
                await self._let_go(set(self._partitions), "stopping")
        finally:
            if self._consumer is not None:
                await self._consumer.stop()
        counts = self.counts
        self.progress(
            f"{self.who}: stopped ({counts[Outcome.HANDLED]} handled, "
            f"{counts[Outcome.DEAD_LETTERED]} dead-lettered this run)"
        )

    def _partition(self, tp: TopicPartition) -> _AssignedPartition:
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = _AssignedPartition(OffsetTracker(), asyncio.Event())
        return partition

    def _assigned(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self._partition(tp)
        self.progress(f"{self.who}: assigned partition(s) {_partitions(tps)} of {self.topic}")
        self.assigned.set()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, runtime: ConsumerRuntime) -> None:
        self.runtime = runtime

    """aiokafka logs and swallows a listener's exceptions; ours are logged with the consumer's name."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return
        runtime = self.runtime
        runtime.assigned.clear()
        runtime.progress(f"{runtime.who}: rebalance: giving back partition(s) {_partitions(revoked)}")
        try:
            await runtime._let_go(set(revoked), "rebalance")
        except Exception:
            log.exception("could not hand partitions over cleanly", extra={"consumer": runtime.spec.name})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.runtime._assigned(set(assigned))


async def run_consumers(
    kafka: KafkaConfig,
    specs: Sequence[ConsumerSpec],
    *,
    stopping: asyncio.Event | None = None,
    progress: Progress = log_progress,
    metrics: ConsumerMetrics | None = None,
) -> None:
    """Run ``specs`` until ``stopping`` is set; if one fails, stop the others and raise its error."""
    stopping = stopping or asyncio.Event()
    metrics = metrics or ConsumerMetrics()
    runtimes = [
        ConsumerRuntime(kafka, spec, stopping=stopping, progress=progress, metrics=metrics) for spec in specs
    ]
    tasks = [asyncio.create_task(r.run(), name=f"consumer:{r.spec.name}") for r in runtimes]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
    except asyncio.CancelledError:
        stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        raise

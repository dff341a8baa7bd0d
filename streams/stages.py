"""The Kafka side of each stage: read faust events, ask the pure core, produce, acknowledge.

Every produce is awaited until the broker acknowledges it before anything that depends on it
happens (marking an id seen, acknowledging a source offset), so a crash at any point can
duplicate but never lose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from hookstream.config import KafkaConfig
from hookstream.errors import TopicTooSmall
from hookstream.kafka.message_size import refused_as_too_large
from hookstream.kafka.offsets import OffsetTracker
from hookstream.kafka.produce import OutRecord, Sent, delivered
from hookstream.schemas.envelope import (
    RawEvent,
    Routing,
    decode_raw_event,
    encode_raw_event,
    event_headers,
    header_pairs,
    routing_of,
)
from hookstream.schemas.progress import Progress, decode_progress, is_progress
from hookstream.streams.broker_offsets import OffsetsProbe
from hookstream.streams.dedupe import Deduper, Sighting
from hookstream.streams.metrics import StreamsMetrics
from hookstream.streams.output import Output
from hookstream.streams.sequence import KeyStates, Pending, Sequencer, SortKey, Verdict
from hookstream.streams.transport import Table, current_event
from hookstream.streams.watermark import (
    RawProgress,
    decode_watermarks,
    encode_watermarks,
    is_watermark,
    watermark_headers,
)

log = logging.getLogger("hookstream.streams")


def now_ms() -> int:
    """Wall clock, comparable with received_at."""
    return int(time.time() * 1000)


def monotonic_ms() -> int:
    """For how long the sequencer has held an event: immune to the wall clock being set back."""
    return int(time.monotonic() * 1000)


async def acknowledged(sent: Sequence[Sent], topic: str, kafka: KafkaConfig) -> None:
    """Wait until the broker acknowledged every batch of ``sent`` (to ``topic``).

    A record the topic refuses as too large is refused again on every try: that raises
    TopicTooSmall, naming the topic and the command that raises its limit. Nothing of the
    batch was acknowledged, so once the limit is raised a restart forwards it.
    """
    try:
        await delivered(sent)
    except MessageSizeTooLargeError:
        raise TopicTooSmall(refused_as_too_large(topic, kafka)) from None


def _coordinates(event: faust.types.EventT) -> str:
    m = event.message
    return f"{m.topic}[{m.partition}]@{m.offset}"


@dataclass(slots=True)
class Envelope:
    """One record of the raw or repartition topic: its routing, and its value left encoded.

    Ingest writes the routing as record headers, so the value is decoded only for a record
    without them (one an earlier hookstream wrote) or to flag it late."""

    routing: Routing
    value: bytes
    headers: list[tuple[str, bytes]]
    decoded: RawEvent | None = None

    @classmethod
    def read(cls, event: faust.types.EventT) -> Envelope:
        """Raises when the record is not a RawEvent envelope."""
        headers = header_pairs(event.message.headers)
        routing = routing_of(headers)
        if routing is not None:
            return cls(routing, event.value, headers)
        raw = decode_raw_event(event.value, headers)
        return cls(Routing.of(raw), event.value, headers, raw)

    def output(self, late: bool) -> tuple[bytes, list[tuple[str, bytes]]]:
        """Value and headers for the events topic: the record as ingest wrote it, unless it must
        be flagged late or was written in an earlier schema (then encoded in the current one)."""
        if self.decoded is None and not late:
            return self.value, self.headers
        raw = replace(self.decoded or decode_raw_event(self.value, self.headers), late=late)
        return encode_raw_event(raw), event_headers(raw)


class DedupeStage:
    """raw topic (keyed by event id) → repartition topic (keyed by ordering key), first sightings only."""

    def __init__(
        self,
        app: faust.App,
        deduper: Deduper,
        repartition_topic: str,
        repartition_partitions: int,
        progress: RawProgress,
        metrics: StreamsMetrics,
        raw_topic: str,
        offsets: OffsetsProbe,
        kafka: KafkaConfig,
        output: Output,
    ) -> None:
        self.app = app
        self.output = output
        self.kafka = kafka
        self.deduper = deduper
        self.repartition_topic = repartition_topic
        self.repartition_partitions = repartition_partitions
        self.progress = progress
        self.metrics = metrics
        self.raw_topic = raw_topic
        self.offsets = offsets

    async def handle(self, events: Sequence[faust.types.EventT]) -> None:
        """One batch: forward first sightings, await their acks, then mark them seen."""
        sightings: list[Sighting] = []
        read: dict[int, Envelope] = {}
        fresh, in_batch = [], set()
        for event in events:
            where = (event.message.partition, event.message.offset)
            if where in in_batch or self.progress.handled(*where):
                self.metrics.reread.inc()  # the same record again: see ``metrics.reread``
            else:
                in_batch.add(where)
                fresh.append(event)
        events = fresh
        marks: dict[int, Progress] = {}
        for event in events:
            if is_progress(event.message.headers):
                try:
                    marks[id(event)] = decode_progress(event.value)
                except ValueError as exc:
                    self.metrics.undecodable.inc()
                    log.error("skipping a malformed progress marker at %s: %s", _coordinates(event), exc)
                continue
            try:
                envelope = Envelope.read(event)
            except Exception as exc:  # a foreign or corrupt record: skip it, say where it is
                self.metrics.undecodable.inc()
                log.error("skipping a record that is not a RawEvent at %s: %s", _coordinates(event), exc)
                continue
            read[id(event)] = envelope
            sightings.append(Sighting(envelope.routing.event_id, event.message.timestamp, event))
        split = self.deduper.split(sightings)
        forwards = (read[id(sighting.ref)] for sighting in split.first)
        deliveries = await self.output.send(
            self.repartition_topic,
            ((e.routing.ordering_key.encode(), e.value, e.headers, None) for e in forwards),
        )
        await acknowledged(deliveries, self.repartition_topic, self.kafka)
        self.deduper.confirm(split.first)  # only now: see the module docstring of dedupe
        self.metrics.forwarded.inc(len(split.first))
        self.metrics.duplicates.inc(len(split.duplicates))
        for event in events:  # in offset order: a marker counts once what precedes it is forwarded
            envelope = read.get(id(event))
            self.progress.processed(
                event.message.partition,
                event.message.offset,
                envelope.routing.received_at_ms if envelope else None,
            )
            mark = marks.get(id(event))
            if mark is not None:
                self.progress.ingest_progress(event.message.partition, mark)

    async def publish_watermarks(self) -> None:
        """Tell every repartition partition how far this worker's raw partitions have got."""
        owned = self._owned_raw_partitions()
        as_of = now_ms()  # before asking: whatever lands after the answer was received later
        # Partitions with live ingest markers need no broker round trip; the others are guessed
        # from how far they were read (see ``watermark``).
        guessed = [tp for tp in owned if self.progress.marked(tp.partition, as_of) is None]
        if guessed:
            ends = await self.offsets.end_offsets(guessed)
            unknown = [tp for tp in guessed if not self.progress.knows_position(tp.partition)]
            if unknown:
                for tp, offset in (await self.offsets.resume_offsets(unknown)).items():
                    self.progress.starts_at(tp.partition, offset)
            for tp in guessed:
                if tp in ends:
                    self.progress.caught_up(tp.partition, ends[tp], as_of)
        value = encode_watermarks(self.progress.watermarks((tp.partition for tp in owned), now_ms()))
        headers = watermark_headers()
        deliveries = await self.output.send(
            self.repartition_topic, ((None, value, headers, q) for q in range(self.repartition_partitions))
        )
        await delivered(deliveries)

    def forget(self) -> None:
        """A rebalance: faust re-reads every partition from its committed offset."""
        self.progress.forget()

    def _owned_raw_partitions(self) -> list[TopicPartition]:
        try:
            assignment = self.app.consumer.assignment()
        except Exception:  # consumer not started yet
            return []
        return sorted(
            (TopicPartition(tp.topic, tp.partition) for tp in assignment if tp.topic == self.raw_topic),
            key=lambda tp: tp.partition,
        )


@dataclass
class _SequencedPartition:
    """The sequencer of one repartition partition and the acks of the messages it holds."""

    sequencer: Sequencer
    acks: OffsetTracker[Any]
    offsets: dict[int, int] = field(default_factory=dict)  # pending seq -> message offset


class SequenceStage:
    """repartition topic → events topic, each ordering key in order, late ones marked."""

    def __init__(
        self,
        app: faust.App,
        states: KeyStates,
        states_table: Table,
        events_topic: str,
        raw_partitions: int,
        max_wait_ms: int,
        metrics: StreamsMetrics,
        kafka: KafkaConfig,
        output: Output,
        silence_ms: int = 0,
        max_hold_ms: int = 0,
    ) -> None:
        self.app = app
        self.output = output
        self.kafka = kafka
        self.states = states
        self.states_table = states_table
        self.events_topic = events_topic
        self.raw_partitions = raw_partitions
        self.max_wait_ms = max_wait_ms
        self.silence_ms = silence_ms
        self.max_hold_ms = max_hold_ms
        self.metrics = metrics
        self._partitions: dict[int, _SequencedPartition] = {}
        self._silent: set[int] = set()

    async def handle(self, events: Sequence[faust.types.EventT]) -> None:
        """One batch: offer its events and watermarks, then release what is due, all at once.

        Table writes happen in the context of an event of the partition they belong to, so they
        go to that partition's changelog.
        """
        now = monotonic_ms()
        context: dict[int, faust.types.EventT] = {}  # repartition partition -> an event of it
        late: list[tuple[_SequencedPartition, Pending, int]] = []
        for event in events:
            message = event.message
            part = self._partition(message.partition)
            if part.acks.last_offset is not None and message.offset <= part.acks.last_offset:
                # The first copy is ours and will be acked; acking this one could commit past it.
                self.metrics.reread.inc()
                continue
            part.acks.track(message.offset, event)
            context[message.partition] = event
            with current_event(event):
                if is_watermark(message.headers):
                    self._watermarks(part, event, now)
                    part.acks.done(message.offset)
                else:
                    pending = self._offer(part, event, now)
                    if pending is not None:
                        late.append((part, pending, message.offset))
        self._note_silence(now)
        released: list[tuple[int, list[Pending]]] = []
        for number, event in context.items():
            part = self._partitions[number]
            with current_event(event):
                due = part.sequencer.due(now)
                part.sequencer.begin(due)
            if due:
                released.append((number, due))
        if released:
            await self.states_table.changelog_sent()  # the marks are durable before any send
        await self._publish(
            [(p, True) for _, p, _ in late] + [(p, False) for _, due in released for p in due]
        )
        for part, pending, offset in late:
            with current_event(context[pending.item[1]]):
                part.sequencer.delivered([pending])
            part.acks.done(offset)
        self.metrics.late.inc(len(late))
        for number, due in released:
            part = self._partitions[number]
            low = part.sequencer.low_watermark
            with current_event(context[number]):
                part.sequencer.delivered(due)
            for pending in due:
                by_watermark = low is not None and pending.sort.received_ms < low
                self.metrics.released.labels("watermark" if by_watermark else "max_wait").inc()
                part.acks.done(part.offsets.pop(pending.seq))
        self.metrics.buffered.set(sum(len(p.sequencer) for p in self._partitions.values()))

    def forget(self) -> None:
        """A rebalance: faust re-reads every partition from its committed offset; start afresh."""
        self._partitions = {}

    def _note_silence(self, now: int) -> None:
        silent: set[int] = set()
        for part in self._partitions.values():
            silent |= part.sequencer.silent_partitions(now)
        if silent != self._silent:
            if silent - self._silent:
                log.warning(
                    "raw partition(s) %s silent or catching up (a worker gone or paused, or a "
                    "rebalance): holding the events they may precede, up to max_hold_ms=%d",
                    ", ".join(map(str, sorted(silent - self._silent))),
                    self.max_hold_ms,
                )
            if self._silent - silent:
                log.info("raw partition(s) %s caught up", ", ".join(map(str, sorted(self._silent - silent))))
            self._silent = silent
            self.metrics.silent.set(len(silent))

    def _partition(self, number: int) -> _SequencedPartition:
        part = self._partitions.get(number)
        if part is None:
            sequencer = Sequencer(
                self.raw_partitions,
                self.max_wait_ms,
                self.states,
                silence_ms=self.silence_ms,
                hold_ms=self.max_hold_ms,
            )
            part = self._partitions[number] = _SequencedPartition(sequencer, OffsetTracker(lambda e: e.ack()))
        return part

    def _watermarks(self, part: _SequencedPartition, event: faust.types.EventT, now: int) -> None:
        try:
            marks = decode_watermarks(event.value)
        except ValueError as exc:
            self.metrics.undecodable.inc()
            log.error("skipping a malformed watermark at %s: %s", _coordinates(event), exc)
            return
        for raw_partition, ms in marks.items():
            part.sequencer.watermark(raw_partition, ms, now)
        low = part.sequencer.low_watermark
        if low is not None:
            self.metrics.low_watermark.set(low)

    def _offer(self, part: _SequencedPartition, event: faust.types.EventT, now: int) -> Pending | None:
        """Offer one event; returns it when it is late (to publish at once)."""
        offset = event.message.offset
        try:
            envelope = Envelope.read(event)
        except Exception as exc:
            self.metrics.undecodable.inc()
            log.error("skipping a record that is not a RawEvent at %s: %s", _coordinates(event), exc)
            part.acks.done(offset)
            return None
        routing = envelope.routing
        verdict, pending = part.sequencer.offer(
            routing.ordering_key, SortKey.of(routing), (envelope, event.message.partition), now
        )
        if verdict is Verdict.BUFFERED:
            part.offsets[pending.seq] = offset
            return None
        if verdict is Verdict.DUPLICATE:
            self.metrics.sequencer_duplicates.inc()
            part.acks.done(offset)
            return None
        return pending  # LATE: never reordered silently; published now, flagged

    async def _publish(self, items: list[tuple[Pending, bool]]) -> None:
        """Send in order, then wait for every acknowledgement."""

        def records() -> Iterator[OutRecord]:
            for pending, late in items:
                envelope: Envelope = pending.item[0]
                yield (pending.key.encode(), *envelope.output(late), None)

        deliveries = await self.output.send(self.events_topic, records())
        await acknowledged(deliveries, self.events_topic, self.kafka)

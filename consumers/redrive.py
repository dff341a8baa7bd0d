"""``hookstream dlq list`` and ``hookstream dlq redrive``.

Redrive re-runs each pending dead letter through the consumer's own handler, here in the calling
process (not by republishing: a record put back on the events topic would reach every consumer,
and the events topic belongs to streams). The original record is handled as it was first
delivered: same key, same value, same coordinates, with the consumer's retries, and idempotency
respected (a dead-lettered event never completed, so nothing is skipped that should run). An
event that fails again is appended to the DLQ anew (``hookstream-dlq-delivery: redrive``).

Progress is the committed offset of the group ``hookstream.dlq-redrive.<consumer>`` on the DLQ
topic: entries before it were redriven, entries from it on are pending. ``dlq list`` shows the
pending ones (``--all``: every entry). A redrive may run while the consumer runs: the events it
redrives are already out of order by having failed, and the built-in actions tolerate two
writers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from hookstream.config import KafkaConfig
from hookstream.kafka.offsets import OffsetTracker
from hookstream.kafka.reads import read_range, reader, topic_partitions

from .dlq import DeadLetter, dlq_topic, parse_dead_letter
from .errors import ConsumerError
from .groups import consumers_admin, redrive_group_id
from .pipeline import Outcome, Work, one_shot
from .registry import ConsumerSpec
from .runtime import Progress, log_progress


@dataclass(frozen=True)
class DlqEntry:
    letter: DeadLetter | None
    """None for a record that is not a hookstream dead letter (then ``problem`` says why)."""
    partition: int
    offset: int
    pending: bool
    problem: str = ""


@dataclass(frozen=True)
class _Original:
    """The dead letter's original record, as the pipeline expects a consumed record."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


async def _no_dlq(kafka: KafkaConfig, consumer: str) -> bool:
    async with consumers_admin(kafka) as admin:
        return not await admin.topic_exists(dlq_topic(consumer))


async def list_dead_letters(
    kafka: KafkaConfig, consumer: str, *, include_redriven: bool = False
) -> list[DlqEntry]:
    """The DLQ's entries, oldest first: pending ones (or all, with ``include_redriven``)."""
    if await _no_dlq(kafka, consumer):
        return []
    topic = dlq_topic(consumer)
    tps = await topic_partitions(kafka, topic)
    dlq = reader(kafka, f"dlq-list-{consumer}", group=redrive_group_id(consumer))
    await dlq.start()
    entries: list[DlqEntry] = []
    try:
        firsts = await dlq.beginning_offsets(tps)
        ends = await dlq.end_offsets(tps)
        done = {tp: (await dlq.committed(tp)) or 0 for tp in tps}
        starts = firsts if include_redriven else {tp: max(firsts[tp], done[tp]) for tp in tps}

        async def on_record(record: Any) -> None:
            pending = record.offset >= done[TopicPartition(record.topic, record.partition)]
            try:
                letter: DeadLetter | None = parse_dead_letter(record)
                problem = ""
            except ValueError as exc:
                letter, problem = None, str(exc)
            entries.append(DlqEntry(letter, record.partition, record.offset, pending, problem))

        await read_range(dlq, starts, ends, on_record)
    finally:
        await dlq.stop()
    return entries


@dataclass
class RedriveReport:
    handled: int = 0
    dead_lettered: int = 0
    interrupted: int = 0
    not_wanted: int = 0
    unreadable: int = 0

    def summary(self, name: str) -> str:
        text = (
            f"dlq redrive {name}: {self.handled} handled, {self.dead_lettered} failed again (back in the DLQ)"
        )
        if self.not_wanted:
            text += f", {self.not_wanted} skipped (the consumer's events, filter or transform no longer take them)"
        if self.unreadable:
            text += f", {self.unreadable} skipped (not hookstream dead letters)"
        if self.interrupted:
            text += f"; {self.interrupted} interrupted by the stop (still pending)"
        return text


async def redrive(
    kafka: KafkaConfig,
    spec: ConsumerSpec,
    *,
    progress: Progress = log_progress,
    stopping: asyncio.Event | None = None,
) -> RedriveReport:
    """Re-run the pending dead letters of ``spec`` through its handler; see the module doc."""
    stopping = stopping or asyncio.Event()
    report = RedriveReport()
    if await _no_dlq(kafka, spec.name):
        progress(
            f"dlq redrive {spec.name}: {dlq_topic(spec.name)} does not exist: nothing was ever dead-lettered"
        )
        return report
    topic = dlq_topic(spec.name)
    tps = await topic_partitions(kafka, topic)
    dlq = reader(kafka, f"dlq-redrive-{spec.name}", group=redrive_group_id(spec.name))
    await dlq.start()
    try:
        firsts = await dlq.beginning_offsets(tps)
        ends = await dlq.end_offsets(tps)
        starts = {tp: max(firsts[tp], (await dlq.committed(tp)) or 0) for tp in tps}
        pending = sum(ends[tp] - starts[tp] for tp in tps)
        if not pending:
            progress(f"dlq redrive {spec.name}: no pending dead letters in {topic}")
            return report
        progress(f"dlq redrive {spec.name}: {pending} pending dead letter(s) in {topic}")
        progress_of: dict[TopicPartition, OffsetTracker[None]] = {tp: OffsetTracker() for tp in tps}

        def done(work: Work, outcome: Outcome) -> None:
            tp, dlq_offset = work.tag
            if outcome is Outcome.INTERRUPTED:
                report.interrupted += 1
                return
            if outcome is Outcome.HANDLED:
                report.handled += 1
            elif outcome is Outcome.DROPPED:
                report.not_wanted += 1
            else:
                report.dead_lettered += 1
            progress_of[tp].done(dlq_offset)

        async def commit() -> None:
            offsets = {tp: o for tp, p in progress_of.items() if (o := p.to_commit()) is not None}
            if offsets:
                try:
                    await dlq.commit(offsets)
                except KafkaError as exc:
                    raise ConsumerError(f"cannot record redrive progress in Kafka: {exc}") from None
                for tp, offset in offsets.items():
                    progress_of[tp].committed(offset)

        async with one_shot(kafka, spec, stopping, done) as run:

            async def on_record(record: Any) -> None:
                tp = TopicPartition(record.topic, record.partition)
                if not progress_of[tp].fetched(record.offset):
                    return
                try:
                    letter = parse_dead_letter(record)
                except ValueError:
                    report.unreadable += 1
                    progress_of[tp].done(record.offset)
                    return
                original = _Original(
                    letter.topic,
                    letter.partition,
                    letter.offset,
                    letter.timestamp_ms,
                    letter.key,
                    letter.value,
                    letter.original_headers,
                )
                work = run.pipeline.prepare(original, delivery="redrive")
                if work is None:
                    report.not_wanted += 1
                    progress_of[tp].done(record.offset)
                    return
                work.tag = (tp, record.offset)
                await run.submit(work)
                await commit()

            await read_range(dlq, starts, ends, on_record, stopping=stopping)
        await commit()
        return report
    finally:
        await dlq.stop()

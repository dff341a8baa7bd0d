"""``hookstream replay``: run one consumer's handler again over past events.

Mechanism: the replay runs *here*, in the calling process, with the consumer's own action,
retries and DLQ, over a bounded stretch of the events topic (from an offset, from a time, or the
records of given event ids, up to the end as it was when the replay began). It reads with an
assigned consumer outside every group, so no consumer group's committed offsets move: the
replayed consumer resumes where it was when restarted, and the other consumers never notice.

Replayed events carry ``Event.replay = True`` and bypass idempotency on purpose (jsonl appends
another line, sqlite/postgres upsert again, http POSTs again, ``ProcessedIds`` lets them through).

The consumer must be stopped: replay refuses while its group has active members, because the
live consumer would handle the same keys at the same time and per-key order would be lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import GroupState, retrying
from hookstream.kafka.reads import read_range, reader, topic_partitions

from .errors import ConsumerBusy, ConsumerError
from .groups import consumers_admin, group_id
from .pipeline import Outcome, Work, one_shot
from .registry import ConsumerSpec
from .runtime import Progress, log_progress


@dataclass
class ReplayReport:
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    """partition → (first offset, end offset) read."""
    handled: int = 0
    dead_lettered: int = 0
    interrupted: int = 0
    not_wanted: int = 0
    """Records in the range whose event the consumer's patterns do not select."""
    found_ids: set[str] = field(default_factory=set)

    def summary(self, name: str) -> str:
        ranges = (
            ", ".join(f"{p}:{a}-{b - 1}" for p, (a, b) in sorted(self.ranges.items()) if b > a) or "nothing"
        )
        text = (
            f"replay {name}: {self.handled} event(s) re-delivered, {self.dead_lettered} dead-lettered "
            f"(read {ranges})"
        )
        if self.not_wanted:
            text += f"; {self.not_wanted} record(s) skipped: not taken by the consumer's events, filter or transform"
        if self.interrupted:
            text += f"; {self.interrupted} interrupted by the stop"
        return text


async def ensure_stopped(kafka: KafkaConfig, consumer: str, what: str) -> None:
    group = group_id(consumer)

    async def describe() -> GroupState:
        async with consumers_admin(kafka) as admin:
            return await admin.describe_group(group)

    state = await retrying(describe, f"cannot describe group {group}")
    if state.members:
        raise ConsumerBusy(
            f"consumer {consumer} is running (group {group} has {len(state.members)} active member(s): "
            f"{', '.join(state.members)}); stop it first: {what} runs the consumer's handler in this "
            "process and must not interleave with the live consumer"
        )


async def replay(
    kafka: KafkaConfig,
    spec: ConsumerSpec,
    *,
    from_offsets: Mapping[int, int] | None = None,
    from_time: datetime | None = None,
    event_ids: Collection[str] | None = None,
    progress: Progress = log_progress,
    stopping: asyncio.Event | None = None,
) -> ReplayReport:
    """Re-deliver events of ``kafka.events_topic`` to ``spec``'s handler; see the module doc."""
    chosen = [x for x in (from_offsets, from_time, event_ids) if x]
    if len(chosen) != 1:
        raise ConsumerError("replay needs exactly one of: from offsets (P:O), from a time, event ids")
    stopping = stopping or asyncio.Event()
    await ensure_stopped(kafka, spec.name, "replay")
    topic = kafka.events_topic
    report = ReplayReport()
    tps = await topic_partitions(kafka, topic)
    consumer = reader(kafka, f"replay-{spec.name}")
    await consumer.start()
    try:
        if from_offsets:
            known = {tp.partition for tp in tps}
            unknown = sorted(set(from_offsets) - known)
            if unknown:
                raise ConsumerError(
                    f"{topic} has no partition {unknown[0]} (partitions: {', '.join(map(str, sorted(known)))})"
                )
            tps = [tp for tp in tps if tp.partition in from_offsets]
        firsts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        if from_offsets:
            starts = {}
            for tp in tps:
                wanted = from_offsets[tp.partition]
                if wanted < firsts[tp]:
                    progress(
                        f"replay {spec.name}: partition {tp.partition} now begins at offset {firsts[tp]} "
                        f"(retention removed older events); starting there"
                    )
                starts[tp] = max(wanted, firsts[tp])
        elif from_time:
            found = await consumer.offsets_for_times({tp: int(from_time.timestamp() * 1000) for tp in tps})
            starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        else:
            starts = dict(firsts)
        report.ranges = {tp.partition: (starts[tp], ends[tp]) for tp in tps}
        ids = set(event_ids or ())

        def done(work: Work, outcome: Outcome) -> None:
            if outcome is Outcome.HANDLED:
                report.handled += 1
            elif outcome is Outcome.DEAD_LETTERED:
                report.dead_lettered += 1
            elif outcome is Outcome.DROPPED:
                report.not_wanted += 1
            else:
                report.interrupted += 1

        async with one_shot(kafka, spec, stopping, done) as run:
            matched_ids: set[str] = set()

            async def on_record(record: object) -> None:
                work = run.pipeline.prepare(record, delivery="replay")
                if ids:
                    event_id = work.raw.event_id if work and work.raw else _event_id_of(record)
                    if event_id not in ids:
                        return
                    matched_ids.add(event_id)
                if work is None:
                    report.not_wanted += 1
                    return
                await run.submit(work)

            total = sum(max(0, ends[tp] - starts[tp]) for tp in tps)
            what = f"{len(ids)} event id(s) in" if ids else f"{total} record(s) of"
            progress(f"replay {spec.name}: reading {what} {topic} …")
            await read_range(consumer, starts, ends, on_record, stopping=stopping)
            report.found_ids = matched_ids
        missing = ids - report.found_ids
        if ids and missing == ids:
            raise ConsumerError(
                f"event id {sorted(missing)[0]!r} is not in {topic} (read {total} record(s)); "
                "is it still within the topic's retention, and was it published under that id?"
            )
        if missing:
            progress(f"replay {spec.name}: not found in {topic}: {', '.join(sorted(missing))}")
        return report
    finally:
        await consumer.stop()


def _event_id_of(record: object) -> str | None:
    from hookstream.schemas.envelope import decode_raw_event

    try:
        return decode_raw_event(record.value, record.headers).event_id  # type: ignore[attr-defined]
    except Exception:  # not a RawEvent: no id to match
        return None


def parse_partition_offset(text: str) -> tuple[int, int]:
    """``"P:O"`` → (partition, offset)."""
    partition, sep, offset = text.partition(":")
    try:
        if not sep:
            raise ValueError
        p, o = int(partition), int(offset)
        if p < 0 or o < 0:
            raise ValueError
    except ValueError:
        raise ConsumerError(f"--from-offset {text!r}: expected PARTITION:OFFSET, e.g. 0:1200") from None
    return p, o


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    from datetime import UTC

    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ConsumerError(f"--from-time {text!r}: expected ISO 8601, e.g. 2024-07-01T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

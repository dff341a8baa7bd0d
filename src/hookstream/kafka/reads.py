"""Bounded reads: the records of a topic from given start offsets up to end offsets fixed when
reading began, so that a read always finishes however fast the topic grows (replay, redrive and
``dlq list``, the streams worker's check of a skipped range, tests and benches reading a topic
back). The reader is an assigned consumer outside any group membership; its partitions come
from ``Admin.partitions``, which waits for a new topic's metadata through public calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import Admin
from hookstream.kafka.message_size import fetch_sizes


def reader(
    kafka: KafkaConfig, purpose: str, *, group: str | None = None, **settings: Any
) -> AIOKafkaConsumer:
    """A consumer for ``read_range``, built from ``reader_settings``."""
    return AIOKafkaConsumer(**reader_settings(kafka, purpose, group=group, **settings))


def reader_settings(
    kafka: KafkaConfig, purpose: str, *, group: str | None = None, **settings: Any
) -> dict[str, Any]:
    """Read-committed, fetching records of ``kafka.max_message_bytes`` at once, never committing
    on its own; ``group`` only to commit progress; ``settings`` override these."""
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{kafka.client_id}-{purpose}",
        "group_id": group,
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        **fetch_sizes(kafka),
        **settings,
    }


async def topic_partitions(kafka: KafkaConfig, topic: str, *, wait_s: float = 2.0) -> list[TopicPartition]:
    """Every partition of ``topic``; a KafkaLayerError if it does not exist after ``wait_s``."""
    async with Admin(kafka, "partitions", unreachable_is_error=True) as admin:
        return await admin.partitions(topic, wait_s)


async def read_range(
    consumer: AIOKafkaConsumer,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    on_record: Callable[[ConsumerRecord], Awaitable[None]],
    *,
    stopping: asyncio.Event | None = None,
) -> None:
    """Feed every record at ``starts[tp] <= offset < ends[tp]`` that the topic still holds to
    ``on_record``, partition by partition in offset order (across partitions interleaved as
    fetched). Offsets past the partition's end when the read begins are not waited for."""
    wanted = [tp for tp, end in ends.items() if starts.get(tp, end) < end]
    if not wanted:
        return
    firsts = await consumer.beginning_offsets(wanted)
    lasts = await consumer.end_offsets(wanted)
    begin = {tp: max(starts[tp], firsts[tp]) for tp in wanted}
    todo = {tp: min(ends[tp], lasts[tp]) for tp in wanted}
    todo = {tp: end for tp, end in todo.items() if begin[tp] < end}
    if not todo:
        return
    consumer.assign(list(todo))
    for tp in todo:
        consumer.seek(tp, begin[tp])
    while todo and not (stopping and stopping.is_set()):
        batch = await consumer.getmany(timeout_ms=200)
        for tp, records in batch.items():
            end = todo.get(tp)
            if end is None:
                continue
            for record in records:
                if record.offset >= end:
                    break
                await on_record(record)
            if records and records[-1].offset + 1 >= end or await consumer.position(tp) >= end:
                todo.pop(tp, None)
                consumer.pause(tp)
        for tp in list(todo):
            if await consumer.position(tp) >= todo[tp]:  # the rest were transaction markers
                todo.pop(tp)


async def read_topic(
    kafka: KafkaConfig, topic: str, *, timeout: float = 30, wait_s: float = 5.0
) -> list[ConsumerRecord]:
    """Every record in ``topic`` now, from the beginning to the end offsets as they are; none if
    the topic still does not exist after ``wait_s``. A TimeoutError after ``timeout`` seconds."""
    async with Admin(kafka, "read", unreachable_is_error=True) as admin:
        tps = await admin.partitions(topic, wait_s, missing_ok=True)
    if not tps:
        return []
    consumer = reader(kafka, "read")
    await consumer.start()
    records: list[ConsumerRecord] = []

    async def collect(record: ConsumerRecord) -> None:
        records.append(record)

    try:
        ends = await consumer.end_offsets(tps)
        read = read_range(consumer, dict.fromkeys(tps, 0), ends, collect)
        try:
            await asyncio.wait_for(read, timeout)
        except TimeoutError:
            raise TimeoutError(f"could not read {topic} to its end in {timeout:g} s") from None
    finally:
        await consumer.stop()
    return records

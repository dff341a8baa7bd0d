"""Reading a bounded stretch of a topic (replay, redrive, dlq list): from given start offsets up
to the end offsets as they were when reading began, so the read always finishes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from hookstream.config import KafkaConfig
from hookstream.kafka.message_size import fetch_sizes

from .errors import ConsumerError


def range_consumer(kafka: KafkaConfig, purpose: str, group: str | None = None) -> AIOKafkaConsumer:
    """A consumer outside any group membership (``assign``); ``group`` only to commit progress."""
    return AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=group,
        client_id=f"{kafka.client_id}-{purpose}",
        enable_auto_commit=False,
        isolation_level="read_committed",
        **fetch_sizes(kafka),
    )


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic)
    for _ in range(20):
        if partitions:
            break
        await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata of a topic not assigned yet
        partitions = consumer.partitions_for_topic(topic)
        await asyncio.sleep(0.05)
    if not partitions:
        raise ConsumerError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def read_range(
    consumer: AIOKafkaConsumer,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    on_record: Callable[[object], Awaitable[None]],
    *,
    stopping: asyncio.Event | None = None,
) -> None:
    """Feed every record at ``starts[tp] <= offset < ends[tp]`` to ``on_record``, partition by
    partition in offset order (across partitions interleaved as fetched)."""
    todo = {tp: end for tp, end in ends.items() if starts.get(tp, end) < end}
    if not todo:
        return
    consumer.assign(list(todo))
    for tp in todo:
        consumer.seek(tp, starts[tp])
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

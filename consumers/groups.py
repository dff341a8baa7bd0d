"""Consumer groups: their names, where a new one starts, and the topic it waits for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import Admin, retrying
from hookstream.kafka.errors import KafkaLayerError

log = logging.getLogger("hookstream.consumers")


def group_id(consumer: str) -> str:
    """Each consumer is its own consumer group: adding one changes nothing for the others."""
    return f"hookstream.consumer.{consumer}"


def redrive_group_id(consumer: str) -> str:
    """Tracks how far ``dlq redrive`` got through the consumer's DLQ."""
    return f"hookstream.dlq-redrive.{consumer}"


def consumers_admin(kafka: KafkaConfig) -> Admin:
    """The consumers' admin client: an unreachable cluster is one readable line, for the CLI."""
    return Admin(kafka, "consumers-admin", unreachable_is_error=True)


async def wait_for_topic(
    kafka: KafkaConfig, topic: str, stopping: asyncio.Event, progress: Callable[[str], None], who: str
) -> bool:
    """Wait until ``topic`` exists without creating it (a consumer subscribing to a missing topic
    would let the broker auto-create it with the wrong partition count). False if stopped first."""
    started = time.monotonic()
    told = 0.0
    while not stopping.is_set():
        try:
            async with consumers_admin(kafka) as admin:
                if await admin.topic_exists(topic):
                    return True
            reason = "it does not exist yet (hookstream streams creates it)"
        except KafkaLayerError as exc:
            reason = str(exc)
        waited = time.monotonic() - started
        if waited - told >= 5 or told == 0:
            progress(f"{who}: waiting for topic {topic}: {reason} ({waited:.0f} s)")
            told = waited or 0.001
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1.0)
    return False


async def pin_new_group_start(kafka: KafkaConfig, group: str, topic: str, start: str) -> list[int]:
    """Commit the ``start`` offsets (earliest or latest) for the partitions of ``topic`` on which
    ``group`` has no committed offset yet; returns those partitions.

    Without this a new ``latest`` consumer that stops before its first commit would, on restart,
    start at the *new* end and never see what arrived while it was down. Done before joining, as
    a plain commit; Kafka refuses it while the group has members, and then those members own the
    positions anyway.
    """

    async def lookup() -> tuple[list, dict]:
        async with consumers_admin(kafka) as admin:
            return await admin.partitions(topic), await admin.committed_offsets(group)

    tps, committed = await retrying(lookup, f"cannot read the offsets of group {group}")
    fresh = [tp for tp in tps if tp not in committed]
    if not fresh:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=group,
        client_id=f"{kafka.client_id}-consumers-admin",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(fresh)
        starts = await (
            consumer.beginning_offsets(fresh) if start == "earliest" else consumer.end_offsets(fresh)
        )
        await consumer.commit(dict(starts))
    except KafkaError as exc:  # e.g. members joined meanwhile: they own the positions now
        log.warning("could not pin the new group's start", extra={"group": group, "error": str(exc)})
        return []
    finally:
        await consumer.stop()
    return [tp.partition for tp in fresh]

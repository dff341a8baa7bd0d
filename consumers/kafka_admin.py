"""The few Kafka administration calls consumers need: topics to wait for or create, groups to
describe. Each opens a short-lived admin client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from hookstream import kafka_topics
from hookstream.config import KafkaConfig
from hookstream.kafka_topics import ensure_sized_topic

from .errors import ConsumerError

T = TypeVar("T")
log = logging.getLogger("hookstream.consumers")


def group_id(consumer: str) -> str:
    """Each consumer is its own consumer group: adding one changes nothing for the others."""
    return f"hookstream.consumer.{consumer}"


def redrive_group_id(consumer: str) -> str:
    """Tracks how far ``dlq redrive`` got through the consumer's DLQ."""
    return f"hookstream.dlq-redrive.{consumer}"


async def with_retries(call: Callable[[], Awaitable[T]], what: str, timeout: float = 60) -> T:
    """``call()``, again on Kafka's retriable errors (a coordinator not elected yet on a fresh
    cluster, a leader moving) for up to ``timeout`` seconds; then a ConsumerError naming ``what``."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return await call()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise ConsumerError(f"{what}: {exc}") from None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def admin_client(kafka: KafkaConfig) -> contextlib.AbstractAsyncContextManager[AIOKafkaAdminClient]:
    """The consumers' admin client; an unreachable cluster is a ConsumerError."""
    return kafka_topics.admin_client(
        kafka.bootstrap_servers, f"{kafka.client_id}-consumers-admin", error=ConsumerError
    )


async def topic_exists(kafka: KafkaConfig, topic: str) -> bool:
    async with admin_client(kafka) as admin:
        return topic in await admin.list_topics()


async def wait_for_topic(
    kafka: KafkaConfig, topic: str, stopping: asyncio.Event, progress: Callable[[str], None], who: str
) -> bool:
    """Wait until ``topic`` exists without creating it (a consumer subscribing to a missing topic
    would let the broker auto-create it with the wrong partition count). False if stopped first."""
    started = time.monotonic()
    told = 0.0
    while not stopping.is_set():
        try:
            if await topic_exists(kafka, topic):
                return True
            reason = "it does not exist yet (hookstream streams creates it)"
        except ConsumerError as exc:
            reason = str(exc)
        waited = time.monotonic() - started
        if waited - told >= 5 or told == 0:
            progress(f"{who}: waiting for topic {topic}: {reason} ({waited:.0f} s)")
            told = waited or 0.001
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1.0)
    return False


async def ensure_topic(kafka: KafkaConfig, topic: str, partitions: int) -> None:
    """Create ``topic`` to take records of ``kafka.max_message_bytes`` (a dead letter is a copy of
    an event, however large); an existing topic is left as it is, with a warning if it takes less."""

    async def create() -> bool:
        async with admin_client(kafka) as admin:
            return (await ensure_sized_topic(admin, kafka, topic, partitions, log)).created

    await with_retries(create, f"cannot create topic {topic}")


@dataclass(frozen=True)
class GroupState:
    state: str
    """Kafka's word: Empty, Stable, PreparingRebalance, CompletingRebalance, Dead (= never existed)."""
    members: tuple[str, ...]
    """``client-id@host`` of each active member."""


async def describe_group(kafka: KafkaConfig, group: str) -> GroupState:
    async def describe() -> list:
        async with admin_client(kafka) as admin:
            return await admin.describe_consumer_groups([group])

    responses = await with_retries(describe, f"cannot describe group {group}")
    for response in responses:
        for error_code, name, state, _ptype, _protocol, members, *_ in response.groups:
            if name == group:
                if error_code:
                    raise ConsumerError(f"cannot describe group {group}: Kafka error code {error_code}")
                return GroupState(state, tuple(f"{m[1]}@{m[2]}" for m in members))
    return GroupState("Dead", ())


async def pin_new_group_start(kafka: KafkaConfig, group: str, topic: str, start: str) -> list[int]:
    """Commit the ``start`` offsets (earliest or latest) for the partitions of ``topic`` on which
    ``group`` has no committed offset yet; returns those partitions.

    Without this a new ``latest`` consumer that stops before its first commit would, on restart,
    start at the *new* end and never see what arrived while it was down. Done before joining, as
    a plain commit; Kafka refuses it while the group has members, and then those members own the
    positions anyway.
    """

    async def lookup() -> tuple[list, dict]:
        async with admin_client(kafka) as admin:
            return await admin.describe_topics([topic]), await admin.list_consumer_group_offsets(group)

    described, committed = await with_retries(lookup, f"cannot read the offsets of group {group}")
    numbers = sorted(p["partition"] for d in described for p in d.get("partitions", []))
    fresh = [
        TopicPartition(topic, n)
        for n in numbers
        if (c := committed.get(TopicPartition(topic, n))) is None or c.offset < 0
    ]
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

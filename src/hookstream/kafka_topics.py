"""Admin clients, and creating a topic and hearing about it when that fails.

aiokafka's ``AIOKafkaAdminClient.create_topics`` does not raise per-topic errors: it returns
them in the response (error 36 for a topic that exists, 38 for a replication factor the
cluster cannot meet, ...). Ignoring the response hides a topic that was never created.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from hookstream.config import KafkaConfig
from hookstream.errors import HookstreamError
from hookstream.kafka.message_size import below_limit_warning, topic_config, topics_below_limit


def unreachable(bootstrap_servers: str, exc: BaseException) -> str:
    """The one wording of "no broker answered", for errors the CLI shows as one line."""
    return f"cannot reach Kafka at {bootstrap_servers}: {exc}"


@contextlib.asynccontextmanager
async def admin_client(
    bootstrap_servers: str, client_id: str, *, error: type[HookstreamError] | None = None
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on the way out, also when starting it failed.

    With ``error``, a cluster that cannot be reached raises that error with one readable line;
    without, aiokafka's error passes through (for callers that retry on ``KafkaError``).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
    try:
        try:
            await admin.start()
        except (KafkaError, OSError) as exc:
            if error is None:
                raise
            raise error(unreachable(bootstrap_servers, exc)) from None
        yield admin
    finally:
        await admin.close()


async def create_topic(admin: AIOKafkaAdminClient, topic: NewTopic) -> bool:
    """Create ``topic``: True if created, False if it already existed; any other error raised
    as its ``KafkaError`` subclass (``.retriable`` tells whether trying again may help)."""
    response = await admin.create_topics([topic])
    for _name, code, message, *_ in response.topic_errors:
        if code == 0:
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            return False
        raise error(message or error.__name__)
    return True


async def create_missing_topics(
    admin: AIOKafkaAdminClient, kafka: KafkaConfig, topics: Mapping[str, tuple[int, Mapping[str, str]]]
) -> set[str]:
    """Create those of ``topics`` (name → (partitions, topic configs)) that ``list_topics`` does
    not show; returns the names created now. Existing topics are not asked for again, so a client
    without CREATE permission can use topics made for it."""
    existing = set(await admin.list_topics())
    created: set[str] = set()
    for name, (partitions, configs) in topics.items():
        if name in existing:
            continue
        new = NewTopic(name, partitions, kafka.replication_factor, topic_configs=dict(configs))
        if await create_topic(admin, new):  # one by one: a topic created meanwhile elsewhere is fine
            created.add(name)
    return created


async def _ensure_sized(
    admin: AIOKafkaAdminClient, kafka: KafkaConfig, topics: Mapping[str, int]
) -> tuple[set[str], dict[str, int]]:
    """The topics created now, and the existing ones that take smaller records (their limit)."""
    created = await create_missing_topics(
        admin, kafka, {name: (partitions, topic_config(kafka)) for name, partitions in topics.items()}
    )
    old = [name for name in topics if name not in created]
    return created, (await topics_below_limit(admin, old, kafka) if old else {})


async def ensure_sized_topics(
    admin: AIOKafkaAdminClient, kafka: KafkaConfig, topics: Mapping[str, int]
) -> tuple[set[str], list[str]]:
    """Create the missing ``topics`` (name → partitions) to take records of ``kafka.max_message_bytes``.

    Returns the names created now, and a warning for each existing topic that takes smaller
    records. Existing topics are left as they are (altering one would need the old
    alter-configs call, which replaces all its overrides).
    """
    created, too_small = await _ensure_sized(admin, kafka, topics)
    return created, [below_limit_warning(name, limit, kafka) for name, limit in sorted(too_small.items())]


@dataclass(frozen=True)
class SizedTopic:
    created: bool
    """Created now (with ``kafka.max_message_bytes``)."""
    record_limit: int
    """The largest record batch the topic takes: ``kafka.max_message_bytes``, or less for an
    existing topic made with a smaller ``max.message.bytes``."""


async def ensure_sized_topic(
    admin: AIOKafkaAdminClient, kafka: KafkaConfig, topic: str, partitions: int, log: logging.Logger
) -> SizedTopic:
    """``ensure_sized_topics`` for one topic, its warning on ``log``."""
    created, too_small = await _ensure_sized(admin, kafka, {topic: partitions})
    if topic in too_small:
        log.warning(below_limit_warning(topic, too_small[topic], kafka), extra={"topic": topic})
    return SizedTopic(topic in created, too_small.get(topic, kafka.max_message_bytes))

"""Creating a topic and hearing about it when that fails.

aiokafka's ``AIOKafkaAdminClient.create_topics`` does not raise per-topic errors: it returns
them in the response (error 36 for a topic that exists, 38 for a replication factor the
cluster cannot meet, ...). Ignoring the response hides a topic that was never created.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from hookstream.config import KafkaConfig
from hookstream.message_size import below_limit_warning, topic_config, topics_below_limit


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


async def ensure_sized_topic(
    admin: AIOKafkaAdminClient, kafka: KafkaConfig, topic: str, partitions: int, log: logging.Logger
) -> bool:
    """Create ``topic`` to take records of ``kafka.max_message_bytes``; True if created now.

    An existing topic is left as it is, with a warning on ``log`` when it takes smaller records
    (altering it would need the old alter-configs call, which replaces all its overrides).
    """
    created = await create_topic(
        admin,
        NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=kafka.replication_factor,
            topic_configs=topic_config(kafka),
        ),
    )
    if not created:
        for name, limit in (await topics_below_limit(admin, [topic], kafka)).items():
            log.warning(below_limit_warning(name, limit, kafka), extra={"topic": name})
    return created

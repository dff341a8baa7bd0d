"""Creating a topic and hearing about it when that fails.

aiokafka's ``AIOKafkaAdminClient.create_topics`` does not raise per-topic errors: it returns
them in the response (error 36 for a topic that exists, 38 for a replication factor the
cluster cannot meet, ...). Ignoring the response hides a topic that was never created.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code


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

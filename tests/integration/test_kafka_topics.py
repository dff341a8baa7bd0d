"""Topic creation reports what Kafka answered (aiokafka returns per-topic errors instead of raising)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import InvalidReplicationFactorError

from hookstream.config import KafkaConfig
from hookstream.errors import PublishError
from hookstream.ingest.publisher import ensure_raw_topic
from hookstream.kafka_topics import create_topic

pytestmark = pytest.mark.kafka


async def test_create_topic_says_created_existing_or_raises_kafkas_error(kafka_bootstrap):
    name = f"test.topics.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert await create_topic(admin, NewTopic(name, 2, 1)) is True
        assert await create_topic(admin, NewTopic(name, 2, 1)) is False
        with pytest.raises(InvalidReplicationFactorError) as raised:  # one broker
            await create_topic(admin, NewTopic(f"{name}.rf3", 1, 3))
        assert not raised.value.retriable
        assert f"{name}.rf3" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_ingest_names_a_raw_topic_kafka_would_not_create(kafka_bootstrap):
    kafka = KafkaConfig(
        bootstrap_servers=kafka_bootstrap,
        raw_topic=f"test.raw.rf3.{uuid.uuid4().hex[:8]}",
        replication_factor=3,
    )
    with pytest.raises(
        PublishError, match=rf"cannot create topic {kafka.raw_topic}: .*replication factor of 3"
    ):
        await ensure_raw_topic(kafka)

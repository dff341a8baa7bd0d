"""Topic creation reports what Kafka answered (aiokafka returns per-topic errors instead of raising)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidReplicationFactorError

from hookstream.config import KafkaConfig
from hookstream.errors import PublishError
from hookstream.ingest.publisher import ensure_raw_topic
from hookstream.kafka_topics import create_topic
from hookstream.streams.app import build_app
from hookstream.streams.topics import changelog_topics, create_topics

from .support import make_config

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


async def test_streams_creates_the_table_changelogs_as_faust_would_before_the_worker_starts(
    kafka_bootstrap, tmp_path
):
    # Left to faust, a changelog created while the worker starts can show 0 partitions in the
    # consumer's metadata and crash the first table write (PartitionsMismatch, seen with make dev).
    suffix = uuid.uuid4().hex[:8]
    streams = {"app_id": f"test-cl-{suffix}", "data_dir": str(tmp_path), "dedupe_ttl_seconds": 3600}
    config = make_config(kafka_bootstrap, {}, partitions=3, streams=streams)
    app = build_app(config)
    changelogs = changelog_topics(app)
    assert set(changelogs) == {f"test-cl-{suffix}-seen-changelog", f"test-cl-{suffix}-sequencer-changelog"}
    await create_topics(config, changelogs)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(list(changelogs))}
        assert described == dict.fromkeys(changelogs, 3)
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in changelogs]
        )
        seen = set()
        for response in responses:
            for _code, _message, _type, name, entries in (r[:5] for r in response.resources):
                seen.add(name)
                configs = {entry[0]: entry[1] for entry in entries}
                # A windowed table: compacted and deleted after its expiry (2 × the dedupe TTL).
                assert configs["cleanup.policy"] == "compact,delete", name
                assert configs["retention.ms"] == str(2 * 3600 * 1000), name
        assert seen == set(changelogs)
    finally:
        await admin.close()

"""The Kafka layer's ``Admin`` against a real broker: topic creation reports what Kafka answered
(aiokafka returns per-topic errors instead of raising), partition counts are checked, and the
topics each stage needs are created as it needs them."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidConfigurationError

from hookstream.config import KafkaConfig
from hookstream.ingest.publisher import ensure_raw_topic
from hookstream.kafka.admin import Admin
from hookstream.kafka.errors import KafkaLayerError
from hookstream.streams.app import build_app
from hookstream.streams.topics import changelog_topics, create_topics
from tests.integration.support import create_topic

from .support import make_config

pytestmark = pytest.mark.kafka


async def test_create_topic_says_created_existing_or_raises_kafkas_error(kafka_bootstrap):
    name = f"test.topics.{uuid.uuid4().hex[:8]}"
    async with Admin(KafkaConfig(bootstrap_servers=kafka_bootstrap), "test") as admin:
        assert await admin.create_topic(name, 2) is True
        assert await admin.create_topic(name, 2) is False
    async with Admin(KafkaConfig(bootstrap_servers=kafka_bootstrap), "test") as admin:
        with pytest.raises(InvalidConfigurationError) as raised:
            await admin.create_topic(f"{name}.bad", 1, {"cleanup.policy": "sometimes"})
        assert not raised.value.retriable
        assert not await admin.topic_exists(f"{name}.bad")
        with pytest.raises(KafkaLayerError, match=rf"^cannot create topic {name}\.bad: "):
            await admin.create_missing_topics({f"{name}.bad": (1, {"cleanup.policy": "sometimes"})})


async def test_a_replication_factor_larger_than_the_cluster_is_one_line_naming_the_fix(kafka_bootstrap):
    name = f"test.topics.rf3.{uuid.uuid4().hex[:8]}"
    rf3 = KafkaConfig(bootstrap_servers=kafka_bootstrap, replication_factor=3)  # one broker
    async with Admin(rf3, "test") as admin:
        with pytest.raises(KafkaLayerError) as raised:
            await admin.ensure_sized_topics({name: 1})
        assert str(raised.value) == (
            f"kafka.replication_factor is 3 but the Kafka cluster at {kafka_bootstrap} has 1 broker: "
            "set replication_factor = 1 (or leave it unset) in [kafka], or add brokers"
        )
        assert not await admin.topic_exists(name)


async def test_topics_get_the_clusters_replication_and_min_insync_replicas(kafka_bootstrap):
    name = f"test.topics.replicas.{uuid.uuid4().hex[:8]}"
    async with Admin(KafkaConfig(bootstrap_servers=kafka_bootstrap), "test") as admin:
        assert await admin.create_topic(name, 2)
        replication = await admin.replication()
        assert (replication.factor, replication.min_insync) == (1, 1)  # the defaults on one broker
        responses = await admin.client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={"min.insync.replicas": None})]
        )
        values = {e[0]: e[1] for r in responses for res in r.resources for e in res[4]}
        assert values["min.insync.replicas"] == "1"


async def test_partitions_of_a_missing_topic_are_an_error_and_never_create_it(kafka_bootstrap):
    name = f"test.topics.missing.{uuid.uuid4().hex[:8]}"
    async with Admin(KafkaConfig(bootstrap_servers=kafka_bootstrap), "test") as admin:
        with pytest.raises(KafkaLayerError, match=rf"^topic {name} does not exist$"):
            await admin.partitions(name, wait_s=0.2)
        assert not await admin.topic_exists(name)
        assert await admin.create_topic(name, 3)
        assert [tp.partition for tp in await admin.partitions(name)] == [0, 1, 2]


async def test_a_partition_count_other_than_kafka_partitions_names_the_topic_and_why(kafka_bootstrap):
    name = f"test.topics.count.{uuid.uuid4().hex[:8]}"
    async with Admin(KafkaConfig(bootstrap_servers=kafka_bootstrap), "test") as admin:
        await admin.create_topic(name, 3)
        await admin.require_partitions({name: 3}, "unused")
        with pytest.raises(
            KafkaLayerError, match=rf"^topic {name} has 3 partitions but kafka.partitions is 4; because$"
        ):
            await admin.require_partitions({name: 4}, "because")


async def test_ingest_and_streams_refuse_a_raw_topic_with_another_partition_count(kafka_bootstrap):
    kafka = KafkaConfig(bootstrap_servers=kafka_bootstrap, raw_topic=f"test.raw.count.{uuid.uuid4().hex[:8]}")
    await create_topic(kafka_bootstrap, kafka.raw_topic, 3)
    with pytest.raises(
        KafkaLayerError, match=f"topic {kafka.raw_topic} has 3 partitions but kafka.partitions is 8"
    ):
        await ensure_raw_topic(kafka)
    config = make_config(kafka_bootstrap, {}, raw_topic=kafka.raw_topic, partitions=8)
    with pytest.raises(
        KafkaLayerError, match=f"topic {kafka.raw_topic} has 3 partitions but kafka.partitions is 8"
    ):
        await create_topics(config)


async def test_ingest_names_a_raw_topic_kafka_would_not_create(kafka_bootstrap):
    kafka = KafkaConfig(
        bootstrap_servers=kafka_bootstrap,
        raw_topic=f"test.raw.rf3.{uuid.uuid4().hex[:8]}",
        replication_factor=3,
    )
    with pytest.raises(KafkaLayerError, match=r"kafka.replication_factor is 3 but .* has 1 broker: set"):
        await ensure_raw_topic(kafka)


async def test_streams_creates_the_table_changelogs_as_faust_would_before_the_worker_starts(
    kafka_bootstrap, tmp_path
):
    # Left to faust, a changelog created while the worker starts can show 0 partitions in the
    # consumer's metadata and crash the first table write (PartitionsMismatch; streams/topics.py).
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

"""hookstream's own local broker: a real Kafka that clients can use, restart and crash."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.local_broker import LocalKafka, find_java, resolve_jars

pytestmark = pytest.mark.kafka


def unique_topic() -> str:
    return f"test.local-kafka.{uuid.uuid4().hex[:12]}"


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, key: bytes, value: bytes, partition: int | None = None) -> int:
    """Send one record the way ingest does (idempotent, acks=all); returns its offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, value, key=key, partition=partition)
        return int(metadata.offset)
    finally:
        await producer.stop()


async def read_partition(bootstrap: str, topic: str, partition: int, count: int) -> list[tuple[bytes, bytes]]:
    """The first ``count`` records of one partition, as (key, value)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[tuple[bytes, bytes]] = []
        while len(records) < count:
            batch = await consumer.getmany(tp, timeout_ms=10_000)
            assert batch, f"no records from {topic}[{partition}] within 10s (got {len(records)} of {count})"
            records += [(r.key, r.value) for r in batch[tp]]
        return records
    finally:
        await consumer.stop()


async def test_broker_serves_topics_producers_and_consumers(local_kafka: LocalKafka) -> None:
    topic = unique_topic()
    await create_topic(local_kafka.bootstrap_servers, topic, partitions=8)

    admin = AIOKafkaAdminClient(bootstrap_servers=local_kafka.bootstrap_servers)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert description["error_code"] == 0
    assert len(description["partitions"]) == 8

    offset = await produce(local_kafka.bootstrap_servers, topic, b"evt_1", b'{"hello": "kafka"}', partition=5)
    assert offset == 0
    assert await read_partition(local_kafka.bootstrap_servers, topic, 5, 1) == [
        (b"evt_1", b'{"hello": "kafka"}')
    ]


async def test_data_survives_stop_and_start_on_the_same_port(local_kafka: LocalKafka) -> None:
    bootstrap = local_kafka.bootstrap_servers
    topic = unique_topic()
    await produce(bootstrap, topic, b"k", b"before the restart")  # auto-created

    local_kafka.stop()
    assert not local_kafka.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", local_kafka.port or 0), timeout=2):
        pass  # nothing listens while it is down: what ingest's 503 tests rely on
    local_kafka.stop()  # idempotent

    assert local_kafka.start() == bootstrap
    await produce(bootstrap, topic, b"k", b"after the restart")
    assert await read_partition(bootstrap, topic, 0, 2) == [
        (b"k", b"before the restart"),
        (b"k", b"after the restart"),
    ]


async def test_acknowledged_records_survive_a_crash(local_kafka: LocalKafka) -> None:
    topic = unique_topic()
    await produce(local_kafka.bootstrap_servers, topic, b"k", b"acked")
    local_kafka.kill()
    assert not local_kafka.running
    local_kafka.start()
    assert await read_partition(local_kafka.bootstrap_servers, topic, 0, 1) == [(b"k", b"acked")]


def test_a_busy_port_is_named(local_kafka: LocalKafka, tmp_path: Path) -> None:
    port = local_kafka.port
    assert port is not None
    with pytest.raises(KafkaLayerError, match=f"port {port} on 127.0.0.1 is already in use"):
        LocalKafka(port=port, data_dir=tmp_path, progress=lambda _: None).start()


def test_a_broker_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    kafka = LocalKafka(data_dir=tmp_path, heap="1m", progress=lambda _: None)  # the JVM refuses to start
    with pytest.raises(KafkaLayerError, match="exited with code") as raised:
        kafka.start()
    assert "heap" in str(raised.value).lower()  # the JVM's own words, from the log tail
    assert not kafka.running
    kafka.close()
    assert tmp_path.exists()  # a data dir we were given is never deleted


def test_jars_resolve_offline_once_cached(
    local_kafka: LocalKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = resolve_jars(lambda _: None)  # cached by the broker's first start
    monkeypatch.setenv("PATH", str(tmp_path))  # neither mvn nor java
    monkeypatch.delenv("JAVA_HOME", raising=False)
    started = time.monotonic()
    assert resolve_jars(lambda message: pytest.fail(f"resolved again: {message}")) == libs
    assert time.monotonic() - started < 0.5
    assert len(list(libs.glob("*.jar"))) > 30


def test_concurrent_first_resolutions_run_maven_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    messages: list[str] = []
    results: list[Path | BaseException] = []

    def resolve() -> None:
        try:
            results.append(resolve_jars(messages.append))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=resolve) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    libs = tmp_path / "cache" / "kafka-4.1.1" / "libs"
    assert results == [libs, libs, libs]
    assert sum("resolving" in message for message in messages) == 1
    assert any(path.name.startswith("kafka_2.13-4.1.1") for path in libs.glob("*.jar"))
    assert sorted(p.name for p in libs.parent.iterdir()) == [".lock", "libs"]  # no staging dir left


def test_maven_missing_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(find_java()))  # Java, but no Maven
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("HOOKSTREAM_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(KafkaLayerError, match=r"^Maven \(mvn\) not found on PATH: .*install it") as raised:
        resolve_jars(lambda _: None)
    assert "\n" not in str(raised.value)

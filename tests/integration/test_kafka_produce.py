"""``kafka.produce.BatchSender`` against a real broker: placement, order, batch limits, refusals."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import Admin
from hookstream.kafka.produce import BatchSender, batch_bytes, delivered
from tests.integration.support import read_topic

pytestmark = pytest.mark.kafka

PARTITIONS = 4


async def new_topic(bootstrap: str, name: str, **configs: str) -> str:
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap), "test-produce") as admin:
        assert await admin.create_topic(name, PARTITIONS, configs)
    return name


async def started_producer(bootstrap: str, batch_size: int) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_batch_size=batch_size
    )
    await producer.start()
    return producer


async def test_records_land_where_the_default_partitioner_puts_them_in_order(kafka_bootstrap, unique):
    """Keys go to the partition aiokafka's own ``send`` gives them, explicit partitions are
    kept, and each partition holds the records in the order they were given, across many batches."""
    ours = await new_topic(kafka_bootstrap, f"test.produce.ours.{unique}")
    theirs = await new_topic(kafka_bootstrap, f"test.produce.theirs.{unique}")
    producer = await started_producer(kafka_bootstrap, batch_size=2048)  # many batches per partition
    try:
        keys = [f"key-{i % 37}".encode() for i in range(600)]
        records = [(k, b"v%d" % i, [("n", b"%d" % i)], None) for i, k in enumerate(keys)]
        records += [(None, b"pinned", [], 3)]
        sent = await BatchSender(producer).send(ours, records)
        acks = await delivered(sent)
        await asyncio.gather(*[await producer.send(theirs, b"", key=k) for k in set(keys)])
    finally:
        await producer.stop()
    placed = {r.key: r.partition for r in await read_topic(kafka_bootstrap, theirs)}
    got = await read_topic(kafka_bootstrap, ours)
    assert len(got) == len(records) == sum(s.records for s in sent)
    assert len(sent) > PARTITIONS  # several batches per partition
    # Each batch's records sit at the offsets from its acknowledged first one, on its partition.
    at = {(r.partition, r.offset) for r in got}
    for s, ack in zip(sent, acks, strict=True):
        assert {(s.partition, ack.offset + i) for i in range(s.records)} <= at
    for r in got:
        assert r.partition == (3 if r.key is None else placed[r.key])
    for p in range(PARTITIONS):
        numbers = [
            int(r.value[1:]) for r in sorted(got, key=lambda r: r.offset) if r.partition == p and r.key
        ]
        assert numbers == sorted(numbers)
    assert {r.key: dict(r.headers)["n"] for r in got if r.key and r.value == b"v0"} == {b"key-0": b"0"}


async def test_two_concurrent_sends_do_not_interleave_within_a_partition(kafka_bootstrap, unique):
    topic = await new_topic(kafka_bootstrap, f"test.produce.calls.{unique}")
    producer = await started_producer(kafka_bootstrap, batch_size=1024)
    sender = BatchSender(producer)
    try:
        first, second = await asyncio.gather(
            sender.send(topic, [(b"k", b"a%03d" % i, [], 0) for i in range(200)]),
            sender.send(topic, [(b"k", b"b%03d" % i, [], 0) for i in range(200)]),
        )
        assert len(first) > 1 and len(second) > 1  # several batches each
        await delivered(first + second)
    finally:
        await producer.stop()
    values = [r.value for r in sorted(await read_topic(kafka_bootstrap, topic), key=lambda r: r.offset)]
    calls = "".join(chr(v[0]) for v in values)
    assert calls in ("a" * 200 + "b" * 200, "b" * 200 + "a" * 200)
    assert [v for v in values if v[:1] == b"a"] == sorted(v for v in values if v[:1] == b"a")


async def test_a_record_larger_than_the_topic_takes_fails_its_batch_not_the_others(kafka_bootstrap, unique):
    """Batches are sized for the topic's limit, so small records still fit a topic that takes
    less than they add up to; the one record it cannot take fails with the size error."""
    limit = 20_000
    topic = await new_topic(
        kafka_bootstrap, f"test.produce.small.{unique}", **{"max.message.bytes": str(limit)}
    )
    producer = await started_producer(kafka_bootstrap, batch_size=batch_bytes(limit))
    try:
        small = [(b"k%d" % i, os.urandom(500), [], 0) for i in range(100)]  # 50 KB in all
        await delivered(await BatchSender(producer).send(topic, small))
        big = await BatchSender(producer).send(topic, [(b"big", os.urandom(4 * limit), [], 1)])
        with pytest.raises(MessageSizeTooLargeError):
            await delivered(big)
    finally:
        await producer.stop()
    got = await read_topic(kafka_bootstrap, topic)
    assert sorted(r.key for r in got) == sorted(k for k, *_ in small)

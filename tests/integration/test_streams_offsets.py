"""The offset-jump guard's broker question, against a real broker: a gap of offsets holding only
transaction markers or watermarks is not a skip; one holding data records is
(``streams/batching.py``)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hookstream.config import parse_config
from hookstream.consumers.testing import create_topic
from hookstream.streams import command
from hookstream.streams.command import committed_total
from hookstream.streams.offsets import OffsetsProbe
from hookstream.streams.watermark import encode_watermarks, watermark_headers

pytestmark = pytest.mark.kafka


async def test_records_between_counts_data_records_not_transaction_markers_or_watermarks(kafka_bootstrap):
    topic = f"test.offsets.{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-tx")
    await producer.start()
    try:
        offsets = []
        async with producer.transaction():  # records at 0 and 1, its commit marker at 2
            offsets += [(await producer.send_and_wait(topic, b"a", partition=0)).offset for _ in range(2)]
        async with producer.transaction():  # a record at 3, its marker at 4
            offsets.append((await producer.send_and_wait(topic, b"b", partition=0)).offset)
    finally:
        await producer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:  # two watermarks at 5 and 6 (no key, as the streams worker sends them), a record at 7
        for _ in range(2):
            sent = await producer.send_and_wait(
                topic, encode_watermarks({0: 1}), partition=0, headers=watermark_headers()
            )
            offsets.append(sent.offset)
        offsets.append((await producer.send_and_wait(topic, b"c", key=b"k", partition=0)).offset)
    finally:
        await producer.stop()
    assert offsets == [0, 1, 3, 5, 6, 7]  # the layout the cases below rely on

    probe = OffsetsProbe(kafka_bootstrap, group_id=f"{topic}-group", client_id="test")
    await probe.start()
    try:
        assert await probe.records_between(topic, 0, 0, 2) == 2
        assert await probe.records_between(topic, 0, 2, 3) == 0  # the marker alone: not a skip
        assert await probe.records_between(topic, 0, 2, 5) == 1
        assert await probe.records_between(topic, 0, 0, 5) == 3
        assert await probe.records_between(topic, 0, 5, 7) == 0  # watermarks alone: not a skip
        assert await probe.records_between(topic, 0, 4, 8) == 1
        assert await probe.records_between(topic, 0, 0, 8) == 4
        assert await probe.records_between(topic, 0, 8, 12) == 0  # past the end: nothing there
    finally:
        await probe.stop()


async def test_the_committed_total_a_skip_restart_compares_is_the_groups_offsets_summed(
    kafka_bootstrap, monkeypatch
):
    topic = f"test.offsets.total.{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, topic, 2)
    config = parse_config(
        {"kafka": {"bootstrap_servers": kafka_bootstrap}, "streams": {"app_id": f"{topic}-app"}}
    )
    assert await committed_total(config) == 0  # a group that never committed

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=config.streams.app_id)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        await consumer.commit({tps[0]: 3, tps[1]: 5})
        assert await committed_total(config) == 8
        await consumer.commit({tps[0]: 4})
        assert await committed_total(config) == 9  # progress: what the restart count starts again on
    finally:
        await consumer.stop()

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)  # it would replace the address below
    monkeypatch.setattr(command, "COMMITTED_CHECK_S", 2)  # retried until then
    unreachable = parse_config({"kafka": {"bootstrap_servers": "127.0.0.1:1"}})
    assert await committed_total(unreachable) is None  # no answer: counted as no progress

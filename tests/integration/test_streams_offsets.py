"""The offset-jump guard's broker question, against a real broker: a gap of offsets holding only
transaction markers or watermarks is not a skip; one holding data records is
(``streams/batching.py``)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer

from hookstream.consumers.testing import create_topic
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

"""The offset-jump guard's broker question, against a real broker: a gap of offsets holding only
transaction markers or watermarks is not a skip; one holding data records is
(``streams/batching.py``)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hookstream.schemas.progress import Progress, encode_progress, progress_headers
from hookstream.streams.broker_offsets import OffsetsProbe, committed_offsets
from hookstream.streams.watermark import encode_watermarks, watermark_headers
from tests.integration.support import create_topic

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
    try:  # a watermark at 5 (no key, as the streams worker sends them), a progress marker at 6
        # (as ingest writes them to the raw topic), a record at 7
        sent = await producer.send_and_wait(
            topic, encode_watermarks({0: 1}), partition=0, headers=watermark_headers()
        )
        offsets.append(sent.offset)
        mark = encode_progress(Progress("i", 1))
        offsets.append(
            (await producer.send_and_wait(topic, mark, partition=0, headers=progress_headers())).offset
        )
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
        assert await probe.records_between(topic, 0, 5, 7) == 0  # watermarks, markers alone: not a skip
        assert await probe.records_between(topic, 0, 4, 8) == 1
        assert await probe.records_between(topic, 0, 0, 8) == 4
        assert await probe.records_between(topic, 0, 8, 12) == 0  # past the end: nothing there
    finally:
        await probe.stop()


async def test_the_committed_offsets_the_first_record_of_a_partition_is_checked_against(kafka_bootstrap):
    topic = f"test.offsets.committed.{uuid.uuid4().hex[:8]}"
    group = f"{topic}-app"
    await create_topic(kafka_bootstrap, topic, 2)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    assert await committed_offsets(kafka_bootstrap, "test", group) == {}  # a group that never committed

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit({tps[0]: 3, tps[1]: 5})
        assert await committed_offsets(kafka_bootstrap, "test", group) == {tps[0]: 3, tps[1]: 5}
        assert await committed_offsets(kafka_bootstrap, "test", group, [tps[1]]) == {tps[1]: 5}
    finally:
        await consumer.stop()


async def test_the_seek_to_committed_offsets_also_moves_partitions_with_none_or_0_committed(kafka_bootstrap):
    """aiokafka's own seek leaves a partition with nothing committed, or 0, where it was read
    to; faust relies on that seek after dropping records it fetched (``streams/transport.py``)."""
    from aiokafka.structs import OffsetAndMetadata

    from hookstream.streams.transport import seek_to_committed

    topic = f"test.seek.{uuid.uuid4().hex[:8]}"
    changelog = f"{topic}-changelog"
    await create_topic(kafka_bootstrap, topic, 3)
    await create_topic(kafka_bootstrap, changelog, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(10):
            for p in range(3):
                await producer.send(topic, b"v%d" % i, partition=p)
            await producer.send(changelog, b"c%d" % i, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    tps = [TopicPartition(topic, p) for p in range(3)]
    log_tp = TopicPartition(changelog, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign([*tps, log_tp])
        # partition 0: nothing committed; 1: 0 committed; 2: 4 committed.
        await consumer.commit({tps[1]: OffsetAndMetadata(0, ""), tps[2]: OffsetAndMetadata(4, "")})
        for tp in (*tps, log_tp):
            consumer.seek(tp, 7)  # read to 7, as faust's dropped records leave the positions
        assert [await consumer.position(tp) for tp in tps] == [7, 7, 7]

        committed = await seek_to_committed(consumer, lambda tp: tp.topic == changelog)

        assert committed == {tps[0]: None, tps[1]: 0, tps[2]: 4, log_tp: None}
        assert [await consumer.position(tp) for tp in tps] == [0, 0, 4]
        assert await consumer.position(log_tp) == 7  # left to faust's table recovery
        records = await consumer.getmany(tps[0], timeout_ms=5000)
        assert records[tps[0]][0].offset == 0  # the records are read again from there
    finally:
        await consumer.stop()

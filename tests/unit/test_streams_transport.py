"""streams.transport's consumer: stream partitions read again only after the seek (no broker).

faust's recovery resumes the stream partitions, then awaits ``perform_seek``; its fetcher runs
meanwhile, so records from past the committed offset reached the streams. The consumer below is
the worker's own (``build_app``); only the seek's round trip to the broker is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP as TopicPartition

from hookstream.config import parse_config
from hookstream.kafka.produce import Sent
from hookstream.streams.app import StalledSeek, build_app, check_seek_stall
from hookstream.streams.batching import Halt
from hookstream.streams.dedupe import Sighting
from hookstream.streams.metrics import StreamsMetrics
from hookstream.streams.tables import TableSeenIds
from hookstream.streams.transport import SEEK_STALL_S, current_event


def worker_app(tmp_path):
    return build_app(
        parse_config(
            {
                "kafka": {"bootstrap_servers": "127.0.0.1:1", "raw_topic": "t.raw"},
                "streams": {"data_dir": str(tmp_path)},
            }
        )
    )


async def test_stream_partitions_resume_only_once_the_seek_to_committed_offsets_returned(tmp_path):
    app = worker_app(tmp_path)
    consumer = app.consumer
    stream = TopicPartition("t.raw", 0)
    changelog = TopicPartition(sorted(app.tables.changelog_topics)[0], 0)
    consumer.assignment = lambda: {stream, changelog}
    active_during_seek = []

    async def seek_to_committed():
        active_during_seek.append(set(consumer._get_active_partitions()))  # noqa: SLF001 - the test's subject
        return {stream: 5}

    consumer.seek_to_committed = seek_to_committed
    consumer.pause_partitions({stream, changelog})

    consumer.resume_partitions({stream, changelog})  # what faust's recovery does, then:
    assert consumer._get_active_partitions() == {changelog}  # noqa: SLF001 - the changelog reads on
    await consumer.perform_seek()

    assert active_during_seek == [{changelog}]  # nothing of the stream was fetched before the seek
    assert consumer._get_active_partitions() == {stream, changelog}  # noqa: SLF001


async def test_the_consumer_says_how_long_stream_partitions_have_waited_for_their_seek(tmp_path):
    app = worker_app(tmp_path)
    consumer = app.consumer
    streams = {TopicPartition("t.raw", 0), TopicPartition("t.raw", 1)}
    changelog = TopicPartition(sorted(app.tables.changelog_topics)[0], 0)
    consumer.assignment = lambda: streams | {changelog}

    async def seek_to_committed():
        return dict.fromkeys(streams, 5)

    consumer.seek_to_committed = seek_to_committed
    assert consumer.waiting_for_seek_s() == (0, 0.0)
    consumer.pause_partitions(streams | {changelog})
    consumer.resume_partitions({changelog})
    assert consumer.waiting_for_seek_s() == (0, 0.0)  # a changelog resumes at once

    consumer.resume_partitions(streams)
    partitions, waited = consumer.waiting_for_seek_s(time.monotonic() + 61)
    assert partitions == 2 and 60 < waited < 62
    await consumer.perform_seek()
    assert consumer.waiting_for_seek_s() == (0, 0.0)

    consumer.resume_partitions(streams)  # a seek that a rebalance cancels: the revocation clears it
    await consumer.on_partitions_revoked({TopicPartition("t.raw", 0)})
    assert consumer.waiting_for_seek_s(time.monotonic())[0] == 1
    await consumer.on_partitions_revoked({TopicPartition("t.raw", 1)})
    assert consumer.waiting_for_seek_s() == (0, 0.0)


class StalledApp:
    def __init__(self, partitions: int, waited: float) -> None:
        self.consumer = type("C", (), {"waiting_for_seek_s": lambda _self: (partitions, waited)})()
        self.crashed: list[BaseException] = []

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


async def test_a_seek_that_never_returns_stops_the_worker_with_one_line_and_a_metric():
    metrics, halt = StreamsMetrics(), Halt()
    app = StalledApp(3, SEEK_STALL_S - 1)
    assert not await check_seek_stall(app, halt, metrics)  # a slow seek is left alone
    assert not app.crashed and not halt

    app = StalledApp(3, SEEK_STALL_S + 1)
    assert await check_seek_stall(app, halt, metrics)
    assert len(app.crashed) == 1 and isinstance(app.crashed[0], StalledSeek)
    assert app.hookstream_stop_reason is app.crashed[0]  # what the command's last line names
    assert halt  # the batches hand out nothing more: nothing is acknowledged past the stall
    assert "3 stream partition(s) waited 61 s" in str(app.crashed[0])
    assert metrics.registry.get_sample_value("hookstream_streams_stalled_seeks_total") == 1
    assert not await check_seek_stall(app, halt, metrics)  # stopping already: said once


def test_rocksdb_tables_leave_expiry_to_the_store_and_keep_no_index_in_memory(tmp_path):
    # faust-streaming #385: faust's expiry keeps every key written in memory (and loses it at a
    # restart); with RocksDB the store's TTL expires entries instead.
    for store, indexed in (("memory://", True), ("rocksdb://", False)):
        app = build_app(
            parse_config(
                {
                    "kafka": {"bootstrap_servers": "127.0.0.1:1", "raw_topic": "t.raw"},
                    "streams": {"data_dir": str(tmp_path / store[:-3]), "store": store},
                }
            )
        )
        tables = list(app.tables.values())
        assert sorted(t.name for t in tables) == ["seen", "sequencer"]
        for table in tables:
            sent = SimpleNamespace(message=SimpleNamespace(partition=0))
            table.partition_for_key = lambda key: 0  # as in the agent, for the event's partition
            table.send_changelog = lambda *args, sent=sent, **kwargs: sent
            table.on_key_set(("evt_1", (0.0, 604799.9)), True)
            assert bool(table._partition_timestamp_keys) is indexed, (store, table.name)  # noqa: SLF001
            assert table.window.expires == 2 * 604800  # the changelog's retention still follows it
            if not indexed:
                assert table.options["ttl"] == 3 * 604800


async def test_the_consumer_thread_fetches_for_the_partitions_active_when_asked_not_when_it_runs(tmp_path):
    """The fetcher passes its live set of active partitions to the consumer thread. Emptied in
    between (the changelogs paused at the end of recovery, the stream partition still waiting for
    its seek), aiokafka's ``fetched_records`` would return every partition's records, and faust
    drops the paused one's: consumed, never handed on."""
    app = worker_app(tmp_path)
    consumer = app.consumer
    stream = TopicPartition("t.raw", 0)
    changelog = TopicPartition(sorted(app.tables.changelog_topics)[0], 0)
    active = {changelog}  # faust's live set: the changelog reads, the stream waits for its seek
    buffered = {stream: ["s1", "s2"], changelog: ["c1"]}
    fetched_with = []

    class Fetcher:  # aiokafka's Fetcher.fetched_records: no partitions asked for means all of them
        _closed = False
        _subscriptions = SimpleNamespace(fetch_context=contextlib.nullcontext)

        async def fetched_records(self, partitions, timeout=0, max_records=None):
            fetched_with.append(set(partitions))
            return {tp: buffered.pop(tp) for tp in list(buffered) if not partitions or tp in partitions}

    thread = consumer._new_consumer_thread()
    aiokafka_consumer = SimpleNamespace(_closed=False, _fetcher=Fetcher(), _max_poll_records=None)
    thread._ensure_consumer = lambda: aiokafka_consumer

    async def call_thread(fn, *args, **kwargs):  # the hop to the consumer's thread
        active.discard(changelog)  # meanwhile, on the event loop: recovery done, changelog paused
        return await fn(*args, **kwargs)

    thread.call_thread = call_thread
    consumer.resume_flow()

    records = await thread.getmany(active, timeout=0)

    assert fetched_with == [{changelog}]
    assert records == {changelog: ["c1"]}
    assert buffered == {stream: ["s1", "s2"]}  # still there for when the stream partition resumes
    assert await thread.getmany(set(), timeout=0) == {}  # nothing active: nothing fetched
    assert buffered == {stream: ["s1", "s2"]}


class FakeChangelogSender:
    """Takes what a table hands over, as ``Output.send`` would; each batch acknowledged at
    ``first_offset`` unless ``failure`` is set."""

    def __init__(self, first_offset: int = 40, failure: Exception | None = None) -> None:
        self.calls: list[tuple[str, list]] = []
        self.first_offset = first_offset
        self.failure = failure

    async def __call__(self, topic, records):
        records = list(records)
        self.calls.append((topic, records))
        delivery = asyncio.get_running_loop().create_future()
        if self.failure is None:
            delivery.set_result(SimpleNamespace(offset=self.first_offset))
        else:
            delivery.set_exception(self.failure)
        assert all(isinstance(r[2], list) for r in records)  # aiokafka takes headers as a list only
        return [Sent(partition=records[0][3], records=len(records), delivery=delivery)]


async def test_a_tables_changelog_writes_of_one_turn_go_out_as_one_batch(tmp_path):
    """faust sends each changelog record alone; the writes a stage makes in one go are handed
    over together, serialised as faust serialises them, and the offset of the batch's last
    record is what the store keeps (faust keeps each record's)."""
    table = worker_app(tmp_path).tables["seen"]
    sender = FakeChangelogSender(first_offset=40)
    table.send_changelog_with(sender)
    persisted = {}
    table.data.set_persisted_offset = lambda tp, offset: persisted.__setitem__(tp, offset)
    keys = [(f"evt_{i}", (0.0, 604799.9)) for i in range(3)]
    table.partition_for_key = lambda key: 1  # as in the agent, for the event's partition
    for key in keys:
        table.on_key_set(key, True)  # faust's own path for a write
    assert not sender.calls  # sent once the stage yields
    await table.changelog_sent()
    [(topic, records)] = sender.calls
    assert topic == table.changelog_topic.get_topic_name()
    expected = [table.changelog_topic.prepare_key(key, table.key_serializer)[0] for key in keys]
    assert [r[0] for r in records] == expected and all(r[3] == 1 for r in records)
    assert persisted == {TopicPartition(topic, 1): 42}

    table.on_key_set(keys[0], True)  # a later turn: a batch of its own
    await table.changelog_sent()
    assert len(sender.calls) == 2


async def test_a_failed_changelog_write_fails_the_stage_that_awaits_it_once(tmp_path):
    table = worker_app(tmp_path).tables["sequencer"]
    table.send_changelog_with(FakeChangelogSender(failure=RuntimeError("broker said no")))
    table.send_changelog(0, ("acme/1", (0.0, 604799.9)), {"released": 1})
    with pytest.raises(RuntimeError, match="broker said no"):
        await table.changelog_sent()
    await table.changelog_sent()  # reported: the next wait is for the writes after it


def counting_tasks(loop):
    """Count the tasks created on ``loop`` from now on."""
    created = []
    default = loop.get_task_factory()

    def factory(loop, coro, **kwargs):
        created.append(coro)
        return default(loop, coro, **kwargs) if default else asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return created


async def test_a_message_the_callback_takes_without_waiting_costs_no_task(tmp_path):
    consumer = worker_app(tmp_path).consumer
    delivered = []

    async def callback(message):
        delivered.append(message)
        return "taken"

    created = counting_tasks(asyncio.get_running_loop())
    result = await consumer.wait_first(callback("m1"), consumer.suspend_flow.wait())
    assert delivered == ["m1"] and result.results == ["taken"] and not result.stopped
    assert created == []  # mode's wait_first makes four tasks for this


async def test_a_callback_that_has_to_wait_goes_on_and_finishes_as_with_mode(tmp_path):
    consumer = worker_app(tmp_path).consumer
    room = asyncio.Event()
    steps = []

    async def callback(message):
        steps.append("started")
        await asyncio.sleep(0)
        await room.wait()  # a full queue
        steps.append("delivered")
        return message

    waiting = asyncio.ensure_future(consumer.wait_first(callback("m2"), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert steps == ["started"] and not waiting.done()
    room.set()
    result = await asyncio.wait_for(waiting, 1)
    assert steps == ["started", "delivered"] and result.results == ["m2"]


async def test_a_waiting_callback_is_cancelled_when_the_flow_is_suspended(tmp_path):
    consumer = worker_app(tmp_path).consumer
    cancelled = asyncio.Event()

    async def callback(message):
        try:
            await asyncio.Event().wait()  # never room
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(consumer.wait_first(callback("m3"), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    consumer.suspend_flow.set()  # a rebalance: faust drops the message, its seek reads it again
    result = await asyncio.wait_for(waiting, 1)
    assert result.results == [True] and not result.stopped  # the flow's wait won
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_a_callback_that_fails_at_once_raises_from_wait_first(tmp_path):
    consumer = worker_app(tmp_path).consumer

    async def callback(message):
        raise ValueError(f"bad {message}")

    with pytest.raises(ValueError, match="bad m4"):
        await consumer.wait_first(callback("m4"), consumer.suspend_flow.wait())


def raw_event(app, partition, timestamp):
    message = faust.types.Message("t.raw", partition, 7, timestamp, 0, [], b"k", b"v", None, generation_id=1)
    return faust.Event(app, b"k", b"v", [], message)


async def test_a_rocksdb_table_remembers_an_id_whatever_partition_the_stream_handed_out_last(tmp_path):
    # faust's RocksDB store reads a key from the partition of faust's current event; the stage
    # looks its batch's ids up after the stream handed out the batch's last event, often of
    # another partition, and must find each id in its own partition.
    app = build_app(
        parse_config(
            {
                "kafka": {"bootstrap_servers": "127.0.0.1:1", "raw_topic": "t.raw"},
                "streams": {"data_dir": str(tmp_path), "store": "rocksdb://"},
            }
        )
    )
    table = app.tables["seen"]
    table.send_changelog_with(FakeChangelogSender())
    seen = TableSeenIds(table.tumbling(604800, expires=2 * 604800), 604800)
    first = raw_event(app, 1, 1_000.0)
    seen.mark(Sighting("evt_1", first.message.timestamp, first))
    await table.changelog_sent()
    copy = raw_event(app, 1, 1_001.0)
    with current_event(raw_event(app, 5, 1_001.0)):  # the stream's last event, of partition 5
        assert seen.seen(Sighting("evt_1", copy.message.timestamp, copy))
        assert not seen.seen(Sighting("evt_2", copy.message.timestamp, copy))


async def test_a_stage_stopped_while_it_waits_for_its_changelog_leaves_the_send_to_finish(tmp_path):
    table = worker_app(tmp_path).tables["seen"]
    acked = asyncio.get_running_loop().create_future()

    async def sender(topic, records):
        records = list(records)
        return [Sent(partition=records[0][3], records=len(records), delivery=acked)]

    table.send_changelog_with(sender)
    table.data.set_persisted_offset = lambda tp, offset: None
    table.send_changelog(0, ("evt_1", (0.0, 604799.9)), True)
    waiting = asyncio.ensure_future(table.changelog_sent())
    await asyncio.sleep(0.01)
    waiting.cancel()  # the worker stops
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    sends = list(table._sending)  # noqa: SLF001 - the send the table started
    acked.set_result(SimpleNamespace(offset=3))
    await asyncio.wait_for(asyncio.gather(*sends), 1)  # settles its write, raises nothing
    await asyncio.wait_for(table.changelog_sent(), 1)

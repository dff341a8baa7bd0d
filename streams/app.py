"""The streams topology, top to bottom.

    raw topic            key = event id, N partitions (written by ingest)
      │  dedupe          windowed table "seen" (co-partitioned, N); first sightings only
      ▼
    <app_id>-by-ordering-key      key = ordering key, N partitions; plus watermark records
      │  sequence        windowed table "sequencer" (co-partitioned, N); per-key order
      ▼
    events topic         key = ordering key; value = the RawEvent envelope (late flag set by us)

Delivery is at-least-once: every produce is acknowledged before the source offset may be
committed, duplicates are dropped by the tables where they can be recognised, and consumers
dedupe by event id for the rest. faust's ``exactly_once`` is not used (faust #177, #323, #440,
#517). Both agents run with ``concurrency=1`` (faust #606: with more, faust can commit past a
message not yet processed), batch with ``batching.Batches`` rather than faust's ``noack_take``
(see there) and acknowledge their messages themselves: dedupe after a batch is forwarded and
marked, sequence in offset order once each message is released or dropped (see
``hookstream.kafka.offsets``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types import EventT
from prometheus_client import generate_latest

from hookstream.config import Config, StreamsConfig
from hookstream.errors import HookstreamError
from hookstream.kafka.message_size import fetch_sizes
from hookstream.streams.batching import Batches, Halt
from hookstream.streams.broker_offsets import OffsetsProbe
from hookstream.streams.dedupe import Deduper
from hookstream.streams.metrics import StreamsMetrics
from hookstream.streams.output import Output
from hookstream.streams.stages import DedupeStage, SequenceStage
from hookstream.streams.tables import TableKeyStates, TableSeenIds, store_options
from hookstream.streams.topics import repartition_topic
from hookstream.streams.transport import SEEK_STALL_S, App, Table
from hookstream.streams.watermark import RawProgress

log = logging.getLogger("hookstream.streams")

DEDUPE_BATCH = 500
"""Most raw records handled (and their forwards awaited) together."""
SEQUENCE_BATCH = 1000
"""Most repartition records offered before one release (one changelog wait, one send wait)."""
BATCH_WAIT_S = 0.01
"""Longest a lone record waits for company before its batch is handled."""
SHUTDOWN_WAIT_S = 15
"""On SIGTERM, how long to let the batches in hand finish."""
FETCH_BYTES_PER_PARTITION = 256 * 1024
"""aiokafka's ``max_partition_fetch_bytes`` (faust's ``consumer_max_fetch_size``). The broker
returns a first record batch larger than this whole (KIP-74), so it need not fit the largest
record; what it bounds is how far ahead each partition is read: the records fetched and not yet
handed on, held in memory, and those of a raw partition's backlog queued ahead of the
repartition topic's, so sequencing waits for dedupe."""
STALL_CHECK_S = 5.0
"""How often the watchdog looks for stream partitions stuck waiting for their seek."""


class StalledSeek(HookstreamError):
    """Stream partitions waited too long for the seek to their committed offsets (``transport``)."""


async def check_seek_stall(app: Any, halt: Halt, metrics: StreamsMetrics) -> bool:
    """Stop the worker (exit 1, one line, a metric) if its stream partitions have waited, paused,
    for the seek longer than ``SEEK_STALL_S``: faust's recovery no longer resumes them, and the
    worker would sit assigned and idle while the lag grows. Nothing is lost: nothing past the
    committed offsets was acknowledged, and the restarted process reads from there."""
    partitions, waited = app.consumer.waiting_for_seek_s()
    if waited <= SEEK_STALL_S or halt:
        return False
    exc = StalledSeek(
        f"{partitions} stream partition(s) waited {waited:.0f} s for the seek to their committed "
        "offsets after the table recovery; stopping so that a restart resumes them (nothing is lost)"
    )
    log.error("%s", exc)
    metrics.stalls.inc()
    await halt.stop(app, exc)
    return True


def silence_ms(s: StreamsConfig) -> int:
    """How long without a watermark makes a raw partition silent: many missed intervals, and well
    inside ``max_wait_ms``, so events are held before the bounded wait would release them."""
    return max(4 * s.watermark_interval_ms, min(1000, s.max_wait_ms // 2))


def build_app(
    config: Config,
    *,
    metrics: StreamsMetrics | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> faust.App:
    """The faust app for ``config``; run it with ``faust.Worker`` (see ``worker``)."""
    k, s = config.kafka, config.streams
    partitions = k.partitions
    window = s.dedupe_ttl_seconds
    metrics = metrics or StreamsMetrics()
    datadir = Path(s.data_dir) / s.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level

    app = App(  # faust.App with a complete seek to the committed offsets (see ``transport``)
        s.app_id,
        broker=[f"kafka://{server.strip()}" for server in k.bootstrap_servers.split(",")],
        broker_client_id=f"{k.client_id}-streams",
        store=s.store,
        datadir=str(datadir),
        topic_partitions=partitions,
        # Resolved against the cluster by ``worker.run_worker``; unset (an app built for a test): 1.
        topic_replication_factor=k.replication_factor or 1,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # The sequencer holds messages unacknowledged on purpose; waiting for "empty" on a
        # rebalance would wait for watermarks that cannot arrive while the group is paused.
        stream_wait_empty=False,
        broker_session_timeout=s.session_timeout_ms / 1000,
        broker_heartbeat_interval=min(3.0, s.session_timeout_ms / 1000 / 5),
        producer_acks=-1,
        producer_compression_type=None if k.compression == "none" else k.compression,
        producer_linger=k.linger_ms / 1000,
        # Records as large as ingest accepts (faust's defaults stop at 1,000,000 bytes, and a
        # record the producer refuses crashes the agent): see ``message_size``.
        producer_max_request_size=k.max_message_bytes,
        consumer_max_fetch_size=FETCH_BYTES_PER_PARTITION,
        web_enabled=True,
        web_port=s.web_port,
        web_bind=s.web_bind,
        web_host=s.web_bind,
        autodiscover=False,
    )

    # -- topics -----------------------------------------------------------------------------------
    raw = app.topic(k.raw_topic, partitions=partitions)
    by_key = app.topic(repartition_topic(config), partitions=partitions)

    # -- tables (co-partitioned with the topic their agent reads) --------------------------------
    def windowed_table(name: str, default: type) -> Any:
        table = Table(
            app,
            name=name,
            default=default,
            partitions=partitions,
            beacon=app.tables.beacon,
            options=store_options(s.store, window),
        )
        return app.tables.add(table).tumbling(window, expires=2 * window)

    seen = windowed_table("seen", bool)
    states = windowed_table("sequencer", dict)

    # -- one producer for what the stages forward and the tables' changelogs ----------------------
    changelogs = [t.changelog_topic.get_topic_name() for t in (seen.table, states.table)]
    output = app.add_dependency(
        Output(
            k, [by_key.get_topic_name(), k.events_topic, *changelogs], client_id=f"{k.client_id}-streams-out"
        )
    )
    for table in (seen.table, states.table):
        table.send_changelog_with(output.send)

    # -- stages -----------------------------------------------------------------------------------
    dedupe_stage = DedupeStage(
        app,
        Deduper(TableSeenIds(seen, window)),
        repartition_topic=by_key.get_topic_name(),
        repartition_partitions=partitions,
        progress=RawProgress(s.watermark_lag_ms, s.ingest_idle_ms),
        metrics=metrics,
        raw_topic=k.raw_topic,
        kafka=k,
        output=output,
        offsets=app.add_dependency(
            OffsetsProbe(
                k.bootstrap_servers,
                group_id=s.app_id,
                client_id=f"{k.client_id}-streams",
                fetch_sizes=fetch_sizes(k),
            )
        ),
    )
    sequence_stage = SequenceStage(
        app,
        TableKeyStates(states, window),
        states.table,
        events_topic=k.events_topic,
        raw_partitions=partitions,
        max_wait_ms=s.max_wait_ms,
        metrics=metrics,
        kafka=k,
        output=output,
        silence_ms=silence_ms(s),
        max_hold_ms=s.max_hold_ms,
    )

    # -- agents -----------------------------------------------------------------------------------
    async def dedupe_batch(events: Sequence[EventT]) -> None:
        await dedupe_stage.handle(events)
        for event in events:
            event.ack()

    probe = dedupe_stage.offsets

    async def resume_offset(topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        return (await probe.resume_offsets([tp]))[tp]

    halt = Halt()  # one failure stops both stages (see ``batching``)
    dedupe_batches = Batches(
        app,
        "dedupe",
        dedupe_batch,
        DEDUPE_BATCH,
        BATCH_WAIT_S,
        probe.records_between,
        resume_offset,
        halt,
        metrics.skipped.inc,
    )
    # Acknowledged by the stage, in offset order, once each message is released or dropped.
    sequence_batches = Batches(
        app,
        "sequence",
        sequence_stage.handle,
        SEQUENCE_BATCH,
        BATCH_WAIT_S,
        probe.records_between,
        resume_offset,
        halt,
        metrics.skipped.inc,
    )

    @app.agent(raw, concurrency=1)
    async def dedupe(stream: faust.StreamT) -> None:
        await dedupe_batches.run(stream)

    @app.agent(by_key, concurrency=1)
    async def sequence(stream: faust.StreamT) -> None:
        await sequence_batches.run(stream)

    @app.timer(s.watermark_interval_ms / 1000)
    async def watermarks() -> None:
        try:
            await dedupe_stage.publish_watermarks()
        except Exception as exc:  # advisory: until the next one, max_wait_ms bounds the wait
            log.warning("could not publish watermarks: %s", exc)

    @app.timer(STALL_CHECK_S)
    async def stall_watchdog() -> None:
        await check_seek_stall(app, halt, metrics)

    # -- rebalances and progress ------------------------------------------------------------------
    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        dedupe_batches.drop()
        sequence_batches.drop()
        dedupe_stage.forget()
        sequence_stage.forget()

    async def final_commit(app: faust.App) -> None:
        await app.consumer.maybe_wait_for_commit_to_finish()
        await app.consumer.commit()

    @app.on_before_shutdown.connect
    async def finish_and_commit(app: faust.App, **kwargs: Any) -> None:
        # The fetcher has stopped; let the batch in hand finish rather than be cancelled
        # halfway (safe either way, but a finished batch is not sent again after the restart).
        try:
            await asyncio.wait_for(
                asyncio.gather(dedupe_batches.idle(), sequence_batches.idle()), SHUTDOWN_WAIT_S
            )
        except TimeoutError:
            log.warning("stopping with a batch unfinished; it will be processed again")
        # Table writes still on their way would be lost with the producer (a duplicate later,
        # not a loss): let them arrive.
        try:
            await asyncio.wait_for(
                asyncio.gather(seen.table.changelog_sent(), states.table.changelog_sent()), SHUTDOWN_WAIT_S
            )
        except Exception as exc:
            log.warning("stopping with table writes unsent (%s); their events may be repeated", exc)
        # faust's own final commit returns without committing when a periodic commit is in
        # flight at that moment, so what was acknowledged since would be read again. Bounded:
        # stopping right after an assignment (a crash at start), faust's commit never returns,
        # and the worker must exit to be restarted; what it did not commit is read again.
        try:
            await asyncio.wait_for(final_commit(app), SHUTDOWN_WAIT_S)
        except (TimeoutError, RuntimeError):  # RuntimeError: after a crash its thread may be gone
            log.warning(
                "stopping without the final commit; what was acknowledged since the last one is read again"
            )

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        mine = sum(1 for tp in assigned if tp.topic == k.raw_topic)
        progress(f"streams: assigned {mine} of {partitions} raw partitions; recovering tables…")

    @app.on_rebalance_complete.connect
    async def on_ready(app: faust.App, **kwargs: Any) -> None:
        progress(f"streams: processing {k.raw_topic} → {by_key.get_topic_name()} → {k.events_topic}")

    # -- metrics ----------------------------------------------------------------------------------
    @app.page("/metrics")
    async def metrics_page(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.bytes(generate_latest(metrics.registry), content_type="text/plain; version=0.0.4")

    return app

"""Events as large as a source accepts, through the whole pipeline against a real broker.

A source accepts bodies up to ``max_body_bytes`` (1 MiB by default), but Kafka's own defaults stop
records at about 1 MiB: the broker's ``message.max.bytes``, aiokafka's ``max_request_size``,
faust's ``producer_max_request_size`` (1,000,000). Once ingest answered 2xx for such an event it
must come out of streams, reach a consumer byte-exact, and survive the DLQ and a redrive; every
topic and client on the way is sized by ``kafka.max_message_bytes``.

One streams worker and one ingest server serve the pipeline tests (the worker starts first, so it
is the one that creates the topics). Bodies are random base64, which lz4 cannot shrink below the
limits. Topics that exist from before the setting are reported, not changed; when one of them
refuses an event, the streams worker stops before acknowledging it and a consumer keeps its dead
letter, both naming the fix, and once it is applied the event is delivered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream.config import Config, KafkaConfig, load_config
from hookstream.consumers import Consumers, Event, resolve_consumers
from hookstream.consumers.dlq import dead_letter_of, dlq_topic
from hookstream.consumers.pipeline import DeadLetterWriter, Outcome
from hookstream.consumers.redrive import list_dead_letters, redrive
from hookstream.ingest.providers import provider_class
from hookstream.ingest.publisher import ensure_raw_topic
from hookstream.kafka.admin import Admin
from hookstream.sample_events import now_ms, produce_raw, raw_event
from hookstream.schemas.envelope import decode_raw_event
from hookstream.stage_rules import stage_rules
from hookstream.streams.topics import create_topics
from hookstream.streams.worker_process import WorkerProcess, streams_config_toml
from hookstream.tail import tail_topic
from tests.integration.support import create_topic, running_consumers, wait_until

from .support import free_port, make_config, read_topic, running_ingest

pytestmark = pytest.mark.kafka

SECRET = "large-events-secret"
DEFAULT_MAX_BODY = 1_048_576
SIZES = (1_040_000, DEFAULT_MAX_BODY)
FAST_RETRIES = {"max_attempts": 2, "backoff_initial_ms": 10, "backoff_max_ms": 20}


def github_body(size: int, repository: str) -> bytes:
    """A GitHub push payload of exactly ``size`` bytes, padded with incompressible base64."""
    head = b'{"repository":{"full_name":"' + repository.encode() + b'"},"padding":"'
    tail = b'"}'
    fill = size - len(head) - len(tail)
    return head + base64.b64encode(os.urandom(fill))[:fill] + tail


@dataclass
class LargePipeline:
    config: Config
    ingest_url: str
    worker: WorkerProcess

    async def send(self, body: bytes, delivery_id: str) -> None:
        headers = provider_class("github")([SECRET]).sign(body, timestamp=0) | {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery_id,
        }
        async with httpx.AsyncClient(base_url=self.ingest_url, timeout=60) as client:
            response = await client.post("/webhooks/gh", content=body, headers=headers)
        assert response.status_code == 200, f"ingest refused {len(body)} bytes: {response.text}"

    async def whereabouts(self, event_ids: set[str]) -> str:
        """Which topics hold ``event_ids`` and the worker's log: the message of a failed wait."""
        found = {}
        for topic in (self.config.kafka.raw_topic, self.config.kafka.events_topic):
            records = await read_topic(self.config.kafka.bootstrap_servers, topic)
            found[topic] = sorted(
                {decode_raw_event(r.value).event_id for r in records if r.value and r.key} & event_ids
            )
        return f"events found per topic: {found}; streams worker log:\n{self.worker.output()[-4000:]}"


def quick_streams_toml(bootstrap: str, tmp: Path, kind: str, suffix: str, *, partitions: int) -> str:
    """A streams config with topics ``test.{raw,events}.<kind>.<suffix>`` that releases events fast."""
    return streams_config_toml(
        bootstrap,
        raw_topic=f"test.raw.{kind}.{suffix}",
        events_topic=f"test.events.{kind}.{suffix}",
        partitions=partitions,
        app_id=f"test-streams-{kind}-{suffix}",
        data_dir=tmp / "streams",
        web_port=free_port(),
        max_wait_ms=500,
        watermark_interval_ms=100,
        watermark_lag_ms=100,
        session_timeout_ms=6000,
    )


@pytest.fixture(scope="module")
async def large_pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LargePipeline]:
    """A streams worker (child process) and an ingest server with one github source, default limits."""
    tmp = tmp_path_factory.mktemp("large-events")
    path = tmp / "hookstream.toml"
    path.write_text(
        quick_streams_toml(kafka_bootstrap, tmp, "large", uuid.uuid4().hex[:8], partitions=4)
        + f'[ingest]\nport = {free_port()}\n[sources.gh]\nprovider = "github"\nsecrets = ["{SECRET}"]\n'
    )
    config = load_config(path, rules=stage_rules())
    assert config.sources["gh"].max_body_bytes == DEFAULT_MAX_BODY  # the premise: default limits
    worker = WorkerProcess(path, tmp / "streams.log").start()
    try:
        worker.wait_for("streams: processing", timeout=90)
        async with running_ingest(config) as url:
            yield LargePipeline(config, url, worker)
    finally:
        worker.kill()


async def wait_for(
    pipeline: LargePipeline, done: Callable[[], bool], event_ids: set[str], what: str, timeout: float = 45
) -> None:
    """Poll ``done()``; fail with where the events got to once it is too late or the worker died."""
    deadline = time.monotonic() + timeout
    while not done():
        process = pipeline.worker.process
        if process is not None and process.poll() is not None:
            problem = f"the streams worker exited {process.returncode}"
        elif time.monotonic() > deadline:
            problem = f"timed out after {timeout:g} s"
        else:
            await asyncio.sleep(0.1)
            continue
        raise AssertionError(f"{problem} waiting for {what}; {await pipeline.whereabouts(event_ids)}")


@dataclass
class Recorder:
    """A consumer's handler (``handle``) keeping each event's body; while ``failing`` it raises."""

    failing: bool = False
    bodies: dict[str, bytes] = field(default_factory=dict)

    async def handle(self, event: Event) -> None:
        if self.failing:
            raise RuntimeError("the downstream service is down")
        self.bodies[event.id] = event.raw.body


async def test_events_as_large_as_a_source_accepts_reach_a_consumer_byte_exact(large_pipeline):
    p = large_pipeline
    name = f"large-{uuid.uuid4().hex[:8]}"
    registry = Consumers()
    received = Recorder()
    registry.consumer(name, events=["gh:push"], typed=False, drain_timeout_seconds=5)(received.handle)
    sent = {f"large-{size}-{uuid.uuid4().hex[:8]}": github_body(size, "acme/big") for size in SIZES}

    async with running_consumers(p.config, [name], consumers=registry):
        for delivery_id, body in sent.items():
            await p.send(body, delivery_id)
        await wait_for(p, lambda: set(received.bodies) >= set(sent), set(sent), f"consumer {name}")

    for delivery_id, body in sent.items():
        assert len(received.bodies[delivery_id]) == len(body)
        assert received.bodies[delivery_id] == body, f"{delivery_id}: the body changed on the way"


async def test_tail_shows_an_event_as_large_as_a_source_accepts(large_pipeline):
    p = large_pipeline
    delivery_id = f"large-tail-{uuid.uuid4().hex[:8]}"
    body = github_body(DEFAULT_MAX_BODY, "acme/tail")
    await p.send(body, delivery_id)
    lines: list[str] = []
    await tail_topic(
        p.config, p.config.kafka.raw_topic, from_beginning=True, max_events=None, timeout=5, emit=lines.append
    )
    shown = [orjson.loads(line) for line in lines]
    assert not [line for line in shown if "undecodable" in line]
    [event] = [line for line in shown if line["event_id"] == delivery_id]
    assert event["body"].encode() == body


async def test_a_large_event_whose_handler_fails_goes_to_the_dlq_and_redrive_delivers_it(large_pipeline):
    p = large_pipeline
    name = f"large-dlq-{uuid.uuid4().hex[:8]}"
    registry = Consumers()
    handler = Recorder(failing=True)
    # "latest": only this test's event, not the other test's, fails and is dead-lettered.
    registry.consumer(
        name, events=["gh:push"], typed=False, start="latest", drain_timeout_seconds=5, **FAST_RETRIES
    )(handler.handle)
    delivery_id = f"large-dlq-{uuid.uuid4().hex[:8]}"
    body = github_body(DEFAULT_MAX_BODY, "acme/dead-letters")

    async with running_consumers(p.config, [name], consumers=registry) as [runtime]:
        await p.send(body, delivery_id)
        await wait_for(
            p,
            lambda: runtime.counts[Outcome.DEAD_LETTERED] >= 1,
            {delivery_id},
            f"consumer {name} to dead-letter the event (its DLQ write acknowledged)",
        )

    [entry] = await list_dead_letters(p.config.kafka, name)
    assert entry.letter is not None and entry.pending, entry
    assert entry.letter.event_id == delivery_id and entry.letter.attempts == 2
    assert decode_raw_event(entry.letter.value).body == body

    handler.failing = False
    [spec] = resolve_consumers(p.config, [name], consumers=registry)
    report = await redrive(p.config.kafka, spec)
    assert (report.handled, report.dead_lettered, report.unreadable) == (1, 0, 0), report
    assert handler.bodies[delivery_id] == body
    assert await list_dead_letters(p.config.kafka, name) == []


async def test_existing_topics_that_take_smaller_records_are_reported_not_changed(kafka_bootstrap, caplog):
    suffix = uuid.uuid4().hex[:8]
    config = make_config(
        kafka_bootstrap, {}, partitions=2, streams={"app_id": f"test-streams-small-{suffix}"}
    )
    dlq = dlq_topic(f"small-{suffix}")
    for topic in (config.kafka.events_topic, dlq):  # as created before kafka.max_message_bytes
        await create_topic(kafka_bootstrap, topic, 2)
    small_raw = replace(config.kafka, raw_topic=f"test.raw.old.{suffix}")
    await create_topic(kafka_bootstrap, small_raw.raw_topic, 2)
    with caplog.at_level(logging.WARNING, logger="hookstream.ingest"):
        await ensure_raw_topic(small_raw)  # ingest starting against the old raw topic
    assert [r.getMessage().split(" takes ")[0] for r in caplog.records if r.name == "hookstream.ingest"] == [
        f"topic {small_raw.raw_topic}"
    ]
    caplog.clear()

    warnings = await create_topics(config)

    assert [w.split(" takes ")[0] for w in warnings] == [f"topic {config.kafka.events_topic}"]
    assert f"--add-config max.message.bytes={config.kafka.max_message_bytes}" in warnings[0]
    with caplog.at_level(logging.WARNING, logger="hookstream.consumers"):
        writer = DeadLetterWriter(config.kafka, f"small-{suffix}")  # a consumer starting
        await writer.start()
        await writer.stop()
    assert [
        r.getMessage().split(" takes ")[0]
        for r in caplog.records
        if r.name.startswith("hookstream.consumers")
    ] == [f"topic {dlq}"]
    assert await create_topics(config) == warnings  # reported again: left as it was


SMALL_TOPIC_LIMIT = 100_000
"""``max.message.bytes`` of an events topic made before the setting, far below an accepted event."""


async def set_topic_limit(bootstrap: str, topic: str, limit: int, *, create_partitions: int = 0) -> None:
    """Give ``topic`` a ``max.message.bytes`` of ``limit``: at its creation with
    ``create_partitions``, else as the warning's ``kafka-configs.sh`` command would."""
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap), "test-small-topic") as admin:
        if create_partitions:
            configs = {"max.message.bytes": str(limit)}
            assert await admin.create_topic(topic, create_partitions, configs), f"{topic} existed already"
        else:
            resource = ConfigResource(
                ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(limit)}
            )
            await admin.client.alter_configs([resource])


async def test_an_events_topic_that_refuses_an_event_stops_the_worker_and_loses_nothing(
    kafka_bootstrap: str, tmp_path
):
    """The events topic takes smaller records than ingest accepts (the warning at start was ignored).

    The forward the broker refuses must stop the worker before it acknowledges the event, so that
    once the topic is altered as the warning says, a restart delivers it; the events around it
    are not lost either.
    """
    suffix = uuid.uuid4().hex[:8]
    events_topic = f"test.events.small.{suffix}"
    path = tmp_path / "hookstream.toml"
    path.write_text(quick_streams_toml(kafka_bootstrap, tmp_path, "small", suffix, partitions=2))
    config = load_config(path)
    await set_topic_limit(kafka_bootstrap, events_topic, SMALL_TOPIC_LIMIT, create_partitions=2)
    # Random bytes: no codec shrinks them below the topic's limit.
    big_body = os.urandom(4 * SMALL_TOPIC_LIMIT)
    base = now_ms() - 10_000
    before = raw_event(f"before-{suffix}", "acme/one", base)
    big = raw_event(f"big-{suffix}", "acme/big", base + 1, body=big_body)
    after = raw_event(f"after-{suffix}", "acme/one", base + 2)
    wanted = {e.event_id for e in (before, big, after)}

    worker = WorkerProcess(path, tmp_path / "streams.log").start()
    try:
        worker.wait_for("streams: processing", timeout=90)
        assert f"streams: warning: topic {events_topic} takes" in worker.output()
        await produce_raw(kafka_bootstrap, config.kafka.raw_topic, [(before, 0), (big, 1), (after, 0)])
        assert worker.process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(worker.process.wait, 60)
        code = worker.process.poll()
        output = worker.output()
        assert code not in (None, 0), f"the worker did not stop on the refused event:\n{output[-4000:]}"
        # The last line names the topic and the command that fixes it, as the warning at start did.
        fix = f"--entity-name {events_topic} --add-config max.message.bytes={config.kafka.max_message_bytes}"
        last = output.strip().splitlines()[-1]
        assert last.startswith(
            f"hookstream: error: streams worker stopped: topic {events_topic} refused a record as too large"
        ), output[-4000:]
        assert last.endswith(fix), last
        # faust's crash lines say it too, without tracebacks: the error is hookstream's own.
        assert "Traceback" not in output, output[-4000:]
    finally:
        worker.kill()
    out = [decode_raw_event(r.value) for r in await read_topic(kafka_bootstrap, events_topic) if r.key]
    assert big.event_id not in {e.event_id for e in out}

    # What the warning tells the operator to do, then the supervisor's restart.
    await set_topic_limit(kafka_bootstrap, events_topic, config.kafka.max_message_bytes)
    worker = WorkerProcess(path, tmp_path / "streams.log").start()
    try:
        worker.wait_for("streams: processing", timeout=90)
        deadline = time.monotonic() + 60
        while True:
            records = await read_topic(kafka_bootstrap, events_topic)
            out = [decode_raw_event(r.value) for r in records if r.key]
            if {e.event_id for e in out} >= wanted:
                break
            assert worker.process is not None and worker.process.poll() is None, worker.output()[-4000:]
            assert time.monotonic() < deadline, f"got {sorted({e.event_id for e in out})}:\n{worker.output()}"
            await asyncio.sleep(0.5)
    finally:
        worker.kill()
    [delivered] = {e.body for e in out if e.event_id == big.event_id}
    assert delivered == big_body
    one = [e.event_id for e in out if e.ordering_key == "acme/one"]
    assert one.index(before.event_id) < one.index(after.event_id)


async def test_a_dlq_topic_that_refuses_a_dead_letter_keeps_it_and_says_how_to_raise_the_limit(
    kafka_bootstrap: str, caplog
):
    """A dead letter is the only way out of a consumer: refused by a too small DLQ topic, the writer
    keeps trying, logging the command that raises the limit, and delivers it once that is done."""
    config = make_config(kafka_bootstrap, {})
    consumer = f"small-dlq-{uuid.uuid4().hex[:8]}"
    topic = dlq_topic(consumer)
    await set_topic_limit(kafka_bootstrap, topic, SMALL_TOPIC_LIMIT, create_partitions=1)
    record = SimpleNamespace(
        topic=config.kafka.events_topic,
        partition=0,
        offset=7,
        timestamp=int(time.time() * 1000),
        key=b"acme/big",
        value=os.urandom(4 * SMALL_TOPIC_LIMIT),
        headers=[],
    )
    letter = dead_letter_of(
        record,
        consumer=consumer,
        error=RuntimeError("down"),
        attempts=2,
        permanent=False,
        event_id="big",
        delivery="d",
    )
    writer = DeadLetterWriter(config.kafka, consumer)
    fix = f"--entity-name {topic} --add-config max.message.bytes={config.kafka.max_message_bytes}"
    with caplog.at_level(logging.WARNING, logger="hookstream.consumers"):
        await writer.start()
        try:
            writing = asyncio.create_task(writer.write(letter))
            refusals = lambda: [  # noqa: E731
                r
                for r in caplog.records
                if getattr(r, "error", "").startswith(f"topic {topic} refused a record")
            ]
            await wait_until(refusals, timeout=30, what="the refusal to be logged")
            assert refusals()[0].error.endswith(fix)
            assert not writing.done()
            await set_topic_limit(kafka_bootstrap, topic, config.kafka.max_message_bytes)
            await asyncio.wait_for(writing, 60)  # retries back off to at most 10 s
        finally:
            await writer.stop()
    [entry] = await list_dead_letters(config.kafka, consumer)
    assert entry.letter is not None and entry.letter.event_id == "big"
    assert entry.letter.value == record.value

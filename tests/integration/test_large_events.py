"""Events as large as a source accepts, through the whole pipeline against a real broker.

A source accepts bodies up to ``max_body_bytes`` (1 MiB by default), but Kafka's own defaults stop
records at about 1 MiB: the broker's ``message.max.bytes``, aiokafka's ``max_request_size``,
faust's ``producer_max_request_size`` (1,000,000). Once ingest answered 2xx for such an event it
must come out of streams, reach a consumer byte-exact, and survive the DLQ and a redrive; every
topic and client on the way is sized by ``kafka.max_message_bytes``.

One streams worker and one ingest server serve the pipeline tests (the worker starts first, so it
is the one that creates the topics). Bodies are random base64, which lz4 cannot shrink below the
limits. Topics that exist from before the setting are reported, not changed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import httpx
import orjson
import pytest

from hookstream.config import Config, load_config
from hookstream.consumers import Consumers, Event, resolve_consumers
from hookstream.consumers.dlq import dlq_topic
from hookstream.consumers.kafka_admin import ensure_topic
from hookstream.consumers.pipeline import Outcome
from hookstream.consumers.redrive import list_dead_letters, redrive
from hookstream.consumers.testing import create_topic, running_consumers
from hookstream.ingest.providers import provider_class
from hookstream.ingest.publisher import ensure_raw_topic
from hookstream.schemas.envelope import decode_raw_event
from hookstream.streams.testing import WorkerProcess, streams_config_toml
from hookstream.streams.topics import create_topics
from hookstream.tail import tail_topic

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


@pytest.fixture(scope="module")
async def large_pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LargePipeline]:
    """A streams worker (child process) and an ingest server with one github source, default limits."""
    tmp = tmp_path_factory.mktemp("large-events")
    suffix = uuid.uuid4().hex[:8]
    path = tmp / "hookstream.toml"
    path.write_text(
        streams_config_toml(
            kafka_bootstrap,
            raw_topic=f"test.raw.large.{suffix}",
            events_topic=f"test.events.large.{suffix}",
            partitions=4,
            app_id=f"test-streams-large-{suffix}",
            data_dir=tmp / "streams",
            web_port=free_port(),
            max_wait_ms=500,
            watermark_interval_ms=100,
            watermark_lag_ms=100,
            session_timeout_ms=6000,
        )
        + f'[ingest]\nport = {free_port()}\n[sources.gh]\nprovider = "github"\nsecrets = ["{SECRET}"]\n'
    )
    config = load_config(path)
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
        await ensure_topic(config.kafka, dlq, partitions=1)
    assert [
        r.getMessage().split(" takes ")[0]
        for r in caplog.records
        if r.name.startswith("hookstream.consumers")
    ] == [f"topic {dlq}"]
    assert await create_topics(config) == warnings  # reported again: left as it was

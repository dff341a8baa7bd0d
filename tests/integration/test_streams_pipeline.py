"""The streams worker against a real broker, in a child process that is stopped and killed.

What each test asserts, exactly:
(a) redeliveries: every event id reaches the events topic exactly once, across a graceful restart,
    whether the copies came through ingest or straight to the raw topic; duplicates are counted.
(b) order: with one raw partition far behind the others (a backlog), and a graceful restart in the
    middle, every key's events come out in received order, none late; and dedupe's own output was
    out of order, so the sequencer did the work.
(c) kill -9 mid-stream: no event id is missing; each key's first occurrences are in received
    order; the only duplicates are events that were out before the kill and sent again after the
    restart (at most once more); late flags appear only on what was sent after the restart.
(d) late: an event older than one already released for its key comes out flagged late=True, in
    arrival order, never reordered; a newer one after it is not late.
(e) upgrade: a record an earlier envelope version wrote (still in the raw topic when the worker
    is upgraded) comes out like any other, in the current schema.
(f) scale-out: two workers share the partitions, a third joins and one of the first two is killed
    -9 mid-stream: no event id is missing, each key's first occurrences are in received order,
    none is late, and the copies are few (a dead worker's last releases, sent again).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hookstream.config import Config, load_config
from hookstream.ingest.providers import provider_class
from hookstream.sample_events import now_ms, produce_raw, raw_event
from hookstream.schemas.envelope import (
    FINGERPRINT_HEADER,
    SCHEMA_DIR,
    RawEvent,
    decode_raw_event,
    schema_fingerprint,
)
from hookstream.streams.topics import create_topics, repartition_topic
from hookstream.streams.watermark import is_watermark
from hookstream.streams.worker_process import WorkerProcess, streams_config_toml

from .support import free_port, make_config, read_topic, running_ingest

pytestmark = pytest.mark.kafka

RESTARTING_OUTPUT_S = 120
"""How long a restarted worker gets to work off a backlog (it takes a few seconds on an idle
machine; the suite shares two cores with the broker). A worker that finds records skipped exits
1 and is not restarted here: the test then fails on the output, as it must."""

READY = "streams: processing"


@dataclass(frozen=True)
class Out:
    key: str
    event_id: str
    late: bool
    partition: int
    offset: int


@dataclass
class Pipeline:
    bootstrap: str
    config: Config
    config_path: Path
    log_path: Path
    workers: list[WorkerProcess]

    @property
    def raw_topic(self) -> str:
        return self.config.kafka.raw_topic

    def start_worker(self, wait: bool = True) -> WorkerProcess:
        worker = WorkerProcess(self.config_path, self.log_path).start()
        self.workers.append(worker)
        if wait:
            worker.wait_for(READY, timeout=90)
        return worker

    def start_member(self, name: str) -> WorkerProcess:
        """Another worker of the same group: its own web port, data directory and log."""
        text = self.config_path.read_text()
        port = f"web_port = {self.config.streams.web_port}"
        data_dir = f'data_dir = "{self.config.streams.data_dir}"'
        assert port in text and data_dir in text
        path = self.config_path.with_name(f"{self.config_path.stem}-{name}.toml")
        path.write_text(
            text.replace(port, f"web_port = {free_port()}").replace(
                data_dir, f'data_dir = "{self.config.streams.data_dir}-{name}"'
            )
        )
        worker = WorkerProcess(path, self.log_path.with_name(f"{self.log_path.stem}-{name}.log")).start()
        self.workers.append(worker)
        worker.wait_for(READY, timeout=90)
        return worker

    def logs(self) -> str:
        """The end of every worker's log that exists, for a failure message."""
        paths = sorted({w.log_path for w in self.workers} | {self.log_path})
        return "\n".join(
            f"--- {path.name}:\n{path.read_text(errors='replace')[-2500:]}" for path in paths if path.exists()
        )

    async def produce(self, events: list[tuple[RawEvent, int | None]]) -> None:
        await produce_raw(self.bootstrap, self.raw_topic, events)

    async def output(self) -> list[Out]:
        records = await read_topic(self.bootstrap, self.config.kafka.events_topic)
        out = []
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            event = decode_raw_event(r.value, r.headers)
            assert r.key.decode() == event.ordering_key
            out.append(Out(event.ordering_key, event.event_id, event.late, r.partition, r.offset))
        return out

    async def settled_output(self, timeout: float = 30) -> list[Out]:
        """The output once two reads 0.2 s apart find the same records (nothing writing any more)."""
        deadline = time.monotonic() + timeout
        last = await self.output()
        while True:
            await asyncio.sleep(0.2)
            out = await self.output()
            if out == last:
                return out
            assert time.monotonic() < deadline, f"the output was still growing after {timeout} s"
            last = out

    async def wait_output(self, done: Callable[[list[Out]], bool], timeout: float = 60) -> list[Out]:
        deadline = time.monotonic() + timeout
        while True:
            out = await self.output()
            if done(out):
                return out
            if time.monotonic() > deadline:
                tail = self.logs()
                try:
                    metrics = self.metrics()
                except httpx.HTTPError as exc:
                    metrics = {"unavailable": str(exc)}
                raise TimeoutError(
                    f"output incomplete after {timeout} s ({len(out)} records); metrics: {metrics}; log:\n{tail}"
                )
            await asyncio.sleep(0.3)

    async def wait_for_ids(self, wanted: set[str]) -> None:
        """Wait until every id in ``wanted`` is out; else fail saying where the missing ones are."""
        try:
            await self.wait_output(
                lambda out: wanted <= {o.event_id for o in out}, timeout=RESTARTING_OUTPUT_S
            )
        except TimeoutError as exc:
            raise AssertionError(await self.where_are(wanted)) from exc

    async def where_are(self, wanted: set[str]) -> str:
        """Where the event ids of ``wanted`` missing from the output got to, for a failure message."""
        missing = wanted - {o.event_id for o in await self.output()}

        async def located(topic: str) -> list[tuple[int, int, str]]:
            records = await read_topic(self.bootstrap, topic)
            return [
                (r.partition, r.offset, event_id)
                for r in records
                if not is_watermark(r.headers) and (event_id := decode_raw_event(r.value).event_id) in missing
            ]

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.config.streams.app_id)
        finally:
            await admin.close()
        return (
            f"{len(missing)} event ids missing from the output: {sorted(missing)[:20]}; "
            f"in the raw topic at (partition, offset): {await located(self.raw_topic)}; "
            f"in the repartition topic: {await located(repartition_topic(self.config))}; "
            f"committed offsets: { {f'{tp.topic}[{tp.partition}]': m.offset for tp, m in committed.items()} }; "
            f"log:\n{self.logs()}"
        )

    async def dedupe_output_ids(self) -> list[tuple[str, str]]:
        """(ordering key, event id) in the order dedupe forwarded them, watermarks left out."""
        records = await read_topic(self.bootstrap, repartition_topic(self.config))
        return [
            (r.key.decode(), decode_raw_event(r.value).event_id)
            for r in sorted(records, key=lambda r: (r.partition, r.offset))
            if not is_watermark(r.headers)
        ]

    def diagnosis(self) -> str:
        """The worker's counters and the end of its log, for a failure message."""
        try:
            metrics = {k: v for k, v in self.metrics().items() if "streams" in k}
        except httpx.HTTPError as exc:
            metrics = {"unavailable": str(exc)}
        return f"metrics: {metrics}; log:\n{self.logs()}"

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.config.streams.web_port}/metrics", timeout=10).text
        values = {}
        for line in text.splitlines():
            if line.startswith("hookstream_") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., Awaitable[Pipeline]]]:
    """A factory: ``await pipeline(config=None, partitions=4, **streams)`` with topics, app id and port unique to the test."""
    made: list[Pipeline] = []

    async def make(config: Config | None = None, partitions: int = 4, **streams: Any) -> Pipeline:
        suffix = uuid.uuid4().hex[:8]
        raw = config.kafka.raw_topic if config else f"test.raw.{suffix}"
        events = config.kafka.events_topic if config else f"test.events.{suffix}"
        path = tmp_path / f"streams-{suffix}.toml"
        settings = {
            "max_wait_ms": 2000,
            "watermark_interval_ms": 100,
            "watermark_lag_ms": 100,
            "session_timeout_ms": 6000,
            "dedupe_ttl_seconds": 3600,
            **streams,
        }
        path.write_text(
            streams_config_toml(
                kafka_bootstrap,
                raw_topic=raw,
                events_topic=events,
                partitions=config.kafka.partitions if config else partitions,
                app_id=f"test-streams-{suffix}",
                data_dir=tmp_path / "streams-data",
                web_port=free_port(),
                **settings,
            )
        )
        loaded = load_config(path)
        await create_topics(loaded)
        p = Pipeline(kafka_bootstrap, loaded, path, tmp_path / f"streams-{suffix}.log", [])
        made.append(p)
        return p

    yield make
    for p in made:
        for worker in p.workers:
            worker.kill()


def first_occurrences(out: list[Out]) -> dict[str, list[str]]:
    """Per key, event ids in output order, each id at its first occurrence (what a deduping consumer sees)."""
    seen: set[str] = set()
    by_key: dict[str, list[str]] = {}
    for o in out:
        if o.event_id not in seen:
            seen.add(o.event_id)
            by_key.setdefault(o.key, []).append(o.event_id)
    return by_key


# -- (a) redeliveries come out once ---------------------------------------------------------------
async def test_redeliveries_of_an_event_id_come_out_once_across_a_restart(pipeline, unique):
    p = await pipeline(partitions=4)
    base_ms = now_ms()
    # 20 events, the even ones delivered twice more (a provider retrying), all keyed by event id.
    direct = [(raw_event(f"{unique}-d{i}", f"key{i % 4}", base_ms + i), None) for i in range(20)]
    copies = [(raw_event(f"{unique}-d{i}", f"key{i % 4}", base_ms + 100 + i), None) for i in range(0, 20, 2)]
    await p.produce(direct + copies + copies)
    expected = {f"{unique}-d{i}" for i in range(20)}

    worker = p.start_worker()
    await p.wait_output(lambda out: {o.event_id for o in out} >= expected)
    m = p.metrics()
    assert m["hookstream_streams_forwarded_events_total"] == 20
    assert m["hookstream_streams_duplicate_events_total"] == 2 * len(copies)
    assert worker.stop() == 0

    # While it is down, the provider retries again (the table must remember across the restart),
    # and 5 new events arrive, each twice.
    new = [(raw_event(f"{unique}-n{i}", f"key{i % 4}", now_ms() + i), None) for i in range(5)]
    await p.produce(copies + new + new)
    expected |= {f"{unique}-n{i}" for i in range(5)}
    p.start_worker()
    await p.wait_output(lambda out: {o.event_id for o in out} >= expected)
    deadline = time.monotonic() + 30  # let it finish every raw record before judging
    while (m := p.metrics())["hookstream_streams_forwarded_events_total"] + m[
        "hookstream_streams_duplicate_events_total"
    ] < len(copies) + 2 * len(new):
        assert time.monotonic() < deadline, m
        await asyncio.sleep(0.2)
    assert m["hookstream_streams_forwarded_events_total"] == len(new)
    assert m["hookstream_streams_duplicate_events_total"] == len(copies) + len(new)
    await asyncio.sleep(0.5)
    out = await p.output()
    assert sorted(o.event_id for o in out) == sorted(expected)  # each exactly once


async def test_provider_retries_through_ingest_come_out_once(pipeline, kafka_bootstrap, unique):
    ingest_config = make_config(kafka_bootstrap, {"gh": {"provider": "github", "secrets": ["s"]}})
    p = await pipeline(ingest_config)
    gh = provider_class("github")(["s"])
    p.start_worker()
    async with running_ingest(ingest_config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for i in range(5):
            body = json.dumps({"n": i, "repository": {"full_name": f"acme/repo{i % 2}"}}).encode()
            headers = gh.sign(body, timestamp=0) | {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"{unique}-gh{i}",
            }
            for _ in range(3):  # GitHub redelivers with the same X-GitHub-Delivery
                assert (await client.post("/webhooks/gh", content=body, headers=headers)).status_code == 200
    expected = {f"{unique}-gh{i}" for i in range(5)}
    await p.wait_output(lambda out: {o.event_id for o in out} >= expected)
    deadline = time.monotonic() + 30
    while p.metrics()["hookstream_streams_duplicate_events_total"] < 10:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    out = await p.output()
    assert sorted(o.event_id for o in out) == sorted(expected)
    assert {o.key for o in out} == {"acme/repo0", "acme/repo1"}


# -- (b) per-key order under uneven partition progress, with a restart ----------------------------
@pytest.mark.timeout(300)  # RESTARTING_OUTPUT_S on top of the worker's start and a first phase
async def test_per_key_order_survives_a_backlogged_partition_and_a_restart(pipeline, unique):
    p = await pipeline(partitions=4, max_wait_ms=20_000)  # watermarks must do it, not the bounded wait
    keys = [f"{unique}-k{i}" for i in range(8)]
    received: dict[str, list[str]] = {k: [] for k in keys}
    n = 0

    def key_events(rounds: range) -> list[tuple[RawEvent, int | None]]:
        nonlocal n
        batch = []
        received_base = now_ms() - 10 * n  # received just now, as ingest would stamp them
        for r in rounds:
            for j, key in enumerate(keys):
                n += 1
                event_id = f"{key}-e{n:03d}"
                received[key].append(event_id)
                # Each key's events go round the partitions, so one key spans all of them.
                batch.append((raw_event(event_id, key, received_base + 10 * n), (r + j) % 4))
        return batch

    def backlog(partition: int, count: int, tag: str) -> list[tuple[RawEvent, int | None]]:
        # Traffic for other keys, queued in one partition ahead of the keyed events.
        return [
            (raw_event(f"{unique}-{tag}{i}", f"{unique}-{tag}{i}", now_ms() - 1000), partition)
            for i in range(count)
        ]

    await p.produce(backlog(3, 6000, "fill") + key_events(range(3)))
    worker = p.start_worker()
    # Stop while partition 3's backlog is still being worked off: keyed events from partitions 0-2
    # are then forwarded but held by the sequencer.
    await p.wait_output(lambda out: len(out) >= 200, timeout=60)
    assert worker.stop() == 0

    await p.produce(backlog(2, 3000, "more") + key_events(range(3, 6)))
    p.start_worker()
    wanted = {e for ids in received.values() for e in ids}
    out = await p.wait_output(lambda out: wanted <= {o.event_id for o in out}, timeout=RESTARTING_OUTPUT_S)

    firsts = first_occurrences(out)
    for key in keys:
        assert firsts[key] == received[key], f"{key}: {p.diagnosis()}"
    assert not [o for o in out if o.late], p.diagnosis()
    # Dedupe's output (by arrival) was not in received order for some key: the skew was real.
    forwarded: dict[str, list[str]] = {}
    for key, event_id in await p.dedupe_output_ids():
        if key in received and event_id not in forwarded.setdefault(key, []):
            forwarded[key].append(event_id)
    assert any(forwarded[k] != received[k] for k in keys)


# -- (c) kill -9 mid-stream: zero loss ------------------------------------------------------------
@pytest.mark.timeout(300)  # RESTARTING_OUTPUT_S on top of the worker's start and a first phase
async def test_kill_minus_9_mid_stream_loses_nothing(pipeline, unique):
    p = await pipeline(partitions=4)
    keys = [f"{unique}-k{i}" for i in range(20)]
    received: dict[str, list[str]] = {k: [] for k in keys}
    worker = p.start_worker()

    async def provider_traffic(total: int, per_second: int) -> None:
        for i in range(total):
            key = keys[i % len(keys)]
            event_id = f"{unique}-e{i:04d}"
            received[key].append(event_id)
            await p.produce([(raw_event(event_id, key, now_ms()), None)])  # placed by event id
            await asyncio.sleep(1 / per_second)

    traffic = asyncio.create_task(provider_traffic(total=600, per_second=200))
    await p.wait_output(lambda out: len(out) >= 150, timeout=60)
    worker.kill()
    # Everything in the output once it stops growing was written before the kill (the worker is
    # gone; the broker only finishes appending what it had fully received).
    before_end: dict[int, int] = {}
    for o in await p.settled_output():
        before_end[o.partition] = max(before_end.get(o.partition, 0), o.offset + 1)
    p.start_worker(wait=False)
    await traffic
    wanted = {e for ids in received.values() for e in ids}
    await p.wait_for_ids(wanted)
    await asyncio.sleep(1)
    out = await p.output()

    ids = [o.event_id for o in out]
    assert set(ids) == wanted  # nothing lost, nothing foreign
    firsts = first_occurrences(out)
    for key in keys:
        assert firsts[key] == received[key], key
    before = [o for o in out if o.offset < before_end.get(o.partition, 0)]
    after = [o for o in out if o.offset >= before_end.get(o.partition, 0)]
    # A copy of an event can only be a re-send by the restarted worker of one sent before the kill:
    # no duplicates on either side of it.
    assert len({o.event_id for o in before}) == len(before)
    assert len({o.event_id for o in after}) == len(after)
    assert not [o for o in before if o.late]  # late flags only come with the restart


# -- (f) scale-out: workers join and die under load ------------------------------------------------
@pytest.mark.timeout(400)
async def test_workers_that_join_and_die_mid_stream_lose_nothing_and_keep_per_key_order(pipeline, unique):
    p = await pipeline(partitions=8)
    keys = [f"{unique}-k{i}" for i in range(24)]
    received: dict[str, list[str]] = {k: [] for k in keys}
    first = p.start_member("a")
    p.start_member("b")

    async def provider_traffic(total: int, per_second: int) -> None:
        for i in range(total):
            key = keys[i % len(keys)]
            event_id = f"{unique}-e{i:04d}"
            received[key].append(event_id)
            record = raw_event(event_id, key, now_ms())
            # One in ten is delivered twice (a provider retry), to whichever partition its id maps to.
            await p.produce([(record, None)] + ([(record, None)] if i % 10 == 0 else []))
            await asyncio.sleep(1 / per_second)

    traffic = asyncio.create_task(provider_traffic(total=2400, per_second=150))
    try:
        await p.wait_output(lambda out: len(out) >= 400, timeout=90)
        p.start_member("c")  # a third joins: the group rebalances under load
        await p.wait_output(lambda out: len(out) >= 1000, timeout=90)
        first.kill()  # and one of the first two dies without a word
        await traffic
        wanted = {e for ids in received.values() for e in ids}
        await p.wait_for_ids(wanted)
    finally:
        traffic.cancel()
    out = await p.settled_output()

    assert {o.event_id for o in out} == wanted  # nothing lost, nothing foreign
    # In order per key, each id once for a consumer that drops copies by id (the only copies are a
    # dead worker's last releases, sent again by the worker that took its partitions over)...
    firsts = first_occurrences(out)
    for key in keys:
        assert firsts[key] == received[key], f"{key}: {p.logs()}"
    # ...and none of it out of order: the dead worker's partitions were waited for, not passed.
    assert not [o for o in out if o.late], p.logs()
    copies = len(out) - len(wanted)
    assert copies < len(wanted) // 10, copies


# -- (d) late marking ------------------------------------------------------------------------------
async def test_an_event_arriving_after_a_newer_one_was_released_is_marked_late(pipeline, unique):
    p = await pipeline(partitions=2, max_wait_ms=300, watermark_lag_ms=50, watermark_interval_ms=50)
    key = f"{unique}-order"
    base_ms = now_ms()
    p.start_worker()
    await p.produce([(raw_event(f"{unique}-second", key, base_ms + 2000), 0)])
    await p.wait_output(lambda out: len(out) == 1)
    await asyncio.sleep(0.6)  # well past max_wait_ms: the sequencer has moved on
    # The first event turns up now, long after the second was released (a provider retry, a
    # partition that was far behind...).
    await p.produce([(raw_event(f"{unique}-first", key, base_ms + 1000), 1)])
    await p.wait_output(lambda out: len(out) == 2)
    await p.produce([(raw_event(f"{unique}-third", key, now_ms() + 3000), 0)])
    out = await p.wait_output(lambda out: len(out) == 3)
    assert [(o.event_id.removeprefix(f"{unique}-"), o.late) for o in out] == [
        ("second", False),
        ("first", True),
        ("third", False),
    ]
    m = p.metrics()
    assert m["hookstream_streams_late_events_total"] == 1
    assert (
        m['hookstream_streams_released_events_total{reason="watermark"}']
        + m.get('hookstream_streams_released_events_total{reason="max_wait"}', 0)
        == 2
    )


# -- (e) records an earlier version wrote ---------------------------------------------------------
async def test_a_raw_record_written_by_envelope_version_1_comes_out_in_the_current_schema(pipeline, unique):
    p = await pipeline(partitions=2, max_wait_ms=300)
    v1 = fastavro.parse_schema(json.loads((SCHEMA_DIR / "history" / "raw_event.v1.avsc").read_text()))
    v1_fingerprint = fingerprint(to_parsing_canonical_form(v1), "CRC-64-AVRO").encode()
    old = raw_event(f"{unique}-v1", f"{unique}-key", now_ms(), body=b'{"written":"by v1"}')
    old_record = {k: v for k, v in old.to_record().items() if k not in ("matched_secret", "late")}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, v1, old_record)
    producer = AIOKafkaProducer(bootstrap_servers=p.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            p.raw_topic,
            buf.getvalue(),
            key=old.event_id.encode(),
            headers=[(FINGERPRINT_HEADER, v1_fingerprint)],
        )
    finally:
        await producer.stop()
    await p.produce([(raw_event(f"{unique}-now", f"{unique}-key", now_ms() + 1), None)])
    p.start_worker()
    out = await p.wait_output(lambda out: len(out) == 2)
    assert [o.event_id for o in out] == [f"{unique}-v1", f"{unique}-now"]
    records = await read_topic(p.bootstrap, p.config.kafka.events_topic)
    upgraded = next(r for r in records if r.key == f"{unique}-key".encode() and r.offset == out[0].offset)
    assert dict(upgraded.headers)[FINGERPRINT_HEADER] == schema_fingerprint("raw_event").encode()
    assert decode_raw_event(upgraded.value) == old  # the current schema reads it without help
    assert p.metrics().get("hookstream_streams_undecodable_records_total", 0) == 0

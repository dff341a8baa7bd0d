"""Replay against a real broker: from an offset, from a time, one event id; only the replayed
consumer sees the events again, its group's offsets do not move, and it must be stopped."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hookstream.config import Config, parse_config
from hookstream.consumers import ConsumerBusy
from hookstream.consumers.groups import group_id
from hookstream.consumers.registry import resolve_consumers
from hookstream.consumers.replay import replay
from hookstream.sample_events import make_raw_event
from hookstream.schemas.envelope import RawEvent
from tests.integration.support import (
    create_topic,
    ids_in_jsonl,
    produce_events,
    running_consumers,
    wait_until,
)

pytestmark = pytest.mark.kafka


@dataclass
class Setup:
    config: Config
    replayed: str
    other: str
    files: dict[str, Path]
    events: list[RawEvent]
    coordinates: list[tuple[int, int]]
    boundary: datetime | None
    """With two batches: a time after the first batch was acknowledged and before the second was sent."""

    def lines(self, name: str) -> list[str]:
        return ids_in_jsonl(self.files[name])


async def group_offsets(bootstrap: str, name: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id(name))
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


async def two_consumers_caught_up(bootstrap: str, tmp_path: Path, batches: int = 1) -> Setup:
    """Two jsonl consumers that have each handled every event once, then stopped. With
    ``batches=2`` the events are published in two batches some 200 ms apart."""
    suffix = uuid.uuid4().hex[:8]
    replayed, other = f"replayed-{suffix}", f"other-{suffix}"
    files = {replayed: tmp_path / "replayed.jsonl", other: tmp_path / "other.jsonl"}
    config = parse_config(
        {
            "kafka": {"bootstrap_servers": bootstrap, "events_topic": f"test.events.{suffix}"},
            "consumers": {n: {"action": "jsonl", "path": str(p)} for n, p in files.items()},
        }
    )
    await create_topic(bootstrap, config.kafka.events_topic, 4)
    events = [make_raw_event({"n": i}, ordering_key=f"pi_{i % 7}") for i in range(30)]
    coordinates = []
    boundary = None
    for batch in range(batches):
        if batch:
            await asyncio.sleep(0.1)
            boundary = datetime.now(tz=UTC)
            await asyncio.sleep(0.1)
        part = events[batch * len(events) // batches : (batch + 1) * len(events) // batches]
        coordinates += await produce_events(bootstrap, config.kafka.events_topic, part)
    async with running_consumers(config, [replayed, other]):
        await wait_until(
            lambda: all(len(ids_in_jsonl(p)) == len(events) for p in files.values()), 30, "both files"
        )
    return Setup(config, replayed, other, files, events, coordinates, boundary)


async def run_replay(setup: Setup, **selector):
    [spec] = resolve_consumers(setup.config, [setup.replayed])
    before = await group_offsets(setup.config.kafka.bootstrap_servers, setup.replayed)
    other_before = setup.files[setup.other].read_bytes()
    report = await replay(setup.config.kafka, spec, **selector)
    # Only the replayed consumer's output changed, and no group's offsets moved.
    assert setup.files[setup.other].read_bytes() == other_before
    assert await group_offsets(setup.config.kafka.bootstrap_servers, setup.replayed) == before
    return report


def replay_lines(setup: Setup) -> list[dict]:
    import json

    lines = [json.loads(line) for line in setup.files[setup.replayed].read_text().splitlines()]
    assert [line["replay"] for line in lines[: len(setup.events)]] == [False] * len(setup.events)
    extra = lines[len(setup.events) :]
    assert all(line["replay"] for line in extra)
    return extra


async def test_replay_from_an_offset_redelivers_that_partition_from_there_to_one_consumer(
    kafka_bootstrap, tmp_path
):
    setup = await two_consumers_caught_up(kafka_bootstrap, tmp_path)
    counts = Counter(p for p, _ in setup.coordinates)
    partition = counts.most_common(1)[0][0]
    offsets = sorted(o for p, o in setup.coordinates if p == partition)
    start = offsets[2]
    report = await run_replay(setup, from_offsets={partition: start})
    expected = [
        e.event_id
        for e, (p, o) in zip(setup.events, setup.coordinates, strict=True)
        if p == partition and o >= start
    ]
    extra = replay_lines(setup)
    assert sorted(line["event_id"] for line in extra) == sorted(expected)
    assert report.handled == len(expected) and report.dead_lettered == 0
    assert report.ranges == {partition: (start, offsets[-1] + 1)}


async def test_replay_from_a_time_redelivers_what_arrived_since(kafka_bootstrap, tmp_path):
    setup = await two_consumers_caught_up(kafka_bootstrap, tmp_path, batches=2)
    second = setup.events[len(setup.events) // 2 :]
    # Records carry the producer's clock at send time: the boundary lies between the batches.
    report = await run_replay(setup, from_time=setup.boundary)
    assert sorted(line["event_id"] for line in replay_lines(setup)) == sorted(e.event_id for e in second)
    assert report.handled == len(second)


async def test_replay_of_one_event_id_redelivers_just_that_event_and_refuses_while_running(
    kafka_bootstrap, tmp_path
):
    setup = await two_consumers_caught_up(kafka_bootstrap, tmp_path)
    target = setup.events[17].event_id
    [spec] = resolve_consumers(setup.config, [setup.replayed])
    async with running_consumers(setup.config, [setup.replayed]):
        with pytest.raises(
            ConsumerBusy, match=r"is running \(group hookstream\.consumer\.replayed-.* 1 active member"
        ):
            await replay(setup.config.kafka, spec, event_ids={target})
    started = time.monotonic()
    report = await run_replay(setup, event_ids={target})
    assert [line["event_id"] for line in replay_lines(setup)] == [target]
    assert report.handled == 1 and report.found_ids == {target}
    assert time.monotonic() - started < 20

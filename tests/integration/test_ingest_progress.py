"""Ingest's progress markers against a real broker: in every raw partition, a marker follows
every record it covers ("everything received before T is acknowledged"), and a stopping ingest
says it is leaving."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from hookstream.ingest.providers import provider_class
from hookstream.schemas.envelope import routing_of
from hookstream.schemas.progress import decode_progress, is_progress

from .support import make_config, read_topic, running_ingest

pytestmark = pytest.mark.kafka


async def test_each_marker_follows_every_record_received_before_it_and_ingest_leaves_on_stop(kafka_bootstrap):
    config = make_config(
        kafka_bootstrap,
        {"gh": {"provider": "github", "secrets": ["s"]}},
        ingest={"progress_interval_ms": 10},
    )
    gh = provider_class("github")(["s"])

    async def send(client: httpx.AsyncClient, i: int) -> None:
        body = json.dumps({"n": i, "repository": {"full_name": f"acme/r{i % 7}"}}).encode()
        headers = gh.sign(body, timestamp=0) | {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"d-{i}"}
        assert (await client.post("/webhooks/gh", content=body, headers=headers)).status_code == 200

    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for wave in range(6):  # concurrent requests, so markers land between unacknowledged ones
            await asyncio.gather(*(send(client, wave * 50 + i) for i in range(50)))
            await asyncio.sleep(0.03)

    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic, markers=True)
    by_partition: dict[int, list] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_partition.setdefault(r.partition, []).append(r)
    assert sorted(by_partition) == list(range(config.kafka.partitions))
    events = 0
    for partition, recs in by_partition.items():
        marks = [(i, decode_progress(r.value)) for i, r in enumerate(recs) if is_progress(r.headers)]
        assert marks, f"no progress marker in partition {partition}"
        assert marks[-1][1].before_ms is None  # the last one: ingest stopped and said so
        assert len({m.instance for _, m in marks}) == 1
        for i, mark in marks:
            if mark.before_ms is None:
                continue
            later = [routing_of(r.headers) for r in recs[i + 1 :] if not is_progress(r.headers)]
            assert all(route.received_at_ms >= mark.before_ms for route in later), (partition, i)
        befores = [m.before_ms for _, m in marks if m.before_ms is not None]
        assert befores == sorted(befores)  # one process's progress never goes back
        events += sum(1 for r in recs if not is_progress(r.headers))
    assert events == 300

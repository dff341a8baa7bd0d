"""``hookstream bench pipeline`` measures what it says: every delivery ingest accepted is in the
backlog, and the worker's rate is over all of it, each distinct event published once."""

from __future__ import annotations

import asyncio

import pytest

from hookstream.bench import run_pipeline_bench
from hookstream.schemas.envelope import decode_raw_event

from .support import read_topic

pytestmark = pytest.mark.kafka


async def test_the_pipeline_bench_drains_everything_ingest_accepted_and_reports_the_ratio(kafka_bootstrap):
    messages: list[str] = []
    result = await asyncio.to_thread(
        run_pipeline_bench,
        n=400,
        concurrency=16,
        partitions=4,
        duplicate_every=10,
        warmup=100,
        bootstrap=kafka_bootstrap,
        progress=messages.append,
    )
    ingest, streams = result["ingest"], result["streams"]
    assert ingest["statuses"] == {"200": 400}
    assert streams["raw_records"] == 500
    assert streams["distinct_events"] == 450  # 1 in 10 a provider retry of an earlier event
    assert streams["duplicates_dropped"] == 50
    assert streams["published"] == 450 and streams["late"] == 0
    assert result["load"]["body_bytes"] >= 1000
    assert result["ratio_streams_to_ingest"] == pytest.approx(
        streams["end_to_end_events_per_s"] / ingest["req_per_s"], abs=0.001
    )
    assert any("ratio" in m for m in messages)

    raw = await read_topic(kafka_bootstrap, result["load"]["raw_topic"])
    assert len(raw) == 500
    events = await read_topic(kafka_bootstrap, result["load"]["events_topic"])
    ids = [decode_raw_event(r.value, r.headers).event_id for r in events]
    assert len(ids) == len(set(ids)) == 450

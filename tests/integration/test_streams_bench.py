"""The streams benches measure what they say. ``bench pipeline``: every delivery ingest accepted
is in the backlog, and the worker's rate is over all of it, each distinct event published once.
``bench memory``: a worker's RSS and recovery per table store, and a restart that still drops
every old id sent again."""

from __future__ import annotations

import asyncio

import pytest

from hookstream.bench import run_memory_bench, run_pipeline_bench
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


def test_the_memory_bench_measures_both_stores_and_a_restart_that_remembers(kafka_bootstrap):
    messages: list[str] = []
    result = run_memory_bench(
        ids=2000,
        stores=("memory://", "rocksdb://"),
        partitions=4,
        bootstrap=kafka_bootstrap,
        progress=messages.append,
    )
    assert [run["store"] for run in result["runs"]] == ["memory://", "rocksdb://"]
    for run in result["runs"]:
        assert run["event_ids"] == 2000
        assert 20 < run["rss_mb"] <= run["peak_rss_mb"]
        assert 20 < run["restarted_rss_mb"] <= run["restarted_peak_rss_mb"]
        assert 0 < run["recovery_seconds"] < 120
        # The restarted worker remembers: every old id sent again is dropped, none forwarded.
        assert run["old_ids_sent_again"] == 1000
        assert run["old_ids_dropped_as_duplicates"] == 1000
        assert run["old_ids_forwarded_again"] == 0
    rocksdb = result["runs"][1]
    assert rocksdb["targets"] == {"rss_mb": 400, "recovery_seconds": 30}
    assert rocksdb["meets_targets"] == (rocksdb["rss_mb"] < 400 and rocksdb["recovery_seconds"] < 30)
    assert "targets" not in result["runs"][0]
    assert any("restart on the same data directory" in m for m in messages)

"""The consumer latency benchmark runs end to end (briefly) and reports sane numbers."""

from __future__ import annotations

import asyncio

import pytest

from hookstream.consumers.latency_bench import run_consumer_latency_bench

pytestmark = pytest.mark.kafka


async def test_the_latency_bench_reports_percentiles_for_every_event(kafka_bootstrap):
    result = await asyncio.to_thread(
        run_consumer_latency_bench, kafka_bootstrap, rate=200, seconds=1.0, action="jsonl", partitions=2
    )
    assert result["events"] == 200
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 10_000

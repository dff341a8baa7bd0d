"""``hookstream bench ingest`` measures what it says: every timed ingest request is a durable publish."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from hookstream.bench import run_ingest_bench

from .support import read_topic

pytestmark = pytest.mark.kafka


async def test_the_ingest_bench_publishes_every_request_and_reports_the_median_ratio(kafka_bootstrap):
    messages: list[str] = []
    result = await asyncio.to_thread(
        run_ingest_bench,
        total=150,
        rounds=3,
        concurrency=8,
        warmup_seconds=0.1,
        bootstrap=kafka_bootstrap,
        progress=messages.append,
    )
    load = result["load"]
    rounds = result["rounds"]
    assert len(rounds) == 3
    for run in (result["noop"], result["ingest"]):
        assert run["statuses"] == {"200": 150}
        # The busy share is the server's CPU over the round's wall time: the same CPU as the
        # per-request figure (both rounded), and one event loop uses at most about one core.
        cpu_seconds = run["server_cpu_us_per_request"] * run["requests"] / 1e6
        assert run["server_cpu_busy"] == pytest.approx(cpu_seconds / run["seconds"], abs=0.02)
        assert run["server_cpu_busy"] <= 1.5
    assert result["ratio_ingest_to_noop"] == round(statistics.median(r["ratio"] for r in rounds), 3)
    assert result["noop"]["req_per_s"] == sorted(r["noop_req_per_s"] for r in rounds)[1]
    assert result["ingest"]["req_per_s"] == sorted(r["ingest_req_per_s"] for r in rounds)[1]
    # The rounds alternate which app goes first, so a drifting machine falls on both.
    round_lines = [m for m in messages if m.startswith("bench: round")]
    assert [line.split(": ")[2] for line in round_lines] == [
        "noop",
        "ingest",
        "ingest",
        "noop",
        "noop",
        "ingest",
    ]

    records = await read_topic(kafka_bootstrap, load["raw_topic"])
    keys = [r.key.decode() for r in records]
    assert len(keys) == len(set(keys)) == load["warmup_ingest_requests"] + 3 * 150

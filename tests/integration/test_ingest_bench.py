"""``hookstream bench ingest`` measures what it says: every timed ingest request is a durable publish."""

from __future__ import annotations

import asyncio
import os
import statistics

import pytest

from hookstream.bench import run_ingest_bench

from .support import read_topic

pytestmark = pytest.mark.kafka


async def test_the_ingest_bench_publishes_every_request_and_compares_the_apps_best_loads(kafka_bootstrap):
    messages: list[str] = []
    result = await asyncio.to_thread(
        run_ingest_bench,
        total=150,
        rounds=3,
        concurrency=(4, 8),
        warmup_seconds=0.1,
        bootstrap=kafka_bootstrap,
        progress=messages.append,
    )
    load = result["load"]
    assert load["concurrency"] == [4, 8]
    rounds = result["rounds"]
    assert len(rounds) == 3
    by_load = result["by_concurrency"]
    assert set(by_load) == {"4", "8"}
    for numbers in by_load.values():
        for run in (numbers["noop"], numbers["ingest"]):
            assert run["statuses"] == {"200": 150}
            # The busy share is the server's CPU over the round's wall time: the same CPU as the
            # per-request figure (both rounded), and one event loop uses at most about one core.
            # CPU is read in clock ticks, before and after: a round this short can be off by a
            # tick in user and in system time, which alone can look like more than one core.
            cpu_seconds = run["server_cpu_us_per_request"] * run["requests"] / 1e6
            assert run["server_cpu_busy"] == pytest.approx(cpu_seconds / run["seconds"], abs=0.02)
            assert cpu_seconds <= 1.5 * run["seconds"] + 2 * 2 / os.sysconf("SC_CLK_TCK")
    # The load generator's CPU is counted too (in clock ticks: a single short run may show none).
    assert (
        sum(n[kind]["client_cpu_us_per_request"] for n in by_load.values() for kind in ("noop", "ingest")) > 0
    )
    # Each round compares the apps at the load each did best at; the reported ratio is the median.
    for r in rounds:
        assert r["noop_concurrency"] in (4, 8) and r["ingest_concurrency"] in (4, 8)
        assert r["ratio"] == round(r["ingest_req_per_s"] / r["noop_req_per_s"], 3)
    assert result["ratio_ingest_to_noop"] == round(statistics.median(r["ratio"] for r in rounds), 3)
    middle = sorted(rounds, key=lambda r: r["ratio"])[1]
    assert result["noop"]["req_per_s"] == middle["noop_req_per_s"]
    assert result["noop"]["concurrency"] == middle["noop_concurrency"]
    assert result["ingest"]["req_per_s"] == middle["ingest_req_per_s"]
    assert result["ingest"]["concurrency"] == middle["ingest_concurrency"]
    # The rounds alternate which app goes first, so a drifting machine falls on both.
    round_lines = [m for m in messages if m.startswith("bench: round")]
    order = [(line.split(": ")[2], line.split(", ")[1]) for line in round_lines]
    noop_first = [
        ("noop", "4 concurrent…"),
        ("ingest", "4 concurrent…"),
        ("noop", "8 concurrent…"),
        ("ingest", "8 concurrent…"),
    ]
    ingest_first = [
        ("ingest", "4 concurrent…"),
        ("noop", "4 concurrent…"),
        ("ingest", "8 concurrent…"),
        ("noop", "8 concurrent…"),
    ]
    assert order == noop_first + ingest_first + noop_first
    assert any(m.startswith("bench: ratio of the best req/s") for m in messages)

    records = await read_topic(kafka_bootstrap, load["raw_topic"])
    keys = [r.key.decode() for r in records]
    assert len(keys) == len(set(keys)) == load["warmup_ingest_requests"] + 3 * 2 * 150

"""``hookstream bench console``: how fast the first page of Events answers over a large raw topic.

Publishes ``n`` raw events keyed by event id as ingest does (without ingest's progress markers,
which a page skips), serves the console in this process, and times over HTTP the first page
(JSON and HTML) and a text search, which reads up to ``console.scan_limit`` records.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import uvicorn

from hookstream.config import parse_config
from hookstream.ingest.server import uvicorn_config
from hookstream.kafka.admin import Admin
from hookstream.kafka.local_broker import free_port
from hookstream.sample_events import make_raw_event, produce_raw

from .app import create_app

TARGET_MS = 300
"""The issue's bound for the first page of Events with 200k events in the raw topic."""


def _timings(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def measure_events_page(
    bootstrap: str, n: int, *, partitions: int = 8, rounds: int = 20, progress=print
) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    config = parse_config(
        {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "raw_topic": f"bench.console-raw.{suffix}",
                "partitions": partitions,
            },
            "sources": {},
        }
    )
    async with Admin(config.kafka, "bench") as admin:
        await admin.create_topic(config.kafka.raw_topic, partitions)
    progress(f"bench console: publishing {n} raw events to {config.kafka.raw_topic} …")
    started = time.monotonic()
    chunk = 20_000
    for first in range(0, n, chunk):
        events = [
            make_raw_event(
                {"id": f"evt_{i}", "customer": f"cus_{i % 5000}", "amount": i},
                event_id=f"evt_{suffix}_{i}",
                ordering_key=f"pi_{i % 9000}",
            )
            for i in range(first, min(n, first + chunk))
        ]
        await produce_raw(bootstrap, config.kafka.raw_topic, [(e, None) for e in events], linger_ms=20)
    progress(f"bench console: published in {time.monotonic() - started:.0f} s; timing the first page …")
    port = free_port()
    server = uvicorn.Server(uvicorn_config(create_app(config), "127.0.0.1", port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            results: dict[str, Any] = {}
            for name, params, accept in (
                ("first_page_json", {}, "application/json"),
                ("first_page_html", {}, "text/html"),
                ("search_json", {"q": "cus_4999"}, "application/json"),
            ):
                await client.get("/events", params=params, headers={"accept": accept})  # warm
                samples = []
                for _ in range(rounds):
                    t = time.perf_counter()
                    answer = await client.get("/events", params=params, headers={"accept": accept})
                    samples.append((time.perf_counter() - t) * 1000)
                    answer.raise_for_status()
                results[name] = _timings(samples)
            page = (await client.get("/events", headers={"accept": "application/json"})).json()
            search = (
                await client.get("/events", params={"q": "cus_4999"}, headers={"accept": "application/json"})
            ).json()
    finally:
        server.should_exit = True
        await task
    return {
        "raw_events": n,
        "partitions": partitions,
        "rounds": rounds,
        "page_size": len(page["events"]),
        "first_page_scanned": page["scanned"],
        "search_scanned": search["scanned"],
        "search_matches": len(search["events"]),
        **results,
        "target_ms": TARGET_MS,
        "meets_target": results["first_page_json"]["p95_ms"] <= TARGET_MS
        and results["first_page_html"]["p95_ms"] <= TARGET_MS,
    }

"""End-to-end latency of a consumer: from producing an event to its handler finishing.

``run_consumer_latency_bench(bootstrap)`` publishes RawEvents at a fixed rate to a fresh events
topic and runs one consumer over it (a no-op handler, or the jsonl action with its fsync), and
reports latency percentiles. Everything stays on the given broker; nothing else is touched.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from hookstream.bench import percentile
from hookstream.config import ConsumerConfig, KafkaConfig
from hookstream.kafka.admin import Admin
from hookstream.sample_events import make_raw_event
from hookstream.schemas.envelope import encode_raw_event, record_headers

from .actions import ActionSetup, FunctionAction, JsonlAction
from .events import Event
from .patterns import EventFilter
from .registry import ConsumerSpec
from .runtime import ConsumerRuntime


def run_consumer_latency_bench(
    bootstrap: str,
    *,
    rate: int = 500,
    seconds: float = 10.0,
    action: str = "noop",
    concurrency: int = 8,
    keys: int = 64,
    partitions: int = 8,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Latency (ms) from produce to handler done, at ``rate`` events/s for ``seconds``."""
    return asyncio.run(_bench(bootstrap, rate, seconds, action, concurrency, keys, partitions, progress))


async def _bench(
    bootstrap: str,
    rate: int,
    seconds: float,
    action_name: str,
    concurrency: int,
    keys: int,
    partitions: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    if action_name not in ("noop", "jsonl"):
        raise ValueError(f"action must be noop or jsonl, got {action_name!r}")
    suffix = uuid.uuid4().hex[:8]
    kafka = KafkaConfig(bootstrap_servers=bootstrap, events_topic=f"bench.events.{suffix}")
    async with Admin(kafka, "bench") as admin:
        await admin.create_topic(kafka.events_topic, partitions)
    latencies: list[float] = []
    total = int(rate * seconds)
    done = asyncio.Event()
    workdir = Path(tempfile.mkdtemp(prefix="hookstream-bench-"))
    settings = ConsumerConfig(name=f"bench-{suffix}", concurrency=concurrency, start="latest")
    jsonl = JsonlAction(ActionSetup(settings, "bench", None), str(workdir / "events.jsonl"))

    async def handler(event: Event) -> None:
        if action_name == "jsonl":
            await jsonl(event)
        latencies.append((time.time() - event.payload["sent_at"]) * 1000)
        if len(latencies) >= total:
            done.set()

    spec = ConsumerSpec(settings, EventFilter.of(["*"]), lambda: FunctionAction(handler, "bench"), "bench")
    stopping = asyncio.Event()
    runtime = ConsumerRuntime(kafka, spec, stopping=stopping, progress=progress)
    if action_name == "jsonl":
        await jsonl.open()
    task = asyncio.create_task(runtime.run())
    try:
        while not runtime.assigned.is_set():
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        progress(f"bench: {total} events at {rate}/s, handler {action_name}, concurrency {concurrency}")
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1
        )
        await producer.start()
        try:
            tick = 0.005
            sent = 0
            acks = []
            started = time.monotonic()
            while sent < total:
                due = min(total, int((time.monotonic() - started) * rate) + 1)
                for n in range(sent, due):
                    event = make_raw_event({"sent_at": time.time(), "n": n}, ordering_key=f"key-{n % keys}")
                    acks.append(
                        await producer.send(
                            kafka.events_topic,
                            encode_raw_event(event),
                            key=event.ordering_key.encode(),
                            headers=record_headers(),
                        )
                    )
                sent = due
                await asyncio.sleep(tick)
            await asyncio.gather(*acks)
        finally:
            await producer.stop()
        elapsed = time.monotonic() - started
        await asyncio.wait_for(done.wait(), 60)
    finally:
        stopping.set()
        await task
        await jsonl.close()
    return {
        "events": len(latencies),
        "rate_target": rate,
        "rate_achieved": round(total / elapsed, 1),
        "handler": action_name,
        "concurrency": concurrency,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
            "mean": round(statistics.fmean(latencies), 2),
        },
    }

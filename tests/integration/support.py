"""Integration helpers: a running ingest server, unique topics, reading a topic back; for consumer
tests without ingest or streams, events put on an events topic exactly as streams would (key =
ordering key, value = the Avro envelope) and consumers run in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer

from hookstream.config import Config, KafkaConfig, parse_config
from hookstream.consumers.registry import Consumers, resolve_consumers
from hookstream.consumers.runtime import ConsumerRuntime
from hookstream.ingest.app import create_app
from hookstream.ingest.server import uvicorn_config
from hookstream.kafka.admin import Admin
from hookstream.kafka.local_broker import free_port
from hookstream.kafka.reads import read_topic as read_all
from hookstream.schemas.envelope import RawEvent, encode_raw_event, record_headers
from hookstream.schemas.progress import is_progress
from hookstream.stage_rules import stage_rules


def make_config(
    bootstrap: str,
    sources: dict[str, Any],
    *,
    ingest: dict[str, Any] | None = None,
    streams: dict[str, Any] | None = None,
    **kafka: Any,
) -> Config:
    """A config with topics unique to the test, so tests sharing a broker never see each other's events.

    ``ingest`` and ``streams`` are merged into those tables; the other keywords into ``[kafka]``.
    """
    suffix = uuid.uuid4().hex[:8]
    data = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "raw_topic": f"test.raw.{suffix}",
            "events_topic": f"test.events.{suffix}",
            "partitions": 4,
            "publish_timeout_seconds": 5,
            **kafka,
        },
        "ingest": {"port": free_port(), **(ingest or {})},
        "streams": streams or {},
        "sources": sources,
    }
    return parse_config(data, rules=stage_rules())


@contextlib.asynccontextmanager
async def running_ingest(config: Config, **kwargs: Any) -> AsyncIterator[str]:
    """Serve the real app with uvicorn on a free port; yields its base URL."""
    async with serving(create_app(config, connect_timeout=30, **kwargs), config.ingest.port) as url:
        yield url


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[str]:
    """Serve an ASGI ``app`` (its lifespan included) with uvicorn on ``port``; yields its base URL."""
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"{type(app).__name__} on port {port} did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


async def read_topic(bootstrap: str, topic: str, timeout: float = 30, *, markers: bool = False) -> list[Any]:
    """Every record now in ``topic``, read from the beginning up to the current end offsets;
    ingest's progress markers only with ``markers`` (they are not events)."""
    records = await read_all(KafkaConfig(bootstrap_servers=bootstrap), topic, timeout=timeout)
    return [r for r in records if markers or not is_progress(r.headers)]


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` unless it exists; any other error Kafka answers is raised."""
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap), "testing") as admin:
        await admin.create_topic(topic, partitions)


async def produce_events(bootstrap: str, topic: str, events: Iterable[RawEvent]) -> list[tuple[int, int]]:
    """Publish ``events`` in order, each keyed by its ordering key; returns (partition, offset) each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=encode_raw_event(e), key=e.ordering_key.encode(), headers=record_headers()
            )
            for e in events
        ]
        results = [await f for f in futures]
    finally:
        await producer.stop()
    return [(r.partition, r.offset) for r in results]


@contextlib.asynccontextmanager
async def serving_endpoint(endpoint: Callable[..., Any], port: int | None = None) -> AsyncIterator[str]:
    """A receiver for the http action: ``endpoint`` served at POST /hooks with uvicorn, on
    ``port`` (a free one by default; the same one again brings a stopped receiver back)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    port = port or free_port()
    app = Starlette(routes=[Route("/hooks", endpoint, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 30, "the receiver to start")
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        server.should_exit = True
        await task


def ids_in_jsonl(path: Any) -> list[str]:
    """Event ids of a jsonl action's file, in file order (repeats kept)."""
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line)["event_id"] for line in file.read_text().splitlines() if line.strip()]


async def wait_until(predicate: Any, timeout: float = 30, what: str = "the condition") -> None:
    """Poll ``predicate()`` (sync or async) every 50 ms until true; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_consumers(
    config: Config,
    names: Sequence[str],
    *,
    consumers: Consumers | None = None,
    progress: Callable[[str], None] | None = None,
    join_timeout: float = 60,
) -> AsyncIterator[list[ConsumerRuntime]]:
    """Run the named consumers in this event loop; yields once each has its partitions, and stops
    them gracefully (re-raising any error they met) on exit."""
    specs = resolve_consumers(config, names, consumers=consumers)
    stopping = asyncio.Event()
    runtimes = [
        ConsumerRuntime(config.kafka, spec, stopping=stopping, progress=progress or (lambda line: None))
        for spec in specs
    ]
    tasks = [asyncio.create_task(r.run()) for r in runtimes]

    def ready() -> bool:
        for task in tasks:
            if task.done():
                task.result()  # raises what went wrong
                raise RuntimeError("a consumer stopped before it was assigned partitions")
        return all(r.assigned.is_set() for r in runtimes)

    try:
        await wait_until(ready, join_timeout, "the consumers to join their groups")
        yield runtimes
    finally:
        stopping.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result

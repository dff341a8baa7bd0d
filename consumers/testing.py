"""Helpers for testing consumers without ingest or streams: build RawEvents and put them on an
events topic exactly as streams would (key = ordering key, value = the Avro envelope)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from hookstream.config import Config, KafkaConfig
from hookstream.kafka.admin import Admin
from hookstream.schemas.envelope import RawEvent, encode_raw_event, record_headers

from .registry import Consumers, resolve_consumers
from .runtime import ConsumerRuntime


def make_raw_event(
    payload: Any,
    *,
    event_id: str | None = None,
    source: str = "stripe",
    provider: str | None = None,
    event_type: str = "payment_intent.succeeded",
    ordering_key: str = "pi_1",
    received_at: datetime | None = None,
    created_at: datetime | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> RawEvent:
    """A verified RawEvent carrying ``payload`` as its JSON body (or ``body`` verbatim)."""
    return RawEvent(
        ingest_id=uuid.uuid4().hex,
        event_id=event_id or f"evt_{uuid.uuid4().hex[:16]}",
        source=source,
        provider=provider or source,
        event_type=event_type,
        ordering_key=ordering_key,
        received_at=received_at or datetime.now(tz=UTC),
        remote_addr="127.0.0.1",
        headers={"content-type": "application/json", **(headers or {})},
        content_type="application/json",
        body=body if body is not None else json.dumps(payload).encode(),
        verified=True,
        created_at=created_at,
    )


def stripe_payment_intent(
    event_id: str, intent_id: str, *, amount: int | None = 2000, **extra: Any
) -> dict[str, Any]:
    """A Stripe payment_intent.succeeded payload; ``amount=None`` leaves the required field out."""
    intent: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "currency": "usd",
        "status": "succeeded",
    }
    if amount is not None:
        intent["amount"] = amount
    intent.update(extra)
    return {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": intent},
    }


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


def ids_in_jsonl(path: Any) -> list[str]:
    """Event ids of a jsonl action's file, in file order (repeats kept)."""
    from pathlib import Path

    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line)["event_id"] for line in file.read_text().splitlines() if line.strip()]


def by_partition(coordinates: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for partition, offset in coordinates:
        out.setdefault(partition, []).append(offset)
    return out


async def wait_until(predicate: Any, timeout: float = 30, what: str = "the condition") -> None:
    """Poll ``predicate()`` (sync or async) every 50 ms until true; TimeoutError naming ``what``."""
    import asyncio
    import inspect

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
    import asyncio

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

"""Made-up RawEvents for the benchmarks (``hookstream bench``) and the tests: built in memory as
ingest would build them, and published to a raw topic as ingest would publish them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from hookstream.schemas.envelope import RawEvent, encode_raw_event, event_headers, ms_to_datetime


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


def raw_event(
    event_id: str,
    ordering_key: str,
    received_ms: int,
    *,
    created_ms: int | None = None,
    body: bytes = b"{}",
    source: str = "test",
) -> RawEvent:
    """A RawEvent as ingest would publish it, received at ``received_ms``."""
    return make_raw_event(
        None,
        event_id=event_id,
        source=source,
        provider="standard",
        event_type="test.event",
        ordering_key=ordering_key,
        received_at=ms_to_datetime(received_ms),
        created_at=ms_to_datetime(created_ms) if created_ms is not None else None,
        body=body,
    )


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def produce_raw(
    bootstrap: str, topic: str, events: Iterable[tuple[RawEvent, int | None]], *, linger_ms: int = 0
) -> None:
    """Publish ``(event, partition)`` pairs to the raw topic, keyed by event id, in order, acked.

    ``partition=None`` lets the default partitioner place it by key, as ingest does.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms)
    await producer.start()
    try:
        futures = []
        for event, partition in events:
            futures.append(
                await producer.send(
                    topic,
                    encode_raw_event(event),
                    key=event.event_id.encode(),
                    partition=partition,
                    headers=event_headers(event),
                )
            )
        for future in futures:
            await future
    finally:
        await producer.stop()

"""Read hookstream topics for people: ``hookstream tail``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from hookstream.config import Config
from hookstream.errors import HookstreamError
from hookstream.kafka.admin import unreachable
from hookstream.kafka.message_size import fetch_sizes
from hookstream.schemas.envelope import RecordHeaders, decode_raw_event
from hookstream.schemas.progress import is_progress


def event_as_json(value: bytes, headers: RecordHeaders = None) -> dict[str, Any]:
    event = decode_raw_event(value, headers)
    try:
        body: Any = event.body.decode("utf-8")
    except UnicodeDecodeError:
        body = {"base64": __import__("base64").b64encode(event.body).decode()}
    return {
        **event.identity(),
        "ingest_id": event.ingest_id,
        "body": body,
    }


async def tail_topic(
    config: Config,
    topic: str,
    from_beginning: bool,
    max_events: int | None,
    timeout: float | None,
    emit: Callable[[str], None],
) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=config.kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **fetch_sizes(config.kafka),
    )
    try:
        await consumer.start()
    except (KafkaError, OSError) as exc:
        await consumer.stop()
        raise HookstreamError(unreachable(config.kafka.bootstrap_servers, exc)) from None
    count = 0
    loop = asyncio.get_running_loop()
    idle_since = loop.time()  # ``timeout``: seconds without an event (markers keep coming)
    try:
        while max_events is None or count < max_events:
            wait = 1.0 if timeout is None else max(0.0, idle_since + timeout - loop.time())
            batch = await consumer.getmany(timeout_ms=int(wait * 1000))
            if timeout is not None and loop.time() >= idle_since + timeout and not _has_events(batch):
                break
            for records in batch.values():
                for record in records:
                    if is_progress(record.headers):
                        continue  # not an event: ingest's progress marker
                    try:
                        line = event_as_json(record.value, record.headers)
                        line.update(partition=record.partition, offset=record.offset)
                    except Exception as exc:  # a foreign record must not stop the tail
                        line = {
                            "partition": record.partition,
                            "offset": record.offset,
                            "undecodable": str(exc),
                        }
                    emit(orjson.dumps(line).decode())
                    idle_since = loop.time()
                    count += 1
                    if max_events is not None and count >= max_events:
                        return count
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return count


def _has_events(batch: dict[Any, list[Any]]) -> bool:
    return any(not is_progress(r.headers) for records in batch.values() for r in records)

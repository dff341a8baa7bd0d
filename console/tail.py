"""Live tail: new events of the raw topic over Server-Sent Events, with the Events filters.

Each connection reads from the topic's end with its own assigned consumer (outside any group).
A fetch that brings more matches than ``MAX_PER_FETCH`` sends only the newest of them and says
how many it dropped, so a slow browser never makes the console buffer without bound. Pausing
is the browser's: it stops showing rows and counts the ones that arrive meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from aiokafka.errors import KafkaError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hookstream.kafka.reads import reader

from .events import EventFilter, events_of
from .present import event_summary

MAX_PER_FETCH = 100
KEEPALIVE_S = 15.0


def sse(event: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


async def tail_page(request: Request) -> Response:
    console = request.app.state.console
    wanted = EventFilter.from_query(request.query_params)
    query = wanted.as_query()
    data = {
        "filters": query,
        "stream_url": "/tail/stream?" + urlencode(query),
        "sources": sorted(console.config.sources),
    }
    return console.answer(request, "tail.html", data)


async def tail_stream(request: Request) -> Response:
    console = request.app.state.console
    wanted = EventFilter.from_query(request.query_params)
    row = console.templates.get_template("event_row.html")
    kafka = console.config.kafka

    async def stream() -> AsyncIterator[bytes]:
        tps = await console.browser.partitions(kafka.raw_topic)
        consumer = reader(kafka, "console-tail")
        try:
            await consumer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            yield sse("problem", f"cannot reach Kafka: {exc}")
            return
        try:
            if tps:
                consumer.assign(tps)
                await consumer.seek_to_end(*tps)
            yield sse("ready", "tailing")
            idle = 0.0
            while not await request.is_disconnected():
                if not tps:
                    await asyncio.sleep(1.0)
                    tps = await console.browser.partitions(kafka.raw_topic)
                    if tps:
                        consumer.assign(tps)
                        await consumer.seek_to_beginning(*tps)
                    continue
                batch = await consumer.getmany(timeout_ms=500)
                matched = []
                for records in batch.values():
                    for record, event in events_of(records):
                        if wanted.matches(event):
                            matched.append(
                                event_summary(event, record.partition, record.offset, record.timestamp)
                            )
                matched.sort(key=lambda e: (e["timestamp_ms"], e["offset"]))
                dropped = max(0, len(matched) - MAX_PER_FETCH)
                if dropped:
                    yield sse("dropped", str(dropped))
                for event in matched[dropped:]:
                    yield sse("event", row.render(e=event))
                idle = 0.0 if matched else idle + 0.5
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield b": keep-alive\n\n"
        finally:
            await consumer.stop()

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})


def routes() -> list[Route]:
    return [Route("/tail", tail_page), Route("/tail/stream", tail_stream)]

"""Integration helpers: a running ingest server, unique topics, reading a topic back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from hookstream.config import Config, KafkaConfig, parse_config
from hookstream.ingest.app import create_app
from hookstream.ingest.server import uvicorn_config
from hookstream.kafka.local_broker import free_port
from hookstream.kafka.reads import read_topic as read_all
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
    app = create_app(config, connect_timeout=30, **kwargs)
    server = uvicorn.Server(
        uvicorn_config(app, "127.0.0.1", config.ingest.port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("ingest did not start")
    try:
        yield f"http://127.0.0.1:{config.ingest.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


async def read_topic(bootstrap: str, topic: str, timeout: float = 30, *, markers: bool = False) -> list[Any]:
    """Every record now in ``topic``, read from the beginning up to the current end offsets;
    ingest's progress markers only with ``markers`` (they are not events)."""
    records = await read_all(KafkaConfig(bootstrap_servers=bootstrap), topic, timeout=timeout)
    return [r for r in records if markers or not is_progress(r.headers)]

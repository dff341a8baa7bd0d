"""Recording refused requests (``[sources.X] record_refused``) to ``kafka.refused_topic``.

Best-effort and off the request path: ``offer`` only decides (the source's mode, its sample
rate, its per-minute budget) and appends to a bounded queue; a background task builds the
records (headers masked, body cut) and sends them with a producer of its own, so the 4xx never
waits for Kafka and a slow or absent broker costs the refused requests nothing. What does not
fit the queue or the budget is counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hookstream.config import Config, SourceConfig
from hookstream.kafka.admin import Admin
from hookstream.kafka.errors import KafkaLayerError
from hookstream.schemas.refused import RETENTION_BYTES, RETENTION_MS, RefusedRequest, masked_headers

log = logging.getLogger("hookstream.ingest")

QUEUE_LIMIT = 1000
"""Refusals waiting to be sent; more are dropped (the newest kept)."""


class _Budget:
    """A token bucket: ``per_minute`` records, refilled continuously."""

    __slots__ = ("per_minute", "tokens", "at")

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.tokens = float(per_minute)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.per_minute, self.tokens + (now - self.at) * self.per_minute / 60)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class RefusalRecorder:
    def __init__(self, config: Config) -> None:
        self.kafka = config.kafka
        self.budgets = {
            name: _Budget(s.refused_per_minute)
            for name, s in config.sources.items()
            if s.record_refused != "off"
        }
        self.queue: deque[tuple[RefusedRequest, Sequence[tuple[str, str]]]] = deque(maxlen=QUEUE_LIMIT)
        self.dropped = 0
        """Refusals not recorded: over a source's budget, the queue full, or Kafka refusing them."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None

    @property
    def wanted(self) -> bool:
        return bool(self.budgets)

    def offer(
        self,
        source: SourceConfig,
        status: int,
        reason: str,
        detail: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        remote: str,
    ) -> None:
        """Queue this refusal if the source records it; never blocks, never raises."""
        budget = self.budgets.get(source.name)
        if budget is None:
            return
        if source.record_refused == "sampled" and random.random() >= source.refused_sample_rate:
            return
        if not budget.take():
            self.dropped += 1
            return
        if len(self.queue) == QUEUE_LIMIT:
            self.dropped += 1
        request = RefusedRequest(
            source.name,
            source.provider,
            status,
            reason,
            detail,
            int(time.time() * 1000),
            remote,
            [],
            body[: source.refused_body_bytes],
            len(body),
        )
        self.queue.append((request, headers))
        self._wake.set()

    async def start(self) -> None:
        if self.wanted:
            self._task = asyncio.create_task(self._run(), name="hookstream-refused")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer is not None:
            await self._producer.stop()

    async def _connect(self) -> AIOKafkaProducer:
        topic = self.kafka.refused_topic
        configs = {"retention.ms": str(RETENTION_MS), "retention.bytes": str(RETENTION_BYTES)}
        async with Admin(self.kafka, "refused", unreachable_is_error=True) as admin:
            await admin.create_missing_topics({topic: (1, configs)})
        producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            client_id=f"{self.kafka.client_id}-refused",
            linger_ms=50,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if self._producer is None:
                    self._producer = await self._connect()
                while self.queue:
                    request, headers = self.queue.popleft()
                    shown = RefusedRequest(**{**request.__dict__, "headers": masked_headers(headers)})
                    await self._producer.send(
                        self.kafka.refused_topic, shown.encode(), key=request.source.encode()
                    )
            except (KafkaError, KafkaLayerError, OSError) as exc:
                self.dropped += len(self.queue)
                self.queue.clear()
                log.warning("could not record refused requests", extra={"error": str(exc)})
                await asyncio.sleep(5)  # then try again with what is refused next

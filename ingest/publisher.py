"""Durable publishing to the raw topic with aiokafka.

One idempotent producer (acks=all) per process, with a few ms of linger and compression so
concurrent requests share batches. Each request awaits its own record's acknowledgement;
there is never a per-request flush. If Kafka does not acknowledge within the configured
timeout, ``publish`` raises PublishError and the request is answered 503: a 2xx is only ever
sent for an acknowledged record.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hookstream.config import KafkaConfig
from hookstream.errors import PublishError

log = logging.getLogger("hookstream.ingest")


async def ensure_topic(
    bootstrap: str, topic: str, partitions: int, replication: int, *, config: dict[str, str] | None = None
) -> None:
    """Create ``topic`` if it does not exist. An existing topic with another partition count is an error."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="hookstream-admin")
    await admin.start()
    try:
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        num_partitions=partitions,
                        replication_factor=replication,
                        topic_configs=config or {},
                    )
                ]
            )
            log.info("created topic", extra={"topic": topic, "partitions": partitions})
        except TopicAlreadyExistsError:
            pass
        described = await admin.describe_topics([topic])
        existing = len(described[0]["partitions"]) if described else partitions
        if existing != partitions:
            raise PublishError(
                f"topic {topic} has {existing} partitions but the config says {partitions}; "
                "the dedupe table is co-partitioned with it, so the counts must match"
            )
    finally:
        await admin.close()


class Publisher:
    """Owns the producer. ``start`` keeps retrying in the background until Kafka answers."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._producer: AIOKafkaProducer | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def _make_producer(self) -> AIOKafkaProducer:
        c = self.config
        timeout_ms = int(c.publish_timeout_seconds * 1000)
        return AIOKafkaProducer(
            bootstrap_servers=c.bootstrap_servers,
            client_id=f"{c.client_id}-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=c.linger_ms,
            compression_type=None if c.compression == "none" else c.compression,
            # Keep retrying a batch for as long as a request might still be waiting, and a bit.
            request_timeout_ms=max(timeout_ms, 5000),
            retry_backoff_ms=100,
            max_batch_size=256 * 1024,
        )

    async def start(self) -> None:
        """Begin connecting; returns at once. ``ready`` turns true once Kafka answered."""
        self._connect_task = asyncio.create_task(self._connect_loop(), name="hookstream-kafka-connect")

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _connect_loop(self) -> None:
        delay = 0.5
        while not self._closing:
            producer = self._make_producer()
            try:
                await ensure_topic(
                    self.config.bootstrap_servers,
                    self.config.raw_topic,
                    self.config.partitions,
                    self.config.replication_factor,
                )
                await producer.start()
            except PublishError as exc:
                log.error("cannot publish: %s", exc)
                await producer.stop()
                return
            except (KafkaError, OSError) as exc:
                await producer.stop()
                log.warning(
                    "Kafka not reachable yet; retrying",
                    extra={
                        "bootstrap_servers": self.config.bootstrap_servers,
                        "error": str(exc),
                        "retry_in_s": delay,
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            self._producer = producer
            self._ready.set()
            log.info("producer connected", extra={"bootstrap_servers": self.config.bootstrap_servers})
            return

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> float:
        """Send one record and wait for its acknowledgement; returns the seconds it took."""
        producer = self._producer
        if producer is None:
            raise PublishError("not connected to Kafka yet")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.publish_timeout_seconds):
                delivery = await producer.send(self.config.raw_topic, value=value, key=key, headers=headers)
                await asyncio.shield(delivery)
        except TimeoutError:
            raise PublishError(
                f"Kafka did not acknowledge within {self.config.publish_timeout_seconds:g} s"
            ) from None
        except KafkaError as exc:
            raise PublishError(f"Kafka refused the record: {exc}") from None
        return time.perf_counter() - started

    async def stop(self) -> None:
        """Flush what is buffered and close."""
        self._closing = True
        if self._connect_task and not self._connect_task.done():
            self._connect_task.cancel()
            try:
                await self._connect_task
            except asyncio.CancelledError:
                pass
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        self._ready.clear()

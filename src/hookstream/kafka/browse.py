"""Random access to topics for a long-running reader (the console): one started consumer, kept
between requests, so that a page read costs fetches and no new connection or group join.

Every read is a bounded ``read_range`` over windows the caller names; a lock serialises them,
because each one assigns the consumer anew.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import Admin, unreachable
from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.reads import read_range, reader

PARTITIONS_TTL_S = 10.0
"""How long a topic's partition list is reused: partitions are added rarely, pages are many."""


class TopicBrowser:
    """``async with TopicBrowser(kafka, purpose)``: bounds of partitions and windows of records."""

    def __init__(self, kafka: KafkaConfig, purpose: str) -> None:
        self.kafka = kafka
        self.purpose = purpose
        self.consumer = reader(kafka, purpose)
        self._lock = asyncio.Lock()
        self._partitions: dict[str, tuple[float, list[TopicPartition]]] = {}

    async def __aenter__(self) -> TopicBrowser:
        try:
            await self.consumer.start()
        except (KafkaError, OSError) as exc:
            await self.consumer.stop()
            raise KafkaLayerError(unreachable(self.kafka.bootstrap_servers, exc)) from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of ``topic``; none while it does not exist (it is never created by asking)."""
        cached = self._partitions.get(topic)
        if cached and time.monotonic() - cached[0] < PARTITIONS_TTL_S:
            return cached[1]
        async with Admin(self.kafka, self.purpose, unreachable_is_error=True) as admin:
            tps = await admin.partitions(topic, 0, missing_ok=True)
        if tps:
            self._partitions[topic] = (time.monotonic(), tps)
        return tps

    async def bounds(
        self, tps: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """First and end offsets of each partition."""
        if not tps:
            return {}, {}
        async with self._lock:
            return await self.consumer.beginning_offsets(tps), await self.consumer.end_offsets(tps)

    async def offsets_for_time(self, tps: list[TopicPartition], ms: int) -> dict[TopicPartition, int | None]:
        """Each partition's first offset with a timestamp at or after ``ms`` (None: there is none)."""
        async with self._lock:
            found = await self.consumer.offsets_for_times(dict.fromkeys(tps, ms))
        return {tp: (found[tp].offset if found.get(tp) else None) for tp in tps}

    async def read(
        self, windows: Mapping[TopicPartition, tuple[int, int]], *, timeout: float = 10.0
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """The records at ``start <= offset < end`` of each window, in offset order."""
        out: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in windows}
        wanted = {tp: w for tp, w in windows.items() if w[0] < w[1]}
        if not wanted:
            return out

        async def collect(record: ConsumerRecord) -> None:
            out[TopicPartition(record.topic, record.partition)].append(record)

        async with self._lock:
            starts = {tp: w[0] for tp, w in wanted.items()}
            ends = {tp: w[1] for tp, w in wanted.items()}
            try:
                await asyncio.wait_for(read_range(self.consumer, starts, ends, collect), timeout)
            except TimeoutError:
                raise KafkaLayerError(
                    f"could not read {len(wanted)} partition window(s) in {timeout:g} s"
                ) from None
        return out

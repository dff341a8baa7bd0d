"""Producing many records at once: one record batch per partition, through aiokafka's batch API.

aiokafka's ``send`` costs a coroutine, a future and a trip through its accumulator for every
record. A stage that forwards hundreds of records at a time spent most of its producing there;
building the batches here (``create_batch``, ``send_batch``) keeps the cost per record to an
append. Records are placed as aiokafka's and Java's default partitioners place them (murmur2 of
the key), so a topic's layout does not depend on which client wrote it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from murmurhash2 import murmurhash2

MURMUR2_SEED = 0x9747B28C
"""The seed of Kafka's murmur2 partitioner (Java's ``Utils.murmur2``, aiokafka's ``murmur2``)."""
BATCH_BYTES = 256 * 1024
"""A batch is handed over once it holds this much (or half the topic's record limit, if less:
see ``batch_bytes``); a larger single record travels alone."""

Headers = Sequence[tuple[str, bytes]]
OutRecord = tuple[bytes | None, bytes | None, Headers, int | None]
"""key, value, headers, and the partition (None: the key's, as the default partitioner places it)."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``, as Kafka's default partitioner places it."""
    return (murmurhash2(key, MURMUR2_SEED) & 0x7FFFFFFF) % partitions


def batch_bytes(record_limit: int) -> int:
    """How full a batch may get before it is handed over: the broker refuses a whole batch
    larger than the topic's limit once compressed, so it stays at half of it, which even
    incompressible records under snappy's growth fit (``message_size.compressed_bound``)."""
    return min(BATCH_BYTES, record_limit // 2)


class BatchSender:
    """Sends lists of records through ``producer``, which must be started, and whose
    ``max_batch_size`` is ``batch_bytes`` of the smallest record limit among the topics it writes.

    Per partition, the records of one ``send`` keep their order, and those of two ``send`` calls
    are not interleaved: their batches are handed to aiokafka one call after the other, and
    aiokafka keeps a partition's batches in order.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def send(self, topic: str, records: Iterable[OutRecord]) -> list[asyncio.Future[Any]]:
        """Hand ``records`` to the producer; returns one future per batch, done once the broker
        acknowledged it (or failed with its error, e.g. MessageSizeTooLargeError)."""
        batches: dict[int, list[Any]] = {}
        count = 0
        for key, value, headers, partition in records:
            if partition is None:
                if not count:
                    count = len(await self.producer.partitions_for(topic))
                partition = partition_of(key or b"", count)
            chain = batches.get(partition)
            if chain is None:
                chain = batches[partition] = [self.producer.create_batch()]
            if chain[-1].append(key=key, value=value, timestamp=None, headers=headers) is None:
                chain.append(self.producer.create_batch())
                chain[-1].append(key=key, value=value, timestamp=None, headers=headers)  # first always fits
        if not batches:
            return []
        submitted = await asyncio.gather(*(self._submit(topic, p, chain) for p, chain in batches.items()))
        return [delivery for deliveries in submitted for delivery in deliveries]

    async def _submit(self, topic: str, partition: int, chain: list[Any]) -> list[asyncio.Future[Any]]:
        lock = self._locks.get((topic, partition))
        if lock is None:
            lock = self._locks[(topic, partition)] = asyncio.Lock()
        deliveries = []
        async with lock:  # asyncio locks are FIFO: a partition's batches keep the order of the calls
            for batch in chain:
                batch.close()
                deliveries.append(await self.producer.send_batch(batch, topic, partition=partition))
        return deliveries

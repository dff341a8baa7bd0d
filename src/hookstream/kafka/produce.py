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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Sent:
    """One batch handed to the producer."""

    partition: int
    records: int
    delivery: asyncio.Future[Any]
    """Done once the broker acknowledged the batch (its result's ``offset`` is the batch's first),
    or failed with the broker's error, e.g. MessageSizeTooLargeError."""


async def delivered(sent: Iterable[Sent]) -> list[Any]:
    """Wait until every batch of ``sent`` is acknowledged; raises the first failure."""
    return await asyncio.gather(*(s.delivery for s in sent))


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

    async def send(self, topic: str, records: Iterable[OutRecord]) -> list[Sent]:
        """Hand ``records`` to the producer, in as few batches as their sizes allow."""
        chains: dict[int, list[list[Any]]] = {}  # partition -> [[builder, record count], …]
        count = 0
        for key, value, headers, partition in records:
            if partition is None:
                if not count:
                    count = len(await self.producer.partitions_for(topic))
                partition = partition_of(key or b"", count)
            chain = chains.get(partition)
            if chain is None:
                chain = chains[partition] = [[self.producer.create_batch(), 0]]
            last = chain[-1]
            if last[0].append(key=key, value=value, timestamp=None, headers=headers) is None:
                last = [self.producer.create_batch(), 0]
                chain.append(last)
                last[0].append(key=key, value=value, timestamp=None, headers=headers)  # first always fits
            last[1] += 1
        if not chains:
            return []
        submitted = await asyncio.gather(*(self._submit(topic, p, chain) for p, chain in chains.items()))
        return [sent for batches in submitted for sent in batches]

    async def _submit(self, topic: str, partition: int, chain: list[list[Any]]) -> list[Sent]:
        lock = self._locks.get((topic, partition))
        if lock is None:
            lock = self._locks[(topic, partition)] = asyncio.Lock()
        sent = []
        async with lock:  # asyncio locks are FIFO: a partition's batches keep the order of the calls
            for builder, records in chain:
                builder.close()
                delivery = await self.producer.send_batch(builder, topic, partition=partition)
                sent.append(Sent(partition, records, delivery))
        return sent

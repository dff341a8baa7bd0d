"""ingest's partitioner places every key where Kafka's default partitioner does."""

from __future__ import annotations

import random
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from hookstream.ingest import partitioner
from hookstream.ingest.partitioner import murmur2, partition_of

# The Java client's own expectations (clients/src/test/.../common/utils/UtilsTest.java, testMurmur2).
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("data", list(JAVA), ids=[k.decode() for k in JAVA])
def test_murmur2_gives_the_java_clients_values(data):
    signed = murmur2(data) - (1 << 32) if murmur2(data) >= 1 << 31 else murmur2(data)
    assert signed == JAVA[data]


def test_murmur2_agrees_with_aiokafka_for_every_length():
    rng = random.Random(7)
    for length in range(0, 300):
        for _ in range(10):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), (length, data)
    # Keys come from senders: hashing keys of many lengths keeps nothing per length.
    assert len(partitioner._WORDS) == 65


def test_partition_of_agrees_with_aiokafkas_default_partitioner():
    rng = random.Random(11)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(500)]
    keys += [f"evt_{rng.getrandbits(64):x}".encode() for _ in range(500)] + [b"", b"\xff" * 7]
    for count in (1, 3, 8, 12, 64):
        partitions = list(range(count))
        for key in keys:
            assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert len({partition_of(k, list(range(8))) for k in keys}) == 8

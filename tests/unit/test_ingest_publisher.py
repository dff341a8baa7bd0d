"""The publisher's pure decisions (its behaviour against Kafka is in tests/integration)."""

from __future__ import annotations

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner

from hookstream.config import KafkaConfig
from hookstream.ingest.publisher import REPLACE_QUIET_S, Publisher, replace_delay


def test_a_producer_replaced_again_soon_waits_longer_each_time():
    assert replace_delay(0.0, float("inf")) == 0.0  # the first in a while: at once
    delays, delay = [], 0.0
    for _ in range(7):
        delay = replace_delay(delay, since_previous=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert replace_delay(10.0, since_previous=REPLACE_QUIET_S) == 0.0  # quiet for a minute: reset


def test_records_go_to_the_partition_kafkas_default_partitioner_picks():
    # aiokafka's DefaultPartitioner (murmur2 as in Java's client) is the oracle: a consumer, a
    # replay tool or a Java producer must find an event id's records where ingest put them.
    rng = random.Random(7)
    keys = [b"", b"a", b"ab", b"abc", b"abcd", "événement".encode()]
    keys += [rng.randbytes(rng.randrange(1, 80)) for _ in range(3000)]
    keys += [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(1000)]
    for count in (1, 3, 6, 12, 64):
        publisher = Publisher(KafkaConfig())
        publisher._partitions = list(range(count))
        oracle = DefaultPartitioner()
        placed = [publisher.partition_for(key) for key in keys]
        assert placed == [oracle(key, publisher._partitions, publisher._partitions) for key in keys]
        assert len(set(placed)) == count  # and they do spread


# The Java client's own expectations (clients/src/test/.../common/utils/UtilsTest.java, testMurmur2),
# as signed 32-bit ints: Java's partitioner takes ``murmur2(key) & 0x7fffffff`` of them.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_records_go_to_the_partition_the_java_client_picks():
    publisher = Publisher(KafkaConfig())
    publisher._partitions = list(range(1000))
    for key, java in JAVA_MURMUR2.items():
        assert publisher.partition_for(key) == (java & 0x7FFFFFFF) % 1000, key

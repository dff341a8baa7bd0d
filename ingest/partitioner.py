"""Kafka's default partitioner for keyed records: murmur2 of the key, as the Java client does.

aiokafka ships the same function in pure Python, written as a line-by-line port of the Java
code; ingest calls it once per request, and for the ids providers send (a UUID is 36 bytes)
it cost ~7.5 µs a call. This one reads the key four bytes at a time with one ``struct`` call
and keeps the arithmetic to what 32-bit wrap-around needs: about half the time, and the same
results (tests check it against aiokafka's and against the Java client's own test values).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, Callable[[bytes], tuple[int, ...]]] = {
    n: struct.Struct(f"<{n}I").unpack_from for n in range(65)
}
"""Unpackers of ``n`` little-endian 32-bit words, for keys up to 256 bytes (made once: the keys
come from senders, so their lengths are not ours to bound)."""


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as an unsigned 32-bit int."""
    length = len(data)
    h = _SEED ^ length
    n = length >> 2
    words = _WORDS.get(n)
    for k in words(data) if words else struct.unpack_from(f"<{n}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    if length & 3:  # the last one to three bytes, little-endian, as Java's switch fall-through
        h = ((h ^ int.from_bytes(data[n << 2 :], "little")) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """Where Kafka's default partitioner puts a record with ``key`` (``partitions``: all of the
    topic's, sorted by id)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]

"""``compressed_bound`` holds for what the codecs the producers use really write."""

from __future__ import annotations

import os

import pytest
from aiokafka import codec

from hookstream.kafka.message_size import compressed_bound
from hookstream.kafka.produce import BATCH_BYTES, batch_bytes

ENCODERS = {
    "gzip": codec.gzip_encode,
    "lz4": codec.lz4_encode,
    "zstd": codec.zstd_encode,
    "snappy": codec.snappy_encode,  # xerial framing, as aiokafka sends it
}


@pytest.mark.parametrize("compression", sorted(ENCODERS))
def test_incompressible_data_never_compresses_past_the_bound(compression):
    encode = ENCODERS[compression]
    for size in (0, 1, 100, 4_095, 16_384, 65_537, 300_000, 1_100_000):
        data = os.urandom(size)  # the worst case: nothing to find
        assert len(encode(data)) <= compressed_bound(size, compression), (compression, size)
    assert compressed_bound(1000, "none") == 1000


def test_a_batch_at_its_fill_limit_fits_the_topic_under_every_codec():
    for limit in (131_072, 200_000, 524_288, 2_097_152):
        fill = batch_bytes(limit)
        assert fill <= BATCH_BYTES
        for compression in (*ENCODERS, "none"):
            assert compressed_bound(fill, compression) <= limit, (limit, compression)

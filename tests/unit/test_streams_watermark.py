"""Watermarks and in-order acks without a broker."""

from __future__ import annotations

import pytest

from hookstream.streams.acks import InOrderAcks
from hookstream.streams.watermark import (
    KIND_HEADER,
    RawProgress,
    decode_watermarks,
    encode_watermarks,
    is_watermark,
    watermark_headers,
)


def test_watermark_records_round_trip_and_are_told_apart_by_their_header():
    marks = {0: 1_700_000_000_000, 7: 1_700_000_000_123}
    assert decode_watermarks(encode_watermarks(marks)) == marks
    assert decode_watermarks(encode_watermarks({})) == {}
    assert is_watermark(watermark_headers())
    assert is_watermark(dict(watermark_headers()))
    assert not is_watermark([("hookstream-schema", b"123")])
    assert not is_watermark([(KIND_HEADER, b"something-else")])


@pytest.mark.parametrize(
    "value",
    [None, b"", b"not json", b"[]", b"null", b"{}", b'{"watermarks": []}', b'{"watermarks": {"x": 1}}'],
)
def test_anything_but_a_watermark_value_is_a_value_error(value):
    # The sequence stage skips a record that raises ValueError; any other error would fail its
    # batch, and the record, read again after every restart, would stop the worker for good.
    with pytest.raises(ValueError, match="not a watermark value"):
        decode_watermarks(value)
    assert not is_watermark(None)


def test_progress_follows_the_largest_received_at_processed_minus_the_lag():
    progress = RawProgress(lag_ms=100)
    assert progress.watermarks([0, 1]) == {}
    progress.processed(0, offset=0, received_ms=1_000)
    progress.processed(0, offset=1, received_ms=900)  # a little out of order: never goes back
    progress.processed(1, offset=5, received_ms=None)  # undecodable: position only
    assert progress.watermarks([0, 1]) == {0: 900}
    assert progress.watermarks([1]) == {}  # only partitions asked about (the ones we own)


def test_an_idle_partition_advances_only_once_everything_up_to_its_end_was_processed():
    progress = RawProgress(lag_ms=100)
    assert not progress.caught_up(0, end_offset=0, as_of_ms=5_000)  # position unknown yet
    progress.starts_at(0, 10)  # committed offset: nothing of ours processed yet
    assert not progress.caught_up(0, end_offset=12, as_of_ms=5_000)  # 10 and 11 are still to come
    assert progress.watermarks([0]) == {}
    progress.processed(0, offset=10, received_ms=1_000)
    progress.processed(0, offset=11, received_ms=1_100)
    assert progress.caught_up(0, end_offset=12, as_of_ms=5_000)
    assert progress.watermarks([0]) == {0: 4_900}
    progress.starts_at(0, 3)  # a late answer about an older position never moves it back
    assert progress.caught_up(0, end_offset=12, as_of_ms=6_000)


def test_a_rebalance_forgets_positions_since_partitions_are_read_again():
    progress = RawProgress(lag_ms=0)
    progress.processed(0, offset=4, received_ms=100)
    progress.forget()
    assert not progress.knows_position(0)
    assert progress.watermarks([0]) == {}


def test_messages_are_acked_only_as_an_in_order_prefix():
    acked: list[str] = []
    acks = InOrderAcks(acked.append)
    for offset in (10, 11, 12, 13):
        acks.track(offset, f"m{offset}")
    assert acks.done(11) == 0  # 10 (say, a buffered event) still holds the line
    assert acks.done(13) == 0
    assert acked == []
    assert acks.done(10) == 2
    assert acked == ["m10", "m11"]
    assert acks.done(12) == 2
    assert acked == ["m10", "m11", "m12", "m13"] and len(acks) == 0
    assert acks.done(99) == 0  # unknown (e.g. from before a rebalance): ignored
    acks.track(20, "m20")
    with pytest.raises(ValueError):
        acks.track(19, "m19")  # a partition's messages arrive in offset order, or something is wrong

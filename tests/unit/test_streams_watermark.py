"""Watermarks and in-order acks without a broker."""

from __future__ import annotations

import pytest

from hookstream.schemas.progress import (
    Progress,
    decode_progress,
    encode_progress,
    is_progress,
    progress_headers,
)
from hookstream.streams.watermark import (
    KIND_HEADER,
    RawProgress,
    decode_watermarks,
    encode_watermarks,
    is_watermark,
    watermark_headers,
)

NOW = 10**12
"""The worker's wall clock in the tests that do not involve ingest's progress markers."""


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
    assert progress.watermarks([0, 1], NOW) == {}
    progress.processed(0, offset=0, received_ms=1_000)
    progress.processed(0, offset=1, received_ms=900)  # a little out of order: never goes back
    progress.processed(1, offset=5, received_ms=None)  # undecodable: position only
    assert progress.watermarks([0, 1], NOW) == {0: 900}
    assert progress.watermarks([1], NOW) == {}  # only partitions asked about (the ones we own)


def test_an_idle_partition_advances_only_once_everything_up_to_its_end_was_processed():
    progress = RawProgress(lag_ms=100)
    assert not progress.caught_up(0, end_offset=0, as_of_ms=5_000)  # position unknown yet
    progress.starts_at(0, 10)  # committed offset: nothing of ours processed yet
    assert not progress.caught_up(0, end_offset=12, as_of_ms=5_000)  # 10 and 11 are still to come
    assert progress.watermarks([0], NOW) == {}
    progress.processed(0, offset=10, received_ms=1_000)
    progress.processed(0, offset=11, received_ms=1_100)
    assert progress.caught_up(0, end_offset=12, as_of_ms=5_000)
    assert progress.watermarks([0], NOW) == {0: 4_900}
    progress.starts_at(0, 3)  # a late answer about an older position never moves it back
    assert progress.caught_up(0, end_offset=12, as_of_ms=6_000)


def test_a_rebalance_forgets_positions_since_partitions_are_read_again():
    progress = RawProgress(lag_ms=0)
    progress.processed(0, offset=4, received_ms=100)
    progress.forget()
    assert not progress.knows_position(0)
    assert progress.watermarks([0], NOW) == {}


def test_progress_markers_round_trip_and_anything_else_is_refused():
    for mark in (Progress("a1", 1_700_000_000_000), Progress("a1", None)):
        assert decode_progress(encode_progress(mark)) == mark
    assert is_progress(progress_headers()) and not is_progress(watermark_headers())
    for bad in (b"", b"[]", b'{"before": 5}', b'{"instance": 3, "before": 5}', b'{"instance": "a"}'):
        with pytest.raises(ValueError):
            decode_progress(bad)


def test_with_live_ingest_markers_a_partition_is_as_far_as_its_slowest_ingest_process_says():
    progress = RawProgress(lag_ms=1_000, idle_ms=500)
    progress.processed(0, offset=0, received_ms=5_000)
    progress.ingest_progress(0, Progress("a", 5_200))
    progress.ingest_progress(0, Progress("b", 5_100))
    assert progress.watermarks([0], now_ms=5_300) == {0: 5_100}  # no lag guessed
    progress.ingest_progress(0, Progress("b", 5_050))  # a marker never moves an instance back
    assert progress.watermarks([0], now_ms=5_300) == {0: 5_100}
    progress.ingest_progress(0, Progress("a", 5_700))
    # b stopped marking: 600 ms behind the newest, past idle_ms, it holds nothing back.
    assert progress.watermarks([0], now_ms=5_750) == {0: 5_700}


def test_an_ingest_process_that_leaves_holds_nothing_back():
    progress = RawProgress(lag_ms=1_000, idle_ms=500)
    progress.ingest_progress(0, Progress("a", 5_000))
    progress.ingest_progress(0, Progress("b", 4_000))
    progress.ingest_progress(0, Progress("b", None))
    assert progress.watermarks([0], now_ms=5_100) == {0: 5_000}


def test_without_recent_markers_the_partition_falls_back_to_the_lag_guess():
    progress = RawProgress(lag_ms=1_000, idle_ms=500)
    progress.processed(0, offset=0, received_ms=3_000)
    progress.ingest_progress(0, Progress("a", 3_100))
    # The newest marker is 2 s old by this worker's clock: ingest stopped, or this is a backlog.
    assert progress.watermarks([0], now_ms=5_100) == {0: 2_000}
    progress.forget()
    assert progress.watermarks([0], now_ms=3_200) == {}

"""The dead-letter format: the original record byte-exact, plus hookstream-dlq-* headers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hookstream.consumers.dlq import PREFIX, dead_letter_of, dlq_topic, parse_dead_letter


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: list


def test_a_dead_letter_round_trips_through_record_headers():
    original = Record(
        "hookstream.events",
        3,
        1200,
        1_700_000_000_123,
        b"pi_1",
        b"\x00avro\xff",
        [("hookstream-schema", b"abc")],
    )
    letter = dead_letter_of(
        original,
        consumer="fulfil",
        error=ValueError("line one\n  line two"),
        attempts=5,
        permanent=False,
        event_id="evt_1",
        delivery="live",
        now_ms=1_700_000_009_000,
    )
    headers = letter.headers()
    assert headers[0] == ("hookstream-schema", b"abc")  # the original's own headers are kept
    names = dict(headers)
    assert names[PREFIX + "error"] == b"line one line two"  # one line
    assert names[PREFIX + "attempts"] == b"5" and names[PREFIX + "offset"] == b"1200"

    stored = Record(dlq_topic("fulfil"), 0, 7, 0, letter.key, letter.value, headers)
    back = parse_dead_letter(stored)
    assert back.value == original.value and back.key == original.key
    assert (back.topic, back.partition, back.offset, back.timestamp_ms) == (
        "hookstream.events",
        3,
        1200,
        1_700_000_000_123,
    )
    assert (back.error, back.error_type, back.attempts, back.permanent) == (
        "line one line two",
        "ValueError",
        5,
        False,
    )
    assert (back.dlq_partition, back.dlq_offset, back.failed_at_ms) == (0, 7, 1_700_000_009_000)
    assert back.original_headers == (("hookstream-schema", b"abc"),)
    assert back.summary()["original"] == "hookstream.events/3:1200"
    # Dead-lettering a dead letter again (a failed redrive) does not stack old headers.
    again = dead_letter_of(
        stored,
        consumer="fulfil",
        error=ValueError("x"),
        attempts=1,
        permanent=True,
        event_id="evt_1",
        delivery="redrive",
    )
    assert sum(1 for k, _ in again.headers() if k == PREFIX + "error") == 1


def test_long_errors_are_cut_and_foreign_records_are_refused():
    record = Record("t", 0, 0, 0, None, b"", [])
    letter = dead_letter_of(
        record,
        consumer="c",
        error=RuntimeError("x" * 5000),
        attempts=1,
        permanent=True,
        event_id="",
        delivery="live",
    )
    assert len(letter.error) == 2000 and letter.error.endswith("…")
    assert (
        dead_letter_of(
            record,
            consumer="c",
            error=TimeoutError(),
            attempts=1,
            permanent=False,
            event_id="",
            delivery="live",
        ).error
        == "TimeoutError"
    )
    with pytest.raises(ValueError, match="not a hookstream dead letter"):
        parse_dead_letter(Record("t", 0, 0, 0, None, b"", [("other", b"1")]))

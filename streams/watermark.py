"""Watermarks: how far dedupe has read each raw partition, told to every sequencer.

A watermark ``T`` for raw partition ``p`` says: every record of ``p`` received before ``T`` has
been forwarded (and acknowledged) to the repartition topic. A worker derives it for each raw
partition it owns from two facts:

* the largest ``received_at`` it has processed there (records of one partition arrive roughly
  in received order), and
* when it has processed everything up to the partition's end offset as of time ``t``, that
  nothing received before ``t`` is still to come: an idle partition keeps advancing, so it
  cannot hold the sequencer back until ``max_wait_ms``.

Both trail by ``lag_ms``, the time a record may take from ingest's clock to the raw topic. A
record that lands later than that is not lost: if a newer event of its key was released in the
meantime, it is published with ``late=True``.

Watermark records travel on the repartition topic next to the data, with no key, one to each
partition, marked by the ``hookstream-kind: watermark`` header; the value is JSON
``{"watermarks": {"<raw partition>": <ms>}}``. A worker that owns no raw partition still sends
them (empty): they are also the sequencer's clock tick for ``max_wait_ms``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from hookstream.schemas.envelope import RecordHeaders, header_pairs

KIND_HEADER = "hookstream-kind"
WATERMARK_KIND = b"watermark"


def encode_watermarks(marks: Mapping[int, int]) -> bytes:
    return json.dumps({"watermarks": {str(p): ms for p, ms in sorted(marks.items())}}).encode()


def decode_watermarks(data: bytes | None) -> dict[int, int]:
    """``{raw partition: ms}``; ValueError for anything that is not a watermark record's value
    (the caller skips such a record: read again on every restart, it must not stop the worker)."""
    try:
        body = json.loads(data or b"")
        return {int(p): int(ms) for p, ms in body["watermarks"].items()}
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"not a watermark value ({type(exc).__name__}: {exc})") from None


def is_watermark(headers: RecordHeaders) -> bool:
    return any(name == KIND_HEADER and value == WATERMARK_KIND for name, value in header_pairs(headers))


def watermark_headers() -> list[tuple[str, bytes]]:
    return [(KIND_HEADER, WATERMARK_KIND)]


class RawProgress:
    """What one worker knows about the raw partitions it owns. Pure: times are passed in."""

    def __init__(self, lag_ms: int) -> None:
        self.lag_ms = lag_ms
        self._next_offset: dict[int, int] = {}
        self._progress: dict[int, int] = {}

    def processed(self, partition: int, offset: int, received_ms: int | None) -> None:
        """A record was handled (forwarded and acknowledged, or dropped as a duplicate)."""
        self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)
        if received_ms is not None:
            self._advance(partition, received_ms)

    def handled(self, partition: int, offset: int) -> bool:
        """Whether a record at ``offset`` was handled already (or precedes where reading resumed)."""
        return offset < self._next_offset.get(partition, 0)

    def knows_position(self, partition: int) -> bool:
        return partition in self._next_offset

    def starts_at(self, partition: int, offset: int) -> None:
        """Where reading resumed (the committed offset) before any record was handled."""
        self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset)

    def caught_up(self, partition: int, end_offset: int, as_of_ms: int) -> bool:
        """``end_offset`` was the partition's end when asked at ``as_of_ms`` (taken *before* asking)."""
        position = self._next_offset.get(partition)
        if position is None or position < end_offset:
            return False
        self._advance(partition, as_of_ms)
        return True

    def watermarks(self, partitions: Iterable[int]) -> dict[int, int]:
        return {p: self._progress[p] - self.lag_ms for p in partitions if p in self._progress}

    def forget(self) -> None:
        """After a rebalance: partitions are read again from their committed offsets."""
        self._next_offset.clear()
        self._progress.clear()

    def _advance(self, partition: int, ms: int) -> None:
        if ms > self._progress.get(partition, ms - 1):
            self._progress[partition] = ms

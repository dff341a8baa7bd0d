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

That is a guess. Where ingest writes progress markers (``schemas/progress``), a raw partition's
watermark is instead what they say, no guess: the lowest ``before`` of the ingest processes
heard from within ``idle_ms`` of the newest marker there. One that stops marking (it died, or
cannot reach Kafka) holds the partition back for ``idle_ms`` at most; one that stops cleanly
says so and holds nothing back. Markers and ``received_at`` come from ingest's clocks: several
ingest processes whose clocks differ by ``d`` order their events by their own clocks, and an
event of the one ahead waits up to ``d`` longer. The markers are taken as live while the newest
is within ``idle_ms`` of this worker's clock (so clocks must agree far better than that); when
they are not (ingest stopped, or a backlog is being worked off), the guess above applies.

Watermark records travel on the repartition topic next to the data, with no key, one to each
partition, marked by the ``hookstream-kind: watermark`` header; the value is JSON
``{"watermarks": {"<raw partition>": <ms>}}``. A worker that owns no raw partition still sends
them (empty): they are also the sequencer's clock tick for ``max_wait_ms``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from hookstream.schemas.envelope import RecordHeaders
from hookstream.schemas.progress import KIND_HEADER, Progress, has_kind

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
    return has_kind(headers, WATERMARK_KIND)


def watermark_headers() -> list[tuple[str, bytes]]:
    return [(KIND_HEADER, WATERMARK_KIND)]


class RawProgress:
    """What one worker knows about the raw partitions it owns. Pure: times are passed in."""

    def __init__(self, lag_ms: int, idle_ms: int = 1000) -> None:
        self.lag_ms = lag_ms
        self.idle_ms = idle_ms
        self._next_offset: dict[int, int] = {}
        self._progress: dict[int, int] = {}
        self._ingest: dict[int, dict[str, int]] = {}  # partition -> ingest instance -> before ms

    def ingest_progress(self, partition: int, progress: Progress) -> None:
        """A progress marker of ``partition`` was handled (everything before it was forwarded)."""
        instances = self._ingest.setdefault(partition, {})
        if progress.before_ms is None:
            instances.pop(progress.instance, None)
            return
        instances[progress.instance] = max(progress.before_ms, instances.get(progress.instance, 0))
        newest = max(instances.values())
        for gone in [i for i, ms in instances.items() if newest - ms > 60 * self.idle_ms]:
            del instances[gone]

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

    def marked(self, partition: int, now_ms: int) -> int | None:
        """What live ingest markers say of ``partition``; None when there are none (then the
        guess applies, which needs the partition's end offset)."""
        instances = self._ingest.get(partition)
        if not instances:
            return None
        newest = max(instances.values())
        if now_ms - newest > self.idle_ms:
            return None
        return min(ms for ms in instances.values() if newest - ms <= self.idle_ms)

    def watermarks(self, partitions: Iterable[int], now_ms: int) -> dict[int, int]:
        marks = {}
        for p in partitions:
            marked = self.marked(p, now_ms)
            if marked is not None:
                marks[p] = marked
            elif p in self._progress:
                marks[p] = self._progress[p] - self.lag_ms
        return marks

    def forget(self) -> None:
        """After a rebalance: partitions are read again from their committed offsets."""
        self._next_offset.clear()
        self._progress.clear()
        self._ingest.clear()

    def _advance(self, partition: int, ms: int) -> None:
        if ms > self._progress.get(partition, ms - 1):
            self._progress[partition] = ms

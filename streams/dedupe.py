"""Dedupe: the first sighting of an event id moves on, later copies are counted and dropped.

The raw topic is keyed by event id, so every copy of one event lands in one partition and
one dedupe task, and only that task's table partition must know the id.

Seen ids live in a tumbling-windowed table, window ``W = ttl``: an id counts as seen when it
was marked in the window of the current record's timestamp or in the window before it. So an
id is remembered for at least ``ttl`` and at most ``2 * ttl``. A window's ids are deleted
``2 * W`` after it closed (``expires``), and its changelog topic has the same retention, so
the table and its changelog hold at most about ``3 * ttl`` worth of ids, never more.

The order of operations is the point of this module's contract: forward a first sighting,
**await the broker's acknowledgement, then mark it seen** (``split`` then ``confirm``).
Marked first, an event whose forward was lost in a crash would be dropped as a "duplicate"
when the raw record is read again. This way a crash can at worst forward an event twice,
which the sequencer and the consumers absorb.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


def window_start(at: float, size: float) -> float:
    """Start of the tumbling window of ``size`` seconds holding ``at`` (faust's arithmetic)."""
    return math.floor(at / size) * size


@dataclass(frozen=True)
class Sighting:
    """One raw record: its event id, its timestamp (seconds) and an opaque handle for the shell."""

    event_id: str
    at: float
    ref: Any = field(default=None, compare=False)


class SeenIds(Protocol):
    """Where seen ids live: the faust windowed table in the worker, a dict in tests."""

    def seen(self, sighting: Sighting) -> bool:
        """Marked in the window of ``sighting.at`` or the window before it."""
        ...

    def mark(self, sighting: Sighting) -> None:
        """Mark in the window of ``sighting.at``."""
        ...


@dataclass(frozen=True)
class Split:
    first: list[Sighting]
    duplicates: list[Sighting]


class Deduper:
    """The decision, over a batch of records read from one or more raw partitions."""

    def __init__(self, seen: SeenIds) -> None:
        self._seen = seen

    def split(self, batch: Sequence[Sighting]) -> Split:
        """First sightings (to forward) and duplicates (to drop), in batch order.

        Two copies of one id in the same batch: the first moves on, the second is a duplicate.
        Nothing is marked here; call ``confirm`` once the forwards are acknowledged.
        """
        first: list[Sighting] = []
        duplicates: list[Sighting] = []
        in_batch: set[str] = set()
        for sighting in batch:
            if sighting.event_id in in_batch or self._seen.seen(sighting):
                duplicates.append(sighting)
            else:
                in_batch.add(sighting.event_id)
                first.append(sighting)
        return Split(first, duplicates)

    def confirm(self, forwarded: Iterable[Sighting]) -> None:
        """Mark ids seen: only after the broker acknowledged their forward."""
        for sighting in forwarded:
            self._seen.mark(sighting)


class WindowedIds:
    """In-memory ``SeenIds`` with the same windows and expiry as the faust table (for tests and benchmarks)."""

    def __init__(self, ttl_seconds: float) -> None:
        self.size = float(ttl_seconds)
        self.expires = 2 * self.size
        self._windows: dict[float, set[str]] = {}

    def seen(self, sighting: Sighting) -> bool:
        start = window_start(sighting.at, self.size)
        return any(sighting.event_id in self._windows.get(w, ()) for w in (start, start - self.size))

    def mark(self, sighting: Sighting) -> None:
        self._windows.setdefault(window_start(sighting.at, self.size), set()).add(sighting.event_id)

    def expire(self, now: float) -> None:
        """Drop windows faust would drop at ``now``: those that closed ``expires`` ago."""
        for start in [w for w in self._windows if w + self.size + self.expires <= now]:
            del self._windows[start]

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._windows.values())

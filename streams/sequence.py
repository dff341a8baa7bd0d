"""Sequence: per ordering key, release events in the order ingest received them.

The promise to consumers: the events of one ordering key reach them in order of (provider
``created_at`` where given, else ``received_at``; then ``received_at``; then event id), although
the raw topic is keyed by event id and its partitions are read at different paces.

How (one ``Sequencer`` per partition of the repartition topic, which is keyed by ordering key):

* Dedupe forwards each first sighting to the repartition topic and, after the broker
  acknowledged it, counts its raw partition as having progressed as far as ingest's progress
  markers there say (else to its ``received_at``, less a lag: see ``watermark``).
  Every ``watermark_interval_ms`` each worker sends a watermark per raw partition it owns to *every*
  repartition partition (see ``watermark``): "raw partition p has forwarded everything
  received before T". Since a watermark is sent after the data it covers, within one
  repartition partition it arrives after that data.
* The sequencer buffers each key's events in a heap and releases the head once the low
  watermark (the minimum over all raw partitions) has passed its ``received_at``: by then no
  raw partition can still hold an earlier event of that key. A bounded wait (``max_wait_ms``)
  releases it anyway, so a slow partition delays events, never stops them.
* A raw partition whose watermarks stopped (its worker was killed or paused, or the group is
  rebalancing) is *silent*, not slow: what it still holds is forwarded later by whichever worker
  takes it over, and releasing past it by ``max_wait_ms`` would make that late. So events it
  blocks wait for it to be heard again, up to ``hold_ms`` (longer than the session timeout, so a
  dead worker's partitions have moved by then); only then does the bounded wait apply.
* An event that arrives after a newer event of its key was released is published at once with
  ``late=True`` and counted: never silently reordered.

Crash safety. Buffered events are not acknowledged, so their offsets are not committed and a
restart reads them again. Per key the sequencer keeps, in a changelogged table, the newest
released position (``mark``), the ids of the release in flight (``releasing``) and the ids
recently delivered (``landed``). The mark and the in-flight ids are written and acknowledged
*before* the release is sent (``begin``), so after any crash the table knows at least as much
as the output topic: an event older than the mark that was not part of that release is never
passed off as in order. A restart (a crash, or a stop that interrupted the send) reads the
in-flight events again and sequences them again, in order, whether or not they had reached
the output (at worst duplicates, which consumers drop by event id). What was delivered
(``delivered``, after the acknowledgement) is kept in memory and written as ``landed`` with
the key's next ``begin``: one table write per key and release, not two. So a restart drops
copies of a key's earlier releases, and sends its last release again (the same case as a
crash mid-send: in order, consumers drop the copies).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from hookstream.schemas.envelope import RawEvent, Routing

LANDED_IDS_KEPT = 32
"""Delivered ids remembered per key: enough to cover what a restart re-reads for a key."""
DELIVERED_KEYS_KEPT = 100_000
"""Keys whose last delivered ids are held in memory until their next release is begun; past
that the oldest are forgotten (a restart would send their last release again)."""
RELEASING_IDS_KEPT = 1024
"""In-flight ids remembered per key; a larger release of one key keeps its newest ids, and a
restart after a crash mid-send flags the older rest late instead of sequencing them again."""


@dataclass(frozen=True, order=True)
class SortKey:
    """The position of an event within its ordering key."""

    at_ms: int
    """The provider's created_at where it gives one, else received_at."""
    received_ms: int
    event_id: str

    @classmethod
    def of(cls, event: RawEvent | Routing) -> SortKey:
        created = event.created_at_ms
        received = event.received_at_ms
        return cls(created if created is not None else received, received, event.event_id)

    def to_json(self) -> list[Any]:
        return [self.at_ms, self.received_ms, self.event_id]

    @classmethod
    def from_json(cls, data: list[Any]) -> SortKey:
        return cls(int(data[0]), int(data[1]), str(data[2]))


@dataclass(frozen=True)
class KeyState:
    """What the sequencer remembers about one ordering key, durably."""

    mark: SortKey
    """Newest position released (or about to be)."""
    landed: tuple[str, ...] = ()
    """Ids recently delivered to the output topic, newest last."""
    releasing: tuple[str, ...] = ()
    """Ids of the release begun and not yet known delivered: re-read, they are sequenced again."""

    def to_json(self) -> dict[str, Any]:
        return {"mark": self.mark.to_json(), "landed": list(self.landed), "releasing": list(self.releasing)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyState:
        return cls(
            SortKey.from_json(data["mark"]),
            tuple(data.get("landed", ())),
            tuple(data.get("releasing", ())),  # absent in states written before it existed
        )


class KeyStates(Protocol):
    """Durable per-key state: the faust windowed table in the worker, a dict in tests."""

    def get(self, key: str) -> KeyState | None: ...

    def put(self, key: str, state: KeyState) -> None: ...


class DictKeyStates(dict[str, KeyState]):
    """In-memory ``KeyStates``."""

    def put(self, key: str, state: KeyState) -> None:
        self[key] = state


class Verdict(Enum):
    BUFFERED = "buffered"
    """Held until it is due; ``due`` will return it."""
    DUPLICATE = "duplicate"
    """A copy of an event buffered now or already delivered: drop it."""
    LATE = "late"
    """Older than an event of its key already released: publish it now with ``late=True``."""


@dataclass(frozen=True)
class Pending:
    key: str
    sort: SortKey
    arrived_ms: int
    item: Any
    """The shell's handle (the record to publish and the message to acknowledge)."""
    seq: int


class Sequencer:
    """Buffers and orders the events of one repartition partition. Pure: no I/O, no clock.

    ``now_ms`` arguments are a monotonic clock (they only measure waits); watermarks and
    ``received_ms`` are wall-clock times from ingest.
    """

    def __init__(
        self,
        raw_partitions: int,
        max_wait_ms: int,
        states: KeyStates,
        *,
        silence_ms: int = 0,
        hold_ms: int = 0,
    ) -> None:
        """``silence_ms``: a raw partition not heard from for this long is silent; events it
        blocks wait up to ``hold_ms`` instead of ``max_wait_ms``. Off unless
        ``silence_ms < max_wait_ms < hold_ms``."""
        self.raw_partitions = raw_partitions
        self.max_wait_ms = max_wait_ms
        self.states = states
        self.silence_ms = silence_ms
        self.hold_ms = hold_ms
        self._holds = 0 < silence_ms < max_wait_ms < hold_ms
        self._watermarks: dict[int, int] = {}
        self._heard: dict[int, int] = {}  # raw partition -> when its last watermark was read
        self._since: int | None = None  # the first time we were called: "heard" for the unheard
        self._held: deque[tuple[int, int]] = deque()  # (arrived, seq) past max_wait, held for silence
        self._catching_up: dict[int, int] = {}  # raw partition heard again -> watermark to reach
        self._pending: dict[int, Pending] = {}
        self._by_key: dict[str, list[tuple[SortKey, int]]] = {}
        self._ids_by_key: dict[str, set[str]] = {}
        self._by_received: list[tuple[int, int]] = []
        self._by_arrival: deque[tuple[int, int]] = deque()
        self._delivered: dict[str, tuple[str, ...]] = {}  # key -> ids delivered, not yet written
        self._seq = 0

    # -- watermarks ------------------------------------------------------------------------------
    def watermark(self, raw_partition: int, ms: int, now_ms: int | None = None) -> None:
        """Raw partition ``raw_partition`` has forwarded everything received before ``ms``
        (read at ``now_ms``, which the silence check needs)."""
        if not 0 <= raw_partition < self.raw_partitions:
            return
        if self._holds:
            if now_ms is None:
                raise ValueError("a sequencer that holds for silent partitions needs now_ms")
            since = self._started(now_ms)
            if now_ms - self._heard.get(raw_partition, since) >= self.silence_ms:
                # Heard again is not caught up: its new owner starts from the committed offset.
                # It counts as silent until it reaches where the others were when it came back.
                self._catching_up[raw_partition] = max(self._watermarks.values(), default=ms)
            self._heard[raw_partition] = now_ms
        if ms > self._watermarks.get(raw_partition, ms - 1):
            self._watermarks[raw_partition] = ms
        target = self._catching_up.get(raw_partition)
        if target is not None and self._watermarks[raw_partition] >= target:
            del self._catching_up[raw_partition]

    def silent_partitions(self, now_ms: int) -> set[int]:
        """Raw partitions silent, or catching up after a silence."""
        if not self._holds:
            return set()
        since = self._started(now_ms)
        return {
            p
            for p in range(self.raw_partitions)
            if p in self._catching_up or now_ms - self._heard.get(p, since) >= self.silence_ms
        }

    def silent_floor(self, now_ms: int) -> int | None:
        """The lowest watermark among raw partitions that are silent or catching up after a
        silence (one never heard counts as minus infinity); None when there are none. Events
        received at or after it are held."""
        silent = self.silent_partitions(now_ms)
        return min(self._watermarks.get(p, -(2**63)) for p in silent) if silent else None

    @property
    def low_watermark(self) -> int | None:
        """Everything received before this has been forwarded by every raw partition (None: unknown yet)."""
        if len(self._watermarks) < self.raw_partitions:
            return None
        return min(self._watermarks.values())

    # -- events ----------------------------------------------------------------------------------
    def offer(self, key: str, sort: SortKey, item: Any, now_ms: int) -> tuple[Verdict, Pending]:
        self._started(now_ms)
        pending = Pending(key, sort, now_ms, item, self._next_seq())
        if sort.event_id in self._ids_by_key.get(key, ()):
            return Verdict.DUPLICATE, pending
        if sort.event_id in self._delivered.get(key, ()):
            return Verdict.DUPLICATE, pending
        state = self.states.get(key)
        if state is not None:
            if sort.event_id in state.landed:
                return Verdict.DUPLICATE, pending
            if sort < state.mark and sort.event_id not in state.releasing:
                return Verdict.LATE, pending
        self._pending[pending.seq] = pending
        heapq.heappush(self._by_key.setdefault(key, []), (sort, pending.seq))
        self._ids_by_key.setdefault(key, set()).add(sort.event_id)
        heapq.heappush(self._by_received, (sort.received_ms, pending.seq))
        self._by_arrival.append((now_ms, pending.seq))
        return Verdict.BUFFERED, pending

    def due(self, now_ms: int) -> list[Pending]:
        """Take the events that may go now, each key's in order.

        A key's head is due once the low watermark passed its received_at, or once it has waited
        ``max_wait_ms`` (``hold_ms`` while a silent partition blocks it); whatever follows it in
        its key waits behind it.
        """
        low = self.low_watermark
        floor = self.silent_floor(now_ms)
        keys: dict[str, None] = {}
        if low is not None:
            while self._by_received and self._by_received[0][0] < low:
                self._touch(heapq.heappop(self._by_received)[1], keys)
        if floor is None:
            while self._held:
                self._touch(self._held.popleft()[1], keys)
        while self._by_arrival and now_ms - self._by_arrival[0][0] >= self.max_wait_ms:
            entry = self._by_arrival.popleft()
            pending = self._pending.get(entry[1])
            if pending is not None and floor is not None and pending.sort.received_ms >= floor:
                self._held.append(entry)
            else:
                self._touch(entry[1], keys)
        while self._held and now_ms - self._held[0][0] >= self.hold_ms:
            self._touch(self._held.popleft()[1], keys)
        released: list[Pending] = []
        for key in keys:
            heap = self._by_key[key]
            while heap:
                head = self._pending[heap[0][1]]
                if not self._is_due(head, low, floor, now_ms):
                    break
                heapq.heappop(heap)
                del self._pending[head.seq]
                self._ids_by_key[key].discard(head.sort.event_id)
                released.append(head)
            if not heap:
                del self._by_key[key]
                del self._ids_by_key[key]
        return released

    def begin(self, released: Iterable[Pending]) -> None:
        """Before sending: raise each key's mark, note the ids in flight and those delivered since
        the key's last write (the caller makes it durable before it sends)."""
        for key, items in _by_key(released):
            state = self.states.get(key)
            newest = max(p.sort for p in items)
            mark = newest if state is None or newest > state.mark else state.mark
            delivered = self._delivered.pop(key, ())
            done = set(delivered)
            before = tuple(i for i in (state.releasing if state else ()) if i not in done)
            ids = (*before, *(p.sort.event_id for p in items))
            landed = (*(state.landed if state else ()), *delivered)[-LANDED_IDS_KEPT:]
            self.states.put(key, KeyState(mark, landed, tuple(dict.fromkeys(ids))[-RELEASING_IDS_KEPT:]))

    def delivered(self, sent: Iterable[Pending]) -> None:
        """After the broker acknowledged them: remember their ids, so a copy read again is dropped
        (written with the key's next ``begin``)."""
        for key, items in _by_key(sent):
            ids = (*self._delivered.pop(key, ()), *(p.sort.event_id for p in items))
            self._delivered[key] = ids[-LANDED_IDS_KEPT:]  # re-inserted: newest last
        while len(self._delivered) > DELIVERED_KEYS_KEPT:
            del self._delivered[next(iter(self._delivered))]

    def __len__(self) -> int:
        """Events buffered."""
        return len(self._pending)

    # -- internals -------------------------------------------------------------------------------
    def _started(self, now_ms: int) -> int:
        if self._since is None:
            self._since = now_ms
        return self._since

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _touch(self, seq: int, keys: dict[str, None]) -> None:
        pending = self._pending.get(seq)
        if pending is not None:  # entries of released events are left behind and skipped here
            keys[pending.key] = None

    def _is_due(self, pending: Pending, low: int | None, floor: int | None, now_ms: int) -> bool:
        if low is not None and pending.sort.received_ms < low:
            return True
        if floor is not None and pending.sort.received_ms >= floor:
            return now_ms - pending.arrived_ms >= self.hold_ms
        return now_ms - pending.arrived_ms >= self.max_wait_ms


def _by_key(items: Iterable[Pending]) -> Iterator[tuple[str, list[Pending]]]:
    grouped: dict[str, list[Pending]] = {}
    for p in items:
        grouped.setdefault(p.key, []).append(p)
    return iter(grouped.items())

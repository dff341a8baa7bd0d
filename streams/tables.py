"""The faust tables behind dedupe and sequence, adapted to the pure cores' small protocols.

Both are tumbling-windowed (window = ``dedupe_ttl_seconds``, expiring ``2 * window`` after a
window closes), co-partitioned with the topic their agent reads, and looked up in the
window of the current record's timestamp and the one before it.

With ``rocksdb://`` the store itself forgets old entries (RocksDB's TTL, ``store_options``), and
faust's own expiry is off: faust keeps an in-memory index of every key written (and a heap entry
per write) for it, so memory grows with every id remembered, and with RocksDB that index misses
the keys of earlier processes (``transport``: the fifth fix).
Lookups only ever read the current and the previous window, so an entry the TTL has not removed
yet changes no answer.

A faust table write goes to the changelog partition of faust's *current event*, and a RocksDB
store reads a key from that partition's database only. Both agents handle batches of events,
handed over after the stream moved on to the batch's last event, so each read and write is
wrapped in ``current_event(event)`` (here, and in the stages) to attribute it to the partition
of the event it belongs to.
"""

from __future__ import annotations

from typing import Any

import faust

from hookstream.streams.dedupe import Sighting
from hookstream.streams.sequence import KeyState
from hookstream.streams.transport import current_event

ROCKSDB_WRITE_BUFFER_BYTES = 4 << 20
"""Per partition's database: faust's 64 MB, up to three of them, for every partition of every
table, would let RocksDB take gigabytes of a worker's memory."""
ROCKSDB_BLOCK_CACHE_BYTES = 8 << 20
"""Per partition's database; the operating system's page cache holds the rest."""


def store_options(store: str, window_seconds: float) -> dict[str, Any] | None:
    """faust's store options for a windowed table on ``store``: for RocksDB, entries live three
    windows (the window, and the two faust's expiry would keep it after it closed), and the
    memory RocksDB may use per partition is bounded."""
    if not store.startswith("rocksdb://"):
        return None
    return {
        "ttl": int(3 * window_seconds),
        "write_buffer_size": ROCKSDB_WRITE_BUFFER_BYTES,
        "max_write_buffer_number": 2,
        "block_cache_size": ROCKSDB_BLOCK_CACHE_BYTES,
    }


class TableSeenIds:
    """``dedupe.SeenIds`` over a windowed faust table; ``Sighting.ref`` is the faust event."""

    def __init__(self, table: faust.types.tables.WindowWrapperT, window_seconds: float) -> None:
        self.table = table
        self.window_seconds = window_seconds

    def seen(self, sighting: Sighting) -> bool:
        event = sighting.ref
        with current_event(event):  # the RocksDB store reads the current event's partition only
            windows = self.table[sighting.event_id]
            return bool(windows.current(event)) or bool(windows.delta(self.window_seconds, event))

    def mark(self, sighting: Sighting) -> None:
        with current_event(sighting.ref):
            self.table[sighting.event_id] = True


class TableKeyStates:
    """``sequence.KeyStates`` over a windowed faust table, read and written in the agent's current event."""

    def __init__(self, table: faust.types.tables.WindowWrapperT, window_seconds: float) -> None:
        self.table = table
        self.window_seconds = window_seconds

    def get(self, key: str) -> KeyState | None:
        windows = self.table[key]
        data = windows.current() or windows.delta(self.window_seconds)
        return KeyState.from_json(data) if data else None

    def put(self, key: str, state: KeyState) -> None:
        self.table[key] = state.to_json()

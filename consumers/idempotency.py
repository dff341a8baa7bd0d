"""A processed-id store for your own handlers, so redelivery after a crash repeats no effect.

Kafka delivers at least once: after a crash, events handled since the last commit come again.
The built-in actions are idempotent on their own; for your code, keep the ids you have handled::

    processed = ProcessedIds("fulfilment-state.sqlite")

    @consumer("fulfil-orders", events=["stripe:payment_intent.succeeded"])
    def fulfil(event):
        if processed.already_processed(event.id):
            return
        ship_order(event.typed.data.object.metadata["order_id"])
        processed.mark_processed(event.id)

Mark *after* the effect: a crash in between repeats the effect once more (at-least-once), the
other order would lose it. When the effect is itself a write to this SQLite file, make both one
transaction with ``transaction()``. During ``hookstream replay`` of an event,
``already_processed`` answers False for it: replay re-runs effects on purpose.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

from .events import current_event


class ProcessedIds:
    """Event ids already handled, in a SQLite file (safe from several threads of one process)."""

    def __init__(self, path: str | PathLike[str], *, table: str = "processed_ids") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"table {table!r} must be letters, digits and underscores")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._table = table
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (event_id TEXT PRIMARY KEY, processed_at REAL NOT NULL)"
        )

    def already_processed(self, event_id: str) -> bool:
        """Whether ``event_id`` was marked, except for the event being replayed right now."""
        replaying = current_event.get()
        if replaying is not None and replaying.replay and replaying.id == event_id:
            return False
        with self._lock:
            row = self._conn.execute(
                f"SELECT 1 FROM {self._table} WHERE event_id = ?", (event_id,)
            ).fetchone()
        return row is not None

    def mark_processed(self, event_id: str, connection: sqlite3.Connection | None = None) -> None:
        """Record ``event_id`` as handled (durably, before this returns)."""
        conn = connection or self._conn
        with self._lock:
            conn.execute(
                f"INSERT INTO {self._table} (event_id, processed_at) VALUES (?, ?) "
                "ON CONFLICT(event_id) DO UPDATE SET processed_at = excluded.processed_at",
                (event_id, time.time()),
            )

    def forget(self, event_id: str) -> None:
        with self._lock:
            self._conn.execute(f"DELETE FROM {self._table} WHERE event_id = ?", (event_id,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction for your effect and ``mark_processed(id, conn)``: both or neither."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

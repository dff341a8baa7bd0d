"""Commit bookkeeping: which offset of a partition may be committed.

Events of one partition finish out of order (different keys run concurrently), but a Kafka
commit says "everything before this offset is done". So a partition may only commit the end of
its *contiguous* done prefix: the first offset still pending is where a restart must resume.
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """Offsets of one assigned partition, in fetch order, and which of them are done."""

    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._done: set[int] = set()
        self._next_commit: int | None = None
        self._committed: int | None = None
        self.revoked = False
        """Set when the partition is taken away: late completions must not count any more."""

    def fetched(self, offset: int) -> bool:
        """Track a fetched offset; False (and ignored) when it is not past everything seen so far,
        e.g. a record buffered before a seek or a rebalance, handed out again."""
        last = (
            self._order[-1]
            if self._order
            else (self._next_commit - 1 if self._next_commit is not None else -1)
        )
        if offset <= last:
            return False
        self._order.append(offset)
        return True

    def done(self, offset: int) -> None:
        """The event at ``offset`` succeeded or went to the DLQ."""
        self._done.add(offset)
        while self._order and self._order[0] in self._done:
            first = self._order.popleft()
            self._done.discard(first)
            self._next_commit = first + 1

    @property
    def pending(self) -> int:
        """Events fetched and not yet done."""
        return len(self._order)

    def to_commit(self) -> int | None:
        """The offset to commit now (the next one to read), or None if nothing new is done."""
        if self._next_commit is None or self._next_commit == self._committed:
            return None
        return self._next_commit

    def committed(self, offset: int) -> None:
        self._committed = offset

"""Which offset of a partition may be committed: the end of its contiguous done prefix.

Messages of one partition finish out of order (a consumer runs different keys concurrently; the
streams sequencer holds an event while later watermarks pass). A Kafka commit says "everything
before this offset is done", so only the end of the prefix of offsets that are all done may be
committed: the first offset still pending is where a restart must resume.

faust commits the highest offset of the first run of consecutive acked offsets
(faust-streaming 0.15, ``Consumer._new_offset``). It lets that run start one past the committed
offset, and checks nothing while no offset is known as committed (before the first commit,
after a revocation): acking offset 11 while 10 is still buffered could commit past 10 and lose
it in a crash. So the streams stages hand faust only messages of the done prefix
(``on_done``), whatever its bookkeeping does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class OffsetTracker(Generic[T]):
    """The offsets of one assigned partition, in fetch order, and which of them are done.

    ``on_done`` is called with each tracked item once it and every offset before it are done,
    in offset order (the streams stages acknowledge faust's messages there).
    """

    def __init__(self, on_done: Callable[[T], object] | None = None) -> None:
        self._on_done = on_done
        self._queue: deque[list] = deque()  # [offset, item, done], in offset order
        self._index: dict[int, list] = {}
        self._next_commit: int | None = None
        self._committed: int | None = None
        self.last_offset: int | None = None
        """The highest offset tracked so far."""
        self.revoked = False
        """Set when the partition is taken away: late completions must not count any more."""

    def fetched(self, offset: int, item: T | None = None) -> bool:
        """Track a fetched offset; False (and ignored) when it is not past every offset tracked
        so far, e.g. a record buffered before a seek or a rebalance, handed out again."""
        if self.last_offset is not None and offset <= self.last_offset:
            return False
        self.last_offset = offset
        entry = [offset, item, False]
        self._queue.append(entry)
        self._index[offset] = entry
        return True

    def track(self, offset: int, item: T) -> None:
        """``fetched`` for a caller that already dropped offsets it saw: one not past them all
        means something upstream is wrong, so it is a ValueError rather than ignored."""
        if not self.fetched(offset, item):
            raise ValueError(f"offset {offset} after {self.last_offset}: not in order")

    def done(self, offset: int) -> int:
        """The message at ``offset`` is finished (handled, dead-lettered, released). Returns how
        many messages that completed at the head of the partition; an offset not tracked (e.g.
        from before a rebalance) is ignored."""
        entry = self._index.get(offset)
        if entry is None:
            return 0
        entry[2] = True
        completed = 0
        queue = self._queue
        while queue and queue[0][2]:
            first, item, _ = queue.popleft()
            del self._index[first]
            self._next_commit = first + 1
            completed += 1
            if self._on_done is not None:
                self._on_done(item)
        return completed

    @property
    def pending(self) -> int:
        """Messages tracked and not yet part of the done prefix."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def done_until(self) -> int | None:
        """The first offset not yet done (the next to read when all are): where lag counts from."""
        if self._queue:
            return self._queue[0][0]
        return None if self.last_offset is None else self.last_offset + 1

    def to_commit(self) -> int | None:
        """The offset to commit now (the next one to read), or None if nothing new is done."""
        if self._next_commit is None or self._next_commit == self._committed:
            return None
        return self._next_commit

    def committed(self, offset: int) -> None:
        """``offset`` was committed: ``to_commit`` has nothing new until more is done."""
        self._committed = offset

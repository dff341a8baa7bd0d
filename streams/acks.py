"""Acknowledge the messages of one partition strictly in offset order.

The sequencer finishes messages out of order (a watermark now, an event buffered since
earlier later). faust commits the highest offset of the first run of consecutive acked
offsets, and does not check that the run starts at the committed position when nothing was
committed yet (faust-streaming 0.15, ``Consumer._new_offset``): acking offset 11 while 10 is
still buffered could commit past 10 and lose it in a crash. Handing faust only an in-order
prefix makes that impossible, whatever its bookkeeping does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InOrderAcks(Generic[T]):
    def __init__(self, ack: Callable[[T], object]) -> None:
        self._ack = ack
        self._queue: deque[list] = deque()  # [offset, message, done]
        self._index: dict[int, list] = {}
        self.last_offset: int | None = None
        """The highest offset tracked so far."""

    def track(self, offset: int, message: T) -> None:
        """Register a message as read; offsets must arrive in increasing order."""
        if self.last_offset is not None and offset <= self.last_offset:
            raise ValueError(f"offset {offset} after {self.last_offset}: not in order")
        self.last_offset = offset
        entry = [offset, message, False]
        self._queue.append(entry)
        self._index[offset] = entry

    def done(self, offset: int) -> int:
        """Mark a message finished; acks every finished message at the head. Returns how many."""
        entry = self._index.get(offset)
        if entry is None:
            return 0
        entry[2] = True
        acked = 0
        while self._queue and self._queue[0][2]:
            head_offset, message, _ = self._queue.popleft()
            del self._index[head_offset]
            self._ack(message)
            acked += 1
        return acked

    def __len__(self) -> int:
        """Messages read and not yet acked."""
        return len(self._queue)

"""A consumer's circuit breaker: when its receiver keeps failing, stop calling it for a while.

- Closed: calls go through. It opens after ``failures`` failures in a row, or when at least
  ``min_calls`` calls of the last ``window_seconds`` failed at ``failure_rate`` or more.
- Open: no call goes through for ``open_seconds`` (longer if the receiver's ``Retry-After`` asks).
  Events wait with their keys; they use up no attempts, so none reaches the DLQ for it.
- Half-open: ``probes`` calls go through, one batch at a time. All succeed: closed. One fails:
  open again.

The breaker only decides; the pipeline waits. Its clock is injected, so the decisions are tested
without sleeping.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hookstream.config import BreakerConfig


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class Ticket:
    """Leave to make one call: which opening of the breaker it belongs to, and whether it probes."""

    generation: int
    probe: bool


class CircuitBreaker:
    def __init__(
        self,
        settings: BreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState, BreakerState, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.state = BreakerState.CLOSED
        self._clock = clock
        self._on_change = on_change
        self._generation = 0
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._open_until = 0.0
        self._probing = 0
        self._probed = 0

    def admit(self) -> Ticket | None:
        """A ticket to call now, or None: wait (``wait_seconds``) and ask again."""
        if self.state is BreakerState.OPEN and self._clock() >= self._open_until:
            self._probing = self._probed = 0
            self._move(BreakerState.HALF_OPEN, "cool-down over; probing")
        if self.state is BreakerState.CLOSED:
            return Ticket(self._generation, probe=False)
        if self.state is BreakerState.HALF_OPEN and self._probing + self._probed < self.settings.probes:
            self._probing += 1
            return Ticket(self._generation, probe=True)
        return None

    def wait_seconds(self) -> float:
        """How long until asking again may be worth it."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self._open_until - self._clock())
        return 0.0 if self.state is BreakerState.CLOSED else 0.05

    def succeeded(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return  # a call from before the breaker last opened says nothing now
        if ticket.probe:
            self._probing -= 1
            self._probed += 1
            if self._probed >= self.settings.probes:
                self._consecutive = 0
                self._window.clear()
                self._generation += 1
                self._move(BreakerState.CLOSED, f"{self._probed} probe(s) succeeded")
            return
        self._consecutive = 0
        self._record(False)

    def released(self, ticket: Ticket) -> None:
        """The call was never finished (cancelled): a probe's place goes to the next caller."""
        if ticket.probe and ticket.generation == self._generation:
            self._probing -= 1

    def failed(self, ticket: Ticket, retry_after: float | None = None) -> bool:
        """Record a failed call; True when the breaker is open (or probing) after it, so that
        the failure counts against the receiver, not against the event."""
        if ticket.generation != self._generation:
            return self.state is not BreakerState.CLOSED
        if ticket.probe:
            self._probing -= 1
            self._open("a probe failed", retry_after)
            return True
        self._consecutive += 1
        self._record(True)
        settings = self.settings
        if self._consecutive >= settings.failures:
            self._open(f"{self._consecutive} failures in a row", retry_after)
            return True
        calls = len(self._window)
        failed = sum(1 for _, bad in self._window if bad)
        if (
            settings.failure_rate > 0
            and calls >= settings.min_calls
            and failed / calls >= settings.failure_rate
        ):
            self._open(
                f"{failed} of {calls} calls failed in the last {settings.window_seconds:g} s", retry_after
            )
            return True
        return False

    def _record(self, failed: bool) -> None:
        now = self._clock()
        self._window.append((now, failed))
        horizon = now - self.settings.window_seconds
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()

    def _open(self, why: str, retry_after: float | None) -> None:
        self._generation += 1
        self._probing = self._probed = 0
        self._open_until = self._clock() + max(self.settings.open_seconds, retry_after or 0.0)
        self._move(BreakerState.OPEN, why)

    def _move(self, state: BreakerState, why: str) -> None:
        old, self.state = self.state, state
        if self._on_change is not None and old is not state:
            self._on_change(old, state, why)

"""A consumer's rate limit: a token bucket its handler calls take a token from.

``"50/s"``, ``"1000/min"``, ``"36000/h"``. A call waits for its token; nothing is dropped. Waiting
handlers keep their keys' later events queued behind them, so the runtime's backpressure pauses
fetching once enough wait, and the group's lag grows instead. Retries take a token too: the limit
protects the receiver, which sees every attempt.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*")
_PER = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def parse_rate(text: str) -> float:
    """Calls per second of a ``"N/s"``, ``"N/min"`` or ``"N/h"`` limit; ValueError saying how to write one."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f'{text!r} is not a rate limit: write a positive "N/s", "N/min" or "N/h", e.g. "50/s"'
        )
    return float(match.group(1)) / _PER[match.group(2)]


class TokenBucket:
    """Up to ``rate`` calls a second, in bursts of at most a twentieth of a second's worth (at
    least one call), so the pace is even. Waiters are served in arrival order."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate / 20)
        self._clock = clock
        self._sleep = sleep
        self._tokens = 1.0
        self._at = clock()
        self._lock = asyncio.Lock()  # FIFO: the first to wait is the first served

    async def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        started = self._clock()
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1 - 1e-9:  # rounding must not leave a sliver forever unslept
                    self._tokens = max(0.0, self._tokens - 1)
                    return now - started
                await self._sleep((1 - self._tokens) / self.rate)

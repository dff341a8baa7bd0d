"""The circuit breaker's decisions and the token bucket's pace, on injected clocks."""

from __future__ import annotations

import asyncio

from hookstream.config import BreakerConfig
from hookstream.consumers.breaker import BreakerState, CircuitBreaker
from hookstream.consumers.ratelimit import TokenBucket, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **settings) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    moves: list[tuple[str, str]] = []
    b = CircuitBreaker(
        BreakerConfig(**settings), clock=clock, on_change=lambda old, new, why: moves.append((new.value, why))
    )
    return b, moves


def test_opens_after_consecutive_failures_then_probes_and_closes():
    clock = Clock()
    b, moves = breaker(clock, failures=3, open_seconds=10, probes=2)
    assert not b.failed(b.admit())
    b.succeeded(b.admit())  # a success resets the run
    assert not b.failed(b.admit()) and not b.failed(b.admit())
    assert b.failed(b.admit())  # third in a row
    assert b.state is BreakerState.OPEN and b.admit() is None
    assert b.wait_seconds() == 10
    clock.now += 10
    first, second = b.admit(), b.admit()
    assert first.probe and second.probe and b.admit() is None  # only `probes` go through
    assert b.state is BreakerState.HALF_OPEN
    b.succeeded(first)
    assert b.state is BreakerState.HALF_OPEN
    b.succeeded(second)
    assert b.state is BreakerState.CLOSED and not b.admit().probe
    assert [m for m, _ in moves] == ["open", "half-open", "closed"]
    assert moves[0][1] == "3 failures in a row"


def test_a_failed_probe_opens_it_again_for_as_long_as_retry_after_asks():
    clock = Clock()
    b, _ = breaker(clock, failures=1, open_seconds=5)
    assert b.failed(b.admit())
    clock.now += 5
    probe = b.admit()
    assert b.failed(probe, retry_after=20)
    assert b.state is BreakerState.OPEN and b.wait_seconds() == 20


def test_a_failure_rate_over_the_window_opens_it():
    clock = Clock()
    b, moves = breaker(clock, failures=100, failure_rate=0.5, window_seconds=10, min_calls=4)
    for _ in range(2):
        b.succeeded(b.admit())
        clock.now += 1
    assert not b.failed(b.admit())  # 1 of 3: too few calls yet
    assert b.failed(b.admit())  # 2 of 4
    assert moves[-1][1] == "2 of 4 calls failed in the last 10 s"


def test_old_calls_leave_the_window():
    clock = Clock()
    b, _ = breaker(clock, failures=100, failure_rate=0.5, window_seconds=10, min_calls=4)
    for _ in range(6):
        b.succeeded(b.admit())
    clock.now += 11  # those successes no longer speak for the receiver
    assert not b.failed(b.admit()) and not b.failed(b.admit())
    b.succeeded(b.admit())
    assert b.failed(b.admit())  # 3 of the last 4


def test_results_of_calls_from_before_it_opened_do_not_count():
    clock = Clock()
    b, _ = breaker(clock, failures=1, open_seconds=5)
    early = b.admit()
    assert b.failed(b.admit())
    b.succeeded(early)  # late success: still open
    assert b.state is BreakerState.OPEN
    assert b.failed(early)  # late failure: counts against the receiver, not the event


def test_a_cancelled_probe_frees_its_place():
    clock = Clock()
    b, _ = breaker(clock, failures=1, open_seconds=1)
    b.failed(b.admit())
    clock.now += 1
    probe = b.admit()
    assert b.admit() is None
    b.released(probe)
    assert b.admit().probe


def test_rates():
    assert parse_rate("50/s") == 50
    assert parse_rate("1000/min") == 1000 / 60
    assert parse_rate(" 36000 / h ") == 10
    for bad in ("50", "0/s", "50/day", "-1/s", "fast"):
        try:
            parse_rate(bad)
        except ValueError as exc:
            assert "is not a rate limit" in str(exc)
        else:
            raise AssertionError(bad)


def test_the_bucket_paces_calls_evenly():
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    async def run() -> list[float]:
        bucket = TokenBucket(50, clock=clock, sleep=sleep)
        times = []
        for _ in range(500):
            await bucket.take()
            times.append(clock.now)
        return times

    times = asyncio.run(run())
    assert abs((times[-1] - times[0]) - 499 / 50) < 0.05

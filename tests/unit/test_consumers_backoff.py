"""Retry delays: exponential steps, capped, with equal jitter."""

from __future__ import annotations

import random

import pytest

from hookstream.consumers.backoff import backoff_seconds


class Fixed(random.Random):
    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def test_steps_double_from_the_initial_delay_up_to_the_cap():
    top = [backoff_seconds(n, 200, 30_000, Fixed(1.0)) for n in range(1, 10)]
    assert top == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0]


def test_jitter_stays_within_the_upper_half_of_each_step():
    assert backoff_seconds(3, 200, 30_000, Fixed(0.0)) == pytest.approx(0.4)
    rng = random.Random(7)
    for attempt in range(1, 40):
        step = min(30.0, 0.2 * 2 ** (attempt - 1))
        delay = backoff_seconds(attempt, 200, 30_000, rng)
        assert step / 2 <= delay <= step


def test_jitter_spreads_retries_apart():
    rng = random.Random(1)
    delays = {round(backoff_seconds(4, 200, 30_000, rng), 6) for _ in range(50)}
    assert len(delays) > 40


def test_huge_attempt_numbers_do_not_overflow_and_zero_is_refused():
    assert backoff_seconds(10_000, 200, 30_000, Fixed(1.0)) == 30.0
    assert backoff_seconds(5, 0, 0) == 0.0
    with pytest.raises(ValueError, match="start at 1"):
        backoff_seconds(0, 200, 30_000)

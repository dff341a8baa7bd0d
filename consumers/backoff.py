"""Retry delays: exponential backoff with jitter.

"Equal jitter": half of the exponential step is fixed and half is random, so retries of many
failing events spread out (no thundering herd against a recovering service) while no retry
ever fires immediately.
"""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, initial_ms: int, max_ms: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one.

    The step doubles per attempt from ``initial_ms`` and is capped at ``max_ms``; the delay is
    uniformly drawn from ``[step / 2, step]``.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    step = min(float(max_ms), initial_ms * 2.0 ** min(attempt - 1, 62))
    half = step / 2
    return (half + (rng or random).uniform(0, half)) / 1000

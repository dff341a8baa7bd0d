"""The publisher's pure decisions (its behaviour against Kafka is in tests/integration)."""

from __future__ import annotations

from hookstream.ingest.publisher import REPLACE_QUIET_S, replace_delay


def test_a_producer_replaced_again_soon_waits_longer_each_time():
    assert replace_delay(0.0, float("inf")) == 0.0  # the first in a while: at once
    delays, delay = [], 0.0
    for _ in range(7):
        delay = replace_delay(delay, since_previous=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert replace_delay(10.0, since_previous=REPLACE_QUIET_S) == 0.0  # quiet for a minute: reset

"""Dedupe decisions without a broker: first sighting passes, copies are dropped, memory is bounded."""

from __future__ import annotations

import random

import pytest
from faust.windows import TumblingWindow

from hookstream.streams.dedupe import Deduper, Sighting, WindowedIds, window_start

TTL = 100.0


def sightings(*pairs: tuple[str, float]) -> list[Sighting]:
    return [Sighting(event_id, at) for event_id, at in pairs]


def ids(items: list[Sighting]) -> list[str]:
    return [s.event_id for s in items]


def test_first_sighting_passes_and_copies_in_the_same_batch_are_duplicates():
    dedupe = Deduper(WindowedIds(TTL))
    split = dedupe.split(sightings(("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)))
    assert ids(split.first) == ["a", "b", "c"]
    assert ids(split.duplicates) == ["a", "b"]


def test_an_id_is_only_marked_seen_when_its_forward_is_confirmed():
    seen = WindowedIds(TTL)
    dedupe = Deduper(seen)
    first = dedupe.split(sightings(("a", 1), ("b", 1))).first
    # The forward of the batch was never acknowledged (a crash): nothing is marked, so the
    # records read again after the restart are first sightings again, not lost "duplicates".
    again = dedupe.split(sightings(("a", 2), ("b", 2)))
    assert ids(again.first) == ["a", "b"] and again.duplicates == []
    dedupe.confirm(first)
    later = dedupe.split(sightings(("a", 3), ("b", 4), ("c", 5)))
    assert ids(later.first) == ["c"]
    assert ids(later.duplicates) == ["a", "b"]


@pytest.mark.parametrize("seed", range(5))
def test_an_id_is_remembered_for_at_least_ttl_and_at_most_twice_ttl(seed):
    rng = random.Random(seed)
    for _ in range(200):
        seen = WindowedIds(TTL)
        marked_at = rng.uniform(0, 10_000)
        seen.mark(Sighting("x", marked_at))
        within = marked_at + rng.uniform(0, TTL)
        assert seen.seen(Sighting("x", within)), (marked_at, within)
        beyond = marked_at + 2 * TTL + rng.uniform(0, 5 * TTL)
        assert not seen.seen(Sighting("x", beyond)), (marked_at, beyond)


def test_windows_expire_so_memory_stays_bounded():
    seen = WindowedIds(TTL)
    for i in range(1000):  # one id a second for 1000 s, expiring as faust's cleanup would
        seen.mark(Sighting(f"id{i}", float(i)))
        seen.expire(now=float(i))
    # At most the current window and the expiry horizon (2 windows) behind it: <= 3 * TTL ids.
    assert len(seen) <= 3 * TTL
    # ... and never so eagerly that the previous window, still consulted, is gone.
    assert seen.seen(Sighting("id899", 999.0))


def test_expiry_keeps_the_previous_window_while_it_is_still_consulted():
    seen = WindowedIds(TTL)
    seen.mark(Sighting("x", 150.0))  # window [100, 200)
    seen.expire(now=299.9)  # [200, 300) is current, so [100, 200) is still "previous"
    assert seen.seen(Sighting("x", 299.9))
    seen.expire(now=400.0)  # closed at 200, expires 2 * TTL later
    assert len(seen) == 0


def test_window_arithmetic_matches_faust_tumbling_windows():
    window = TumblingWindow(int(TTL), expires=2 * TTL)
    rng = random.Random(7)
    for _ in range(1000):
        at = rng.uniform(0, 2e9)
        assert window.current(at)[0] == window_start(at, TTL)
        assert window.delta(at, TTL)[0] == window_start(at, TTL) - TTL

"""OffsetTracker: only the contiguous done prefix of a partition may be committed or acknowledged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookstream.kafka.offsets import OffsetTracker


def test_nothing_to_commit_until_the_first_offset_is_done():
    p = OffsetTracker()
    for offset in (10, 11, 12):
        assert p.fetched(offset)
    p.done(11)
    p.done(12)
    assert p.to_commit() is None and p.pending == 3
    p.done(10)
    assert p.to_commit() == 13 and p.pending == 0


def test_commit_stops_at_the_first_event_still_running():
    p = OffsetTracker()
    for offset in range(5):
        p.fetched(offset)
    for offset in (0, 1, 3, 4):
        p.done(offset)
    assert p.to_commit() == 2
    p.committed(2)
    assert p.to_commit() is None  # nothing new
    p.done(2)
    assert p.to_commit() == 5


def test_gaps_in_offsets_are_fine():
    # Compaction and transaction markers leave holes: commit follows the fetched offsets.
    p = OffsetTracker()
    for offset in (3, 7, 8, 20):
        p.fetched(offset)
    p.done(7)
    p.done(3)
    assert p.to_commit() == 8
    p.done(20)
    p.done(8)
    assert p.to_commit() == 21


def test_offsets_seen_before_are_ignored():
    p = OffsetTracker()
    assert p.fetched(4) and p.fetched(5)
    assert not p.fetched(5) and not p.fetched(2)
    p.done(4)
    p.done(5)
    assert not p.fetched(5)  # even after it was done and left the window
    assert p.fetched(6)


def test_items_are_handed_on_only_as_an_in_order_prefix():
    acked: list[str] = []
    acks = OffsetTracker(acked.append)
    for offset in (10, 11, 12, 13):
        acks.track(offset, f"m{offset}")
    assert acks.done(11) == 0  # 10 (say, a buffered event) still holds the line
    assert acks.done(13) == 0
    assert acked == []
    assert acks.done(10) == 2
    assert acked == ["m10", "m11"]
    assert acks.done(12) == 2
    assert acked == ["m10", "m11", "m12", "m13"] and len(acks) == 0
    assert acks.done(99) == 0  # unknown (e.g. from before a rebalance): ignored
    acks.track(20, "m20")
    with pytest.raises(ValueError):
        acks.track(19, "m19")  # a partition's messages arrive in offset order, or something is wrong


@st.composite
def fetched_then_done(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Increasing offsets with gaps, and the order in which some of them finish."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=40))
    offsets = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    finished = draw(st.permutations(offsets))
    return offsets, finished[: draw(st.integers(min_value=0, max_value=len(finished)))]


@given(fetched_then_done())
def test_a_commit_never_passes_an_offset_not_done(case: tuple[list[int], list[int]]) -> None:
    offsets, finished = case
    handed_on: list[int] = []
    tracker = OffsetTracker(handed_on.append)
    for offset in offsets:
        tracker.track(offset, offset)
    done: set[int] = set()
    for offset in finished:
        tracker.done(offset)
        done.add(offset)
        first_pending = next((o for o in offsets if o not in done), None)
        prefix = [o for o in offsets if first_pending is None or o < first_pending]
        commit = tracker.to_commit()
        assert commit == (prefix[-1] + 1 if prefix else None)  # as far as the done prefix, no further
        assert first_pending is None or commit is None or commit <= first_pending
        assert handed_on == prefix
        assert tracker.pending == len(offsets) - len(prefix)

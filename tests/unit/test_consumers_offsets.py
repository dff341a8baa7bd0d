"""Commit bookkeeping: only the contiguous done prefix of a partition may be committed."""

from __future__ import annotations

from hookstream.consumers.offsets import PartitionOffsets


def test_nothing_to_commit_until_the_first_offset_is_done():
    p = PartitionOffsets()
    for offset in (10, 11, 12):
        assert p.fetched(offset)
    p.done(11)
    p.done(12)
    assert p.to_commit() is None and p.pending == 3
    p.done(10)
    assert p.to_commit() == 13 and p.pending == 0


def test_commit_stops_at_the_first_event_still_running():
    p = PartitionOffsets()
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
    p = PartitionOffsets()
    for offset in (3, 7, 8, 20):
        p.fetched(offset)
    p.done(7)
    p.done(3)
    assert p.to_commit() == 8
    p.done(20)
    p.done(8)
    assert p.to_commit() == 21


def test_offsets_seen_before_are_ignored():
    p = PartitionOffsets()
    assert p.fetched(4) and p.fetched(5)
    assert not p.fetched(5) and not p.fetched(2)
    p.done(4)
    p.done(5)
    assert not p.fetched(5)  # even after it was done and left the window
    assert p.fetched(6)

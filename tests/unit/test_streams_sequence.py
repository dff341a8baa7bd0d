"""Sequencing decisions without a broker: per-key order from watermarks, bounded waits, late marking."""

from __future__ import annotations

import random

import pytest

from hookstream.sample_events import raw_event
from hookstream.streams import sequence
from hookstream.streams.sequence import (
    LANDED_IDS_KEPT,
    DictKeyStates,
    KeyState,
    Sequencer,
    SortKey,
    Verdict,
)

RAW_PARTITIONS = 3
MAX_WAIT = 1_000


def sk(event_id: str, received: int, created: int | None = None) -> SortKey:
    return SortKey(created if created is not None else received, received, event_id)


def make(states: DictKeyStates | None = None) -> Sequencer:
    return Sequencer(RAW_PARTITIONS, MAX_WAIT, states if states is not None else DictKeyStates())


def all_watermarks(seq: Sequencer, ms: int) -> None:
    for p in range(RAW_PARTITIONS):
        seq.watermark(p, ms)


def release(seq: Sequencer, now: int) -> list[str]:
    """What the stage does: take what is due, raise the marks, 'send', record delivery."""
    due = seq.due(now)
    seq.begin(due)
    seq.delivered(due)
    return [p.sort.event_id for p in due]


def test_sort_key_puts_provider_created_at_first_and_received_at_second():
    early = raw_event("b", "k", received_ms=2_000, created_ms=1_000)
    late_received = raw_event("a", "k", received_ms=3_000, created_ms=1_000)
    no_created = raw_event("c", "k", received_ms=1_500)
    ordered = sorted([late_received, no_created, early], key=SortKey.of)
    assert [e.event_id for e in ordered] == ["b", "a", "c"]
    assert SortKey.of(no_created) == SortKey(1_500, 1_500, "c")


def test_low_watermark_is_unknown_until_every_raw_partition_reported_and_never_goes_back():
    seq = make()
    seq.watermark(0, 500)
    seq.watermark(1, 700)
    assert seq.low_watermark is None
    seq.watermark(2, 600)
    assert seq.low_watermark == 500
    seq.watermark(0, 100)  # an older watermark (e.g. a new owner re-reading) changes nothing
    seq.watermark(7, 1)  # not a raw partition of ours
    assert seq.low_watermark == 500


def test_events_read_out_of_order_are_released_in_order_once_every_partition_passed_them():
    seq = make()
    for event_id, received in (("e3", 300), ("e1", 100), ("e2", 200)):
        assert seq.offer("k", sk(event_id, received), None, now_ms=0)[0] is Verdict.BUFFERED
    assert release(seq, now=10) == []  # no watermark from anyone yet
    seq.watermark(0, 1_000)
    seq.watermark(1, 1_000)
    seq.watermark(2, 150)  # partition 2 has not got past 150: e2 and e3 may still be preceded
    assert release(seq, now=20) == ["e1"]
    seq.watermark(2, 301)
    assert release(seq, now=30) == ["e2", "e3"]
    assert len(seq) == 0


def test_a_key_waits_behind_its_head_even_when_later_events_are_past_the_watermark():
    seq = make()
    # b was received first, but a was created first: a goes first, and a is received late.
    seq.offer("k", sk("a", received=500, created=10), None, now_ms=0)
    seq.offer("k", sk("b", received=100, created=20), None, now_ms=0)
    seq.offer("other", sk("c", received=100), None, now_ms=0)
    all_watermarks(seq, 200)
    assert release(seq, now=1) == ["c"]  # b is past the watermark but queued behind a
    all_watermarks(seq, 600)
    assert release(seq, now=2) == ["a", "b"]


def test_the_wait_is_bounded_when_a_partition_never_reports():
    seq = make()
    seq.watermark(0, 10_000)
    seq.watermark(1, 10_000)  # partition 2 is silent
    seq.offer("other", sk("x", 300), None, now_ms=1_000)
    seq.offer("k", sk("e2", 200), None, now_ms=1_000)
    seq.offer("k", sk("e1", 100), None, now_ms=1_500)
    assert release(seq, now=1_999) == []
    # x waited max_wait and goes; e2 too, but it stays behind e1, which precedes it in its key.
    assert release(seq, now=2_000) == ["x"]
    assert release(seq, now=2_500) == ["e1", "e2"]


SILENCE, HOLD = 200, 10_000


def holding(states: DictKeyStates | None = None) -> Sequencer:
    return Sequencer(
        RAW_PARTITIONS,
        MAX_WAIT,
        states if states is not None else DictKeyStates(),
        silence_ms=SILENCE,
        hold_ms=HOLD,
    )


def test_events_a_silent_partition_may_precede_wait_for_it_instead_of_coming_out_late():
    """A worker dies: its raw partition's watermarks stop. Releasing past it by max_wait would
    make what it still holds late once another worker forwards it; so those events are held."""
    seq = holding()
    for p in range(RAW_PARTITIONS):
        seq.watermark(p, 1_000, now_ms=0)
    seq.offer("k", sk("e2", 1_500), None, now_ms=10)  # partition 2 still holds e1 (received 1_200)
    seq.offer("old", sk("x", 900), None, now_ms=10)  # before every watermark: goes at once
    assert release(seq, now=10) == ["x"]
    for now in (100, 500, 1_000):  # 0 and 1 go on reporting; 2 has gone silent
        seq.watermark(0, now + 2_000, now_ms=now)
        seq.watermark(1, now + 2_000, now_ms=now)
    assert seq.silent_floor(1_000) == 1_000
    assert release(seq, now=MAX_WAIT + 10) == []  # past max_wait, but held for partition 2
    assert release(seq, now=5_000) == []
    # Another worker took partition 2 over and forwarded e1; then its watermark moved on.
    assert seq.offer("k", sk("e1", 1_200), None, now_ms=5_010)[0] is Verdict.BUFFERED
    for p in range(RAW_PARTITIONS):
        seq.watermark(p, 1_300 if p == 2 else 7_000, now_ms=5_010)
    assert release(seq, now=5_010) == ["e1"]  # e1 is past every watermark
    # Heard again, partition 2 is not caught up yet (its new owner reads from the committed
    # offset): it counts as silent until it reaches where the others were.
    assert seq.silent_floor(5_020) == 1_300
    assert release(seq, now=5_020) == []
    seq.watermark(2, 7_000, now_ms=5_030)
    assert seq.silent_floor(5_030) is None
    assert release(seq, now=5_030) == ["e2"]  # in order, neither late


def test_the_hold_is_bounded_and_a_partition_never_heard_from_counts_as_silent():
    seq = holding()
    seq.watermark(0, 10_000, now_ms=0)
    seq.watermark(1, 10_000, now_ms=0)  # partition 2 never reports
    seq.offer("k", sk("e1", 100), None, now_ms=0)
    seq.watermark(0, 10_000, now_ms=MAX_WAIT)
    seq.watermark(1, 10_000, now_ms=MAX_WAIT)
    assert release(seq, now=MAX_WAIT) == []
    assert release(seq, now=HOLD - 1) == []
    assert release(seq, now=HOLD) == ["e1"]  # a partition that stays silent delays, never stops


def test_events_no_silent_partition_can_precede_keep_the_bounded_wait():
    seq = holding()
    for p in range(RAW_PARTITIONS):
        seq.watermark(p, 1_000, now_ms=0)
    seq.offer("k", sk("before", 500), None, now_ms=0)  # partition 0 is slow (live, behind)...
    seq.watermark(0, 400, now_ms=0)
    for now in (100, 300):
        seq.watermark(0, 400, now_ms=now)
        seq.watermark(1, 5_000, now_ms=now)
    # ...and partition 2 silent at 1_000: "before" cannot be preceded by anything partition 2 holds.
    assert seq.silent_floor(MAX_WAIT) == 1_000
    assert release(seq, now=MAX_WAIT) == ["before"]


def test_the_hold_needs_a_read_time_for_watermarks_and_is_off_unless_it_outlasts_max_wait():
    with pytest.raises(ValueError, match="now_ms"):
        holding().watermark(0, 1)
    off = Sequencer(RAW_PARTITIONS, MAX_WAIT, DictKeyStates(), silence_ms=SILENCE, hold_ms=MAX_WAIT)
    off.offer("k", sk("e1", 100), None, now_ms=0)
    assert off.silent_floor(5_000) is None
    assert release(off, now=MAX_WAIT) == ["e1"]


def test_an_event_older_than_a_released_one_is_late_and_a_newer_one_is_not():
    seq = make()
    all_watermarks(seq, 1_000)
    seq.offer("k", sk("e2", 200), None, now_ms=0)
    assert release(seq, now=1) == ["e2"]
    verdict, late = seq.offer("k", sk("e1", 100), None, now_ms=2)
    assert verdict is Verdict.LATE
    seq.delivered([late])
    assert seq.offer("k", sk("e3", 300), None, now_ms=3)[0] is Verdict.BUFFERED
    assert seq.offer("other", sk("x", 50), None, now_ms=3)[0] is Verdict.BUFFERED  # other keys unaffected


def test_copies_of_buffered_or_delivered_events_are_duplicates_and_after_a_restart_all_but_the_last_release():
    states = DictKeyStates()
    seq = make(states)
    seq.offer("k", sk("e1", 100), None, now_ms=0)
    assert seq.offer("k", sk("e1", 100), None, now_ms=1)[0] is Verdict.DUPLICATE
    all_watermarks(seq, 1_000)
    assert release(seq, now=2) == ["e1"]
    assert seq.offer("k", sk("e1", 100), None, now_ms=3)[0] is Verdict.DUPLICATE
    seq.offer("k", sk("e2", 200), None, now_ms=3)
    assert release(seq, now=4) == ["e2"]
    restarted = make(states)  # the table survives a restart, buffers and memory do not
    for copy in (sk("e1", 100), sk("e1", 100)):
        assert restarted.offer("k", copy, None, now_ms=5)[0] is Verdict.DUPLICATE
    # The key's last release was written as in flight, not yet as delivered: it goes again,
    # in order, and consumers drop the copy by event id.
    assert restarted.offer("k", sk("e2", 200), None, now_ms=5)[0] is Verdict.BUFFERED


def test_one_table_write_per_key_and_release():
    writes = []

    class Counting(DictKeyStates):
        def put(self, key, state):
            writes.append(key)
            super().put(key, state)

    seq = make(Counting())
    all_watermarks(seq, 10**9)
    for i in range(5):
        seq.offer("k", sk(f"e{i}", 100 + i), None, now_ms=i)
        release(seq, now=i)
    assert writes == ["k"] * 5


def test_a_release_interrupted_before_delivery_is_sequenced_again_in_order_after_a_restart():
    states = DictKeyStates()
    seq = make(states)
    for event_id, received in (("e1", 100), ("e2", 200), ("e3", 300)):
        seq.offer("k", sk(event_id, received), None, now_ms=0)
    all_watermarks(seq, 1_000)
    due = seq.due(now_ms=1)
    seq.begin(due)  # mark and in-flight ids written (and acknowledged) ... then the send is cut off
    assert states["k"].mark == sk("e3", 300) and states["k"].landed == ()
    assert states["k"].releasing == ("e1", "e2", "e3")
    restarted = make(states)  # the same three records are read again, in arrival order e2, e1, e3
    verdicts = [
        restarted.offer("k", sk(e, r), None, now_ms=2)[0] for e, r in (("e2", 200), ("e1", 100), ("e3", 300))
    ]
    # Whether or not they reached the output before the stop, they go (again) in order, not
    # flagged late: the copies that did reach it are duplicates, dropped by event id downstream.
    assert verdicts == [Verdict.BUFFERED] * 3
    # An older event that was not part of that release is late: e3 may be out already.
    assert restarted.offer("k", sk("e0", 50), None, now_ms=2)[0] is Verdict.LATE
    all_watermarks(restarted, 1_000)
    assert release(restarted, now=3) == ["e1", "e2", "e3"]
    restarted.offer("k", sk("e4", 400), None, now_ms=4)
    assert release(restarted, now=4) == ["e4"]  # its write records the delivery of e1..e3
    assert states["k"].releasing == ("e4",) and states["k"].landed == ("e1", "e2", "e3")
    assert KeyState.from_json(states["k"].to_json()) == states["k"]
    # A state written before ``releasing`` existed still reads.
    assert KeyState.from_json({"mark": [1, 1, "x"], "landed": ["x"]}) == KeyState(SortKey(1, 1, "x"), ("x",))


def test_delivered_ids_are_kept_per_key_up_to_a_bound():
    states = DictKeyStates()
    seq = make(states)
    all_watermarks(seq, 10**9)
    for i in range(LANDED_IDS_KEPT + 10):
        seq.offer("k", sk(f"e{i:03d}", 1_000 + i), None, now_ms=i)
        release(seq, now=i)
    state = states["k"]
    assert len(state.landed) == LANDED_IDS_KEPT
    assert state.landed[-1] == f"e{LANDED_IDS_KEPT + 8:03d}"  # the last is still in flight
    assert state.releasing == (f"e{LANDED_IDS_KEPT + 9:03d}",)
    assert KeyState.from_json(state.to_json()) == state


def test_deliveries_waiting_for_their_keys_next_write_are_bounded_in_memory(monkeypatch):
    monkeypatch.setattr(sequence, "DELIVERED_KEYS_KEPT", 3)
    seq = make()
    all_watermarks(seq, 10**9)
    for i in range(5):
        seq.offer(f"k{i}", sk(f"e{i}", 100 + i), None, now_ms=i)
        release(seq, now=i)
    verdicts = [seq.offer(f"k{i}", sk(f"e{i}", 100 + i), None, now_ms=9)[0] for i in range(5)]
    # The oldest two keys were forgotten: their copies are sent again (marked in flight).
    assert verdicts == [Verdict.BUFFERED] * 2 + [Verdict.DUPLICATE] * 3


@pytest.mark.parametrize("seed", range(20))
def test_any_interleaving_of_raw_partitions_gives_per_key_received_order(seed):
    """Simulate dedupe tasks reading raw partitions at random paces, each sending a watermark
    after every record (as the worker's timer would), with the sequencer in the middle."""
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(4)]
    raw: list[list[tuple[str, SortKey]]] = [[] for _ in range(RAW_PARTITIONS)]
    expected: dict[str, list[str]] = {k: [] for k in keys}
    for n in range(120):  # ingest receives events one ms apart, keyed by event id over partitions
        key = rng.choice(keys)
        raw[rng.randrange(RAW_PARTITIONS)].append((key, sk(f"e{n}", n)))
        expected[key].append(f"e{n}")
    seq = Sequencer(RAW_PARTITIONS, max_wait_ms=10**9, states=DictKeyStates())  # watermarks only
    got: dict[str, list[str]] = {k: [] for k in keys}
    positions = [0] * RAW_PARTITIONS
    weights = [rng.choice([1, 5, 25]) for _ in range(RAW_PARTITIONS)]  # uneven paces
    now = 0
    while any(positions[p] < len(raw[p]) for p in range(RAW_PARTITIONS)):
        p = rng.choices(range(RAW_PARTITIONS), weights)[0]
        if positions[p] == len(raw[p]):
            seq.watermark(p, 10**6)  # caught up: idle partitions advance
        else:
            key, sort = raw[p][positions[p]]
            positions[p] += 1
            assert seq.offer(key, sort, None, now_ms=now)[0] is Verdict.BUFFERED
            seq.watermark(p, sort.received_ms)
        for pending in seq.due(now):
            got[pending.key].append(pending.sort.event_id)
        now += 1  # far below max_wait: only watermarks release here
    all_watermarks(seq, 10**6)
    for pending in seq.due(now):
        got[pending.key].append(pending.sort.event_id)
    assert got == expected


@pytest.mark.parametrize("seed", range(20))
def test_a_partition_that_goes_silent_mid_stream_costs_time_never_order(seed):
    """As above, but the bounded wait is short and one raw partition stops being read (its worker
    died) for a long stretch before another worker goes on with it: nothing comes out late."""
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(4)]
    raw: list[list[tuple[str, SortKey]]] = [[] for _ in range(RAW_PARTITIONS)]
    expected: dict[str, list[str]] = {k: [] for k in keys}
    for n in range(150):
        key = rng.choice(keys)
        raw[rng.randrange(RAW_PARTITIONS)].append((key, sk(f"e{n}", n)))
        expected[key].append(f"e{n}")
    # The live partitions' skew stays under max_wait; the dead one's silence lasts far longer.
    seq = Sequencer(RAW_PARTITIONS, max_wait_ms=100, states=DictKeyStates(), silence_ms=10, hold_ms=10**6)
    dead, dies_at, back_at = rng.randrange(RAW_PARTITIONS), rng.randrange(10, 60), rng.randrange(300, 600)

    def release_due(now: int) -> None:
        due = seq.due(now)
        seq.begin(due)  # marks raised: an event older than a released one would be LATE
        seq.delivered(due)
        for pending in due:
            got[pending.key].append(pending.sort.event_id)

    got: dict[str, list[str]] = {k: [] for k in keys}
    positions = [0] * RAW_PARTITIONS
    now = 0
    while any(positions[p] < len(raw[p]) for p in range(RAW_PARTITIONS)):
        p = rng.randrange(RAW_PARTITIONS)
        if p == dead and dies_at <= now < back_at:
            pass  # nobody reads it, nobody reports for it
        elif positions[p] == len(raw[p]):
            seq.watermark(p, 10**6, now_ms=now)
        else:
            key, sort = raw[p][positions[p]]
            positions[p] += 1
            assert seq.offer(key, sort, None, now_ms=now)[0] is Verdict.BUFFERED, (seed, sort)
            seq.watermark(p, sort.received_ms, now_ms=now)
        release_due(now)
        now += 1
    for p in range(RAW_PARTITIONS):
        seq.watermark(p, 10**6, now_ms=now)
    release_due(now)
    assert got == expected

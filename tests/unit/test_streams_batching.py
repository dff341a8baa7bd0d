"""streams.batching.Batches with stand-ins for faust's stream, events and app (no broker)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from hookstream.streams.batching import Batches, Halt, SkippedRecords


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


@dataclass
class Event:
    message: Message


class Stream:
    def __init__(
        self, offsets: list[tuple[int, int]], gap_s: float = 0.0, seed: int = 0, idle_after_s: float = 0.0
    ) -> None:
        self.offsets = offsets
        self.idle_after_s = idle_after_s
        self.gap_s = gap_s
        self.random = random.Random(seed)

    def noack(self) -> Stream:
        return self

    async def events(self):
        for partition, offset in self.offsets:
            if self.gap_s:
                await asyncio.sleep(self.random.uniform(0, self.gap_s))
            yield Event(Message("raw", partition, offset))
        await asyncio.sleep(self.idle_after_s)  # a live stream goes quiet; it does not end


class App:
    def __init__(self) -> None:
        self.crashed: list[BaseException] = []

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


def handled_offsets(batches: list[list[Event]]) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for batch in batches for e in batch]


async def test_every_event_read_is_handled_once_in_order_whatever_the_timing():
    # Arrivals a few ms apart around a 2 ms batch timeout, with slow handlers: the boundary case
    # where faust's noack_take drops a record.
    offsets = [(i % 3, i // 3) for i in range(600)]
    batches: list[list[Event]] = []

    async def handle(batch):
        await asyncio.sleep(random.uniform(0, 0.004))
        batches.append(list(batch))

    app = App()
    await Batches(app, "t", handle, max_size=7, within_s=0.002).run(
        Stream(offsets, gap_s=0.003, idle_after_s=0.05)
    )
    assert handled_offsets(batches) == offsets
    assert all(1 <= len(b) <= 8 for b in batches)  # max_size, plus at most the one read meanwhile
    assert not app.crashed


async def test_a_full_buffer_is_handled_by_the_reader_itself():
    batches: list[list[Event]] = []

    async def handle(batch):
        batches.append(list(batch))

    await Batches(App(), "t", handle, max_size=5, within_s=60).run(Stream([(0, i) for i in range(10)]))
    assert [len(b) for b in batches] == [5, 5]


async def test_skipped_records_stop_the_app_before_anything_past_them_is_handled():
    batches: list[list[Event]] = []
    asked: list[tuple[str, int, int, int]] = []

    async def handle(batch):
        batches.append(list(batch))

    async def records_between(topic, partition, start, end):
        asked.append((topic, partition, start, end))
        return end - start

    app = App()
    counted = []
    offsets = [(0, 0), (1, 0), (0, 1), (0, 4), (0, 5), (1, 1)]
    await Batches(app, "t", handle, 100, 60, records_between, on_skipped=counted.append).run(Stream(offsets))
    assert asked == [("raw", 0, 2, 4)]
    assert handled_offsets(batches) == [(0, 0), (1, 0), (0, 1)]
    assert len(app.crashed) == 1 and isinstance(app.crashed[0], SkippedRecords)
    assert app.hookstream_stop_reason is app.crashed[0]  # what the command's last line names
    assert counted == [2]  # the metric
    assert "skipped 2 record(s) of raw[0] at offsets 2..3" in str(app.crashed[0])


async def test_a_gap_without_records_and_a_re_read_are_not_skips():
    batches: list[list[Event]] = []

    async def handle(batch):
        batches.append(list(batch))

    asked = []

    async def records_between(topic, partition, start, end):
        asked.append((topic, partition, start, end))
        return 0  # transaction markers only

    app = App()
    offsets = [(0, 0), (0, 1), (0, 3), (0, 1), (0, 2), (0, 3), (0, 4)]  # a gap, then a seek back
    await Batches(app, "t", handle, 3, 60, records_between).run(Stream(offsets))
    await asyncio.sleep(0)
    assert asked == [("raw", 0, 2, 3)]  # the gap was looked at, the seek back was not
    # Batches of 3; the seventh event waits for company (within_s = 60 s).
    assert handled_offsets(batches) == offsets[:6]
    assert not app.crashed


async def test_a_failing_handler_crashes_the_app_and_raises():
    async def handle(batch):
        raise ValueError("broker said no")

    app = App()
    with pytest.raises(ValueError, match="broker said no"):
        await Batches(app, "t", handle, 2, 60).run(Stream([(0, 0), (0, 1)]))
    assert [str(e) for e in app.crashed] == ["broker said no"]


async def test_drop_forgets_unhandled_events_and_positions():
    handled: list[list[Event]] = []

    async def handle(batch):
        handled.append(list(batch))

    batches = Batches(App(), "t", handle, 100, 60)
    batches._buffer.append(Event(Message("raw", 0, 7)))  # read, not yet handled
    batches._next[("raw", 0)] = 8
    batches.drop()
    await batches.flush()
    assert handled == [] and batches._next == {}


async def test_the_first_event_of_a_partition_is_checked_against_where_the_group_resumes():
    handled: list[list[Event]] = []
    asked: list[tuple[str, int, int, int]] = []

    async def handle(batch):
        handled.append(list(batch))

    async def resume_offset(topic, partition):
        return {0: 5, 1: 0}[partition]  # partition 0 resumes at 5, partition 1 at the log start

    async def records_between(topic, partition, start, end):
        asked.append((topic, partition, start, end))
        return end - start

    app = App()
    offsets = [(1, 0), (0, 5), (0, 6), (1, 1)]  # each starts where its group resumes
    await Batches(app, "t", handle, 100, 0.01, records_between, resume_offset).run(
        Stream(offsets, idle_after_s=0.05)
    )
    assert handled_offsets(handled) == offsets and asked == [] and not app.crashed

    handled.clear()
    offsets = [(1, 0), (0, 8), (0, 9)]  # partition 0 starts three records past its committed offset
    await Batches(app, "t", handle, 100, 60, records_between, resume_offset).run(Stream(offsets))
    assert asked == [("raw", 0, 5, 8)]
    assert handled_offsets(handled) == [(1, 0)]  # what was read before the skip, nothing after
    assert len(app.crashed) == 1 and isinstance(app.crashed[0], SkippedRecords)


async def test_a_resume_offset_that_cannot_be_had_skips_the_check_not_the_event(caplog):
    handled: list[list[Event]] = []

    async def handle(batch):
        handled.append(list(batch))

    async def resume_offset(topic, partition):
        raise TimeoutError("broker busy")

    async def records_between(topic, partition, start, end):
        raise AssertionError("nothing to compare with: not asked")

    app = App()
    await Batches(app, "t", handle, 2, 60, records_between, resume_offset).run(Stream([(0, 7), (0, 8)]))
    assert handled_offsets(handled) == [(0, 7), (0, 8)] and not app.crashed
    assert "cannot check where raw[0] resumes: broker busy" in caplog.text


async def test_after_one_batch_failed_no_batches_hand_out_another_event():
    # faust restarts the agents while the app stops; what they would read next must not be
    # handled (and so acknowledged) past the failed batch.
    halt = Halt()
    handled: list[list[Event]] = []

    async def fail(batch):
        raise ValueError("broker said no")

    async def handle(batch):
        handled.append(list(batch))

    app = App()
    failing = Batches(app, "sequence", fail, 1, 60, halt=halt)
    other = Batches(app, "dedupe", handle, 100, 60, halt=halt)
    other._buffer.append(Event(Message("raw", 0, 3)))  # read before the failure, not yet handled
    with pytest.raises(ValueError):
        await failing.run(Stream([(0, 0)]))
    assert isinstance(halt.reason, ValueError)

    await other.flush()
    await other.run(Stream([(0, 4), (0, 5)]))  # a restarted agent reading on
    await failing.run(Stream([(0, 1)]))
    assert handled == [] and other._buffer == [] and failing._buffer == []
    assert [str(e) for e in app.crashed] == ["broker said no"]


async def test_skipped_records_halt_the_other_batches_too():
    halt = Halt()
    handled: list[list[Event]] = []

    async def handle(batch):
        handled.append(list(batch))

    async def records_between(topic, partition, start, end):
        return end - start

    app = App()
    await Batches(app, "dedupe", handle, 100, 60, records_between, halt=halt).run(Stream([(0, 0), (0, 2)]))
    assert isinstance(halt.reason, SkippedRecords)
    await Batches(app, "sequence", handle, 1, 60, halt=halt).run(Stream([(0, 0)]))
    assert handled_offsets(handled) == [(0, 0)]  # only what preceded the skip, in the first


async def test_an_event_waiting_for_its_committed_offset_across_a_rebalance_is_left_for_faust():
    """A rebalance began (``drop``) while the event waited for its partition's committed offset:
    compared with it, the event would look like a jump. It is neither handed out nor taken for a
    skip; faust reads the partition again from the committed offset."""
    handled: list[list[Event]] = []
    asked: list[tuple[str, int, int, int]] = []
    app = App()
    rebalanced = False

    async def handle(batch):
        handled.append(list(batch))

    async def resume_offset(topic, partition):
        nonlocal rebalanced
        if not rebalanced:  # the rebalance happens while the broker answers
            rebalanced = True
            batches.drop()
        return 5

    async def records_between(topic, partition, start, end):
        asked.append((topic, partition, start, end))
        return end - start

    # 9 was read before the rebalance; 5.. are read again from the committed offset.
    offsets = [(0, 9), (0, 5), (0, 6), (0, 7)]
    batches = Batches(app, "t", handle, 100, 0.01, records_between, resume_offset)
    await batches.run(Stream(offsets, idle_after_s=0.05))
    assert handled_offsets(handled) == [(0, 5), (0, 6), (0, 7)]
    assert asked == [] and not app.crashed


async def test_an_event_whose_jump_is_being_checked_across_a_rebalance_is_left_too():
    handled: list[list[Event]] = []
    app = App()
    rebalanced = False

    async def handle(batch):
        handled.append(list(batch))

    async def resume_offset(topic, partition):
        return 5

    async def records_between(topic, partition, start, end):
        nonlocal rebalanced
        if not rebalanced:
            rebalanced = True
            batches.drop()
        return end - start

    offsets = [(0, 5), (0, 9), (0, 5), (0, 6)]  # 9: a jump, checked while the group rebalances
    batches = Batches(app, "t", handle, 100, 0.01, records_between, resume_offset)
    await batches.run(Stream(offsets, idle_after_s=0.05))
    assert handled_offsets(handled) == [(0, 5), (0, 6)] and not app.crashed

"""Per-key order with concurrency across keys: the KeyedScheduler."""

from __future__ import annotations

import asyncio
import random

from hookstream.consumers.keyed import KeyedScheduler


async def test_items_of_one_key_run_in_order_and_keys_run_side_by_side():
    done: dict[str, list[int]] = {}
    running = most = 0

    async def work(item: tuple[str, int]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(random.uniform(0, 0.003))
        done.setdefault(item[0], []).append(item[1])
        running -= 1

    scheduler: KeyedScheduler[str, tuple[str, int]] = KeyedScheduler(work)
    for n in range(20):
        for key in "abcdef":
            scheduler.submit(key, (key, n))
    assert scheduler.pending == 120
    await asyncio.wait_for(scheduler.join(), 10)
    assert scheduler.pending == 0
    assert all(done[key] == list(range(20)) for key in "abcdef")
    assert most == 6  # one runner per key, all six at once


async def test_a_failing_item_is_recorded_and_the_key_moves_on():
    seen = []

    async def work(item: int) -> None:
        if item == 1:
            raise ValueError("boom")
        seen.append(item)

    scheduler: KeyedScheduler[str, int] = KeyedScheduler(work)
    for item in range(3):
        scheduler.submit("k", item)
    await asyncio.wait_for(scheduler.join(), 5)
    assert seen == [0, 2]
    assert isinstance(scheduler.failure, ValueError)


async def test_settle_lets_running_items_finish_drops_queued_ones_and_cancels_after_the_timeout():
    release = asyncio.Event()
    finished, cancelled = [], []

    async def work(item: tuple[int, str]) -> None:
        try:
            if item[1] == "stuck":
                await asyncio.sleep(60)
            await release.wait()
            finished.append(item)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    scheduler: KeyedScheduler[int, tuple[int, str]] = KeyedScheduler(work)
    scheduler.submit(0, (0, "running"))
    scheduler.submit(0, (0, "queued"))
    scheduler.submit(1, (1, "stuck"))
    scheduler.submit(2, (2, "other partition"))
    await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_later(0.05, release.set)
    n = await scheduler.settle(lambda key: key in (0, 1), timeout=0.3)
    assert n == 1 and cancelled == [(1, "stuck")]
    assert (0, "running") in finished and (0, "queued") not in finished
    await asyncio.wait_for(scheduler.join(), 5)
    assert (2, "other partition") in finished
    assert scheduler.pending == 0

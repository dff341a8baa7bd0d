"""Consumers against a real broker: retries then the DLQ, redrive, typed events, per-key order
with concurrency across keys, and a consumer added later reading the whole history once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from standardwebhooks.webhooks import Webhook
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from hookstream.config import parse_config
from hookstream.consumers import Consumers
from hookstream.consumers.dlq import dlq_topic
from hookstream.consumers.groups import group_id
from hookstream.consumers.redrive import list_dead_letters, redrive
from hookstream.consumers.registry import resolve_consumers
from hookstream.sample_events import make_raw_event
from hookstream.schemas.envelope import encode_raw_event
from tests.integration.support import (
    create_topic,
    produce_events,
    running_consumers,
    serving_endpoint,
    wait_until,
)
from tests.payloads import stripe_payment_intent

from .support import read_topic

pytestmark = pytest.mark.kafka

SECRET = "whsec_" + "dGVzdC1jb25zdW1lcnMtc2VjcmV0LWtleQ=="
FAST_RETRIES = {"backoff_initial_ms": 10, "backoff_max_ms": 40}


def config_for(bootstrap: str, consumers: dict, *, partitions: int = 4, path: Path | None = None):
    suffix = uuid.uuid4().hex[:8]
    data = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "events_topic": f"test.events.{suffix}",
            "partitions": partitions,
        },
        "consumers": consumers,
    }
    return parse_config(data, path=path, base_dir=path.parent if path else None)


async def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


def end_offsets_of(coordinates: list[tuple[int, int]]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for partition, offset in coordinates:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


# -- a receiver for the http action -----------------------------------------------------------
class Receiver:
    """Verifies each delivery with the official Standard Webhooks library; answers as told."""

    def __init__(self) -> None:
        self.answers: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        self.accepted: list[str] = []
        self.unverified = 0

    async def endpoint(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        try:
            Webhook(SECRET).verify(body, dict(request.headers))
        except Exception:
            self.unverified += 1
            return PlainTextResponse("bad signature", status_code=401)
        event_id = request.headers["webhook-id"]
        self.calls[event_id] += 1
        status = self.answers.get(event_id, 200)
        if status == 200:
            self.accepted.append(event_id)
        return PlainTextResponse("ok" if status == 200 else "no", status_code=status)


def serving(receiver: Receiver) -> contextlib.AbstractAsyncContextManager[str]:
    return serving_endpoint(receiver.endpoint)


async def test_failing_events_go_to_the_dlq_after_max_attempts_and_redrive_delivers_them(
    kafka_bootstrap, tmp_path
):
    receiver = Receiver()
    name = f"forward-{uuid.uuid4().hex[:8]}"
    async with serving(receiver) as url:
        table = {"action": "http", "url": url, "secret": SECRET, "max_attempts": 3, **FAST_RETRIES}
        config = config_for(kafka_bootstrap, {name: table})
        await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
        events = [
            make_raw_event(
                stripe_payment_intent(f"evt_flaky_{name}", "pi_A"),
                event_id=f"evt_flaky_{name}",
                ordering_key="pi_A",
            ),
            make_raw_event(
                stripe_payment_intent(f"evt_ok_{name}", "pi_B"),
                event_id=f"evt_ok_{name}",
                ordering_key="pi_B",
            ),
            make_raw_event(
                stripe_payment_intent(f"evt_after_{name}", "pi_A"),
                event_id=f"evt_after_{name}",
                ordering_key="pi_A",
            ),
            make_raw_event(
                stripe_payment_intent(f"evt_gone_{name}", "pi_C"),
                event_id=f"evt_gone_{name}",
                ordering_key="pi_C",
            ),
        ]
        flaky, ok, after, gone = (e.event_id for e in events)
        receiver.answers = {flaky: 503, gone: 410}
        coordinates = await produce_events(kafka_bootstrap, config.kafka.events_topic, events)

        async with running_consumers(config, [name]):
            await wait_until(lambda: {ok, after} <= set(receiver.accepted), 30, "the healthy events")
            await wait_until(
                _committed_to(kafka_bootstrap, group_id(name), end_offsets_of(coordinates)), 30, "the commit"
            )

        assert receiver.unverified == 0
        # 503 is transient: tried max_attempts times; 410 is permanent: tried once.
        assert receiver.calls[flaky] == 3 and receiver.calls[gone] == 1 and receiver.calls[ok] == 1
        # Per-key order held across the retries: the later event of pi_A waited for the flaky one.
        assert receiver.calls[after] == 1

        entries = await list_dead_letters(config.kafka, name)
        letters = {e.letter.event_id: e.letter for e in entries}
        assert sorted(letters) == sorted([flaky, gone]) and all(e.pending for e in entries)
        by_id = {e.event_id: (e, c) for e, c in zip(events, coordinates, strict=True)}
        for event_id, letter in letters.items():
            event, (partition, offset) = by_id[event_id]
            assert (letter.topic, letter.partition, letter.offset) == (
                config.kafka.events_topic,
                partition,
                offset,
            )
            assert letter.value == encode_raw_event(event) and letter.key == event.ordering_key.encode()
            assert letter.consumer == name and letter.delivery == "live"
        assert letters[flaky].attempts == 3 and not letters[flaky].permanent
        assert "answered 503" in letters[flaky].error and letters[flaky].error_type == "TransientHTTPError"
        assert (
            letters[gone].attempts == 1 and letters[gone].permanent and "answered 410" in letters[gone].error
        )

        # The CLI lists the same, one line each.
        config_file = tmp_path / "hookstream.toml"
        config_file.write_text(_toml(config, name, table))
        listed = await asyncio.create_subprocess_exec(
            *[
                sys.executable,
                "-m",
                "hookstream.consumers",
                "dlq",
                "list",
                "--config",
                str(config_file),
                name,
                "--json",
            ],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        )
        stdout, stderr = await asyncio.wait_for(listed.communicate(), 60)
        assert listed.returncode == 0, stderr.decode()
        rows = [json.loads(line) for line in stdout.decode().splitlines()]
        assert sorted(r["event_id"] for r in rows) == sorted([flaky, gone])
        assert all(r["pending"] and r["event"] == "stripe:payment_intent.succeeded" for r in rows)

        # The receiver recovers; redrive runs both through the consumer's handler again.
        receiver.answers = {}
        [spec] = resolve_consumers(config, [name])
        report = await redrive(config.kafka, spec)
        assert (report.handled, report.dead_lettered) == (2, 0)
        assert receiver.calls[flaky] == 4 and receiver.calls[gone] == 2
        assert await list_dead_letters(config.kafka, name) == []
        everything = await list_dead_letters(config.kafka, name, include_redriven=True)
        assert len(everything) == 2 and not any(e.pending for e in everything)
        # A second redrive has nothing left to do.
        again = await redrive(config.kafka, spec)
        assert (again.handled, again.dead_lettered) == (0, 0)


def _committed_to(bootstrap: str, group: str, ends: dict[int, int]):
    async def check() -> bool:
        committed = await committed_offsets(bootstrap, group)
        return all(committed.get(p, -1) >= end for p, end in ends.items())

    return check


def _toml(config, name: str, table: dict) -> str:
    lines = [
        "[kafka]",
        f'bootstrap_servers = "{config.kafka.bootstrap_servers}"',
        f'events_topic = "{config.kafka.events_topic}"',
        f"[consumers.{name}]",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


async def test_a_typed_event_missing_a_required_field_goes_to_the_dlq_with_the_reason(kafka_bootstrap):
    registry = Consumers()
    name = f"typed-{uuid.uuid4().hex[:8]}"
    amounts: list[int] = []

    @registry.consumer(name, events=["stripe:payment_intent.*"], **FAST_RETRIES)
    async def fulfil(event):
        amounts.append(event.typed.data.object.amount)

    config = config_for(kafka_bootstrap, {})
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 2)
    good = make_raw_event(
        stripe_payment_intent("evt_good", "pi_1", amount=4200), event_id="evt_good", ordering_key="pi_1"
    )
    bad = make_raw_event(
        stripe_payment_intent("evt_bad", "pi_2", amount=None), event_id="evt_bad", ordering_key="pi_2"
    )
    other = make_raw_event(
        {"ref": "refs/heads/main"}, source="github", event_type="push", ordering_key="acme/api"
    )
    coordinates = await produce_events(kafka_bootstrap, config.kafka.events_topic, [good, bad, other])

    async with running_consumers(config, [name], consumers=registry):
        await wait_until(
            _committed_to(kafka_bootstrap, group_id(name), end_offsets_of(coordinates)), 30, "the commit"
        )

    assert amounts == [4200]  # the bad one never reached the handler; the GitHub one is not wanted
    [entry] = await list_dead_letters(config.kafka, name)
    assert entry.letter.event_id == "evt_bad"
    assert entry.letter.error == "stripe payment_intent: missing required field data.object.amount"
    assert (
        entry.letter.error_type == "TypedEventError" and entry.letter.permanent and entry.letter.attempts == 1
    )
    assert [r.value for r in await read_topic(kafka_bootstrap, dlq_topic(name))] == [encode_raw_event(bad)]


async def test_one_key_is_handled_in_order_while_keys_run_concurrently(kafka_bootstrap):
    registry = Consumers()
    name = f"ordered-{uuid.uuid4().hex[:8]}"
    seen: dict[str, list[int]] = defaultdict(list)
    running = 0
    most = 0
    concurrency = 4

    @registry.consumer(name, events=["shop:*"], typed=False, concurrency=concurrency)
    async def handle(event):
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(random.uniform(0, 0.01))
            seen[event.ordering_key].append(event.payload["seq"])
        finally:
            running -= 1

    config = config_for(kafka_bootstrap, {})
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    keys, per_key = 16, 12
    events = [
        make_raw_event({"seq": seq}, source="shop", event_type="order.updated", ordering_key=f"order-{k}")
        for seq in range(per_key)
        for k in range(keys)
    ]
    await produce_events(kafka_bootstrap, config.kafka.events_topic, events)

    async with running_consumers(config, [name], consumers=registry):
        await wait_until(lambda: sum(map(len, seen.values())) == keys * per_key, 60, "every event")

    assert sorted(seen) == sorted(f"order-{k}" for k in range(keys))
    assert all(seqs == list(range(per_key)) for seqs in seen.values()), dict(seen)
    assert 1 < most <= concurrency


async def test_a_consumer_added_later_reads_the_whole_history_exactly_once(kafka_bootstrap):
    registry = Consumers()
    late_name, latest_name = (f"{what}-{uuid.uuid4().hex[:8]}" for what in ("late", "latest"))
    calls: dict[str, Counter[str]] = {late_name: Counter(), latest_name: Counter()}

    @registry.consumer(late_name, start="earliest", typed=False)
    def late(event):  # a sync handler: run in a worker thread
        calls[late_name][event.id] += 1

    @registry.consumer(latest_name, start="latest", typed=False)
    async def latest(event):
        calls[latest_name][event.id] += 1

    config = config_for(kafka_bootstrap, {})
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    history = [make_raw_event({"n": i}, ordering_key=f"pi_{i % 5}") for i in range(40)]
    await produce_events(kafka_bootstrap, config.kafka.events_topic, history)

    async with running_consumers(config, [late_name], consumers=registry):
        await wait_until(lambda: len(calls[late_name]) == 40, 30, "the history")
    assert set(calls[late_name]) == {e.event_id for e in history}

    # Restarted next to a new "latest" consumer: the late one resumes from its commits (no
    # repeats, with no idempotency store to hide them), the latest one sees only new events.
    fresh = [make_raw_event({"n": i}, ordering_key=f"pi_{i % 5}") for i in range(40, 50)]
    async with running_consumers(config, [late_name, latest_name], consumers=registry):
        await produce_events(kafka_bootstrap, config.kafka.events_topic, fresh)
        await wait_until(
            lambda: len(calls[late_name]) == 50 and len(calls[latest_name]) == 10, 30, "the new events"
        )
    assert set(calls[latest_name]) == {e.event_id for e in fresh}
    assert set(calls[late_name].values()) == {1} and set(calls[latest_name].values()) == {1}


async def test_scaling_out_and_back_in_hands_partitions_over_without_loss_repeats_or_reordering(
    kafka_bootstrap,
):
    registry = Consumers()
    name = f"scaled-{uuid.uuid4().hex[:8]}"
    calls: Counter[str] = Counter()
    order: dict[str, list[int]] = defaultdict(list)

    @registry.consumer(name, typed=False, concurrency=4)
    async def handle(event):
        await asyncio.sleep(0.002)
        calls[event.id] += 1
        order[event.ordering_key].append(event.payload["seq"])

    config = config_for(kafka_bootstrap, {})
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    keys = 20
    events = [make_raw_event({"seq": seq}, ordering_key=f"k{k}") for seq in range(30) for k in range(keys)]
    [spec] = resolve_consumers(config, [name], consumers=registry)

    async def publish() -> None:
        for start in range(0, len(events), 20):
            await produce_events(kafka_bootstrap, config.kafka.events_topic, events[start : start + 20])
            await asyncio.sleep(0.1)  # ~3 s of stream, so both rebalances happen mid-stream

    from hookstream.consumers.runtime import ConsumerRuntime

    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first = ConsumerRuntime(config.kafka, spec, stopping=first_stop)
    second = ConsumerRuntime(config.kafka, spec, stopping=second_stop)
    first_task = asyncio.create_task(first.run())
    await wait_until(first.assigned.is_set, 30, "the first member's assignment")
    publishing = asyncio.create_task(publish())
    await wait_until(lambda: len(calls) >= 120, 30, "events before scaling out")
    second_task = asyncio.create_task(second.run())  # scale out: a rebalance splits the partitions
    await wait_until(lambda: second.assigned.is_set() and first.assigned.is_set(), 30, "the split")
    await wait_until(lambda: len(calls) >= 360, 30, "events after scaling out")
    first_stop.set()  # scale in: the second member takes everything over
    await first_task
    await publishing
    await wait_until(lambda: len(calls) == len(events), 60, "every event")
    second_stop.set()
    await second_task

    handled_by = [sum(r.counts.values()) for r in (first, second)]
    assert all(n > 0 for n in handled_by), handled_by
    assert set(calls.values()) == {1}, [k for k, n in calls.items() if n > 1][:5]
    assert all(seqs == list(range(30)) for seqs in order.values())

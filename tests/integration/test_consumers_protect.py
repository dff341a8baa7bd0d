"""Consumers that protect what they fan out to, against a real broker and a real local HTTP
receiver that goes down, slows down and answers 429: a rate limit, a circuit breaker, handler
timeouts, Retry-After, payload filters and transforms."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from hookstream.config import parse_config
from hookstream.consumers import Consumers, Event
from hookstream.consumers.dlq import dlq_topic
from hookstream.consumers.pipeline import Outcome
from hookstream.sample_events import make_raw_event
from hookstream.stage_rules import stage_rules
from tests.integration.support import (
    create_topic,
    produce_events,
    running_consumers,
    serving_endpoint,
    wait_until,
)
from tests.payloads import stripe_payment_intent

from .support import free_port, read_topic

pytestmark = pytest.mark.kafka

SECRET = "whsec_" + "dGVzdC1jb25zdW1lcnMtc2VjcmV0LWtleQ=="
DOWNTIME_SECONDS = float(os.environ.get("HOOKSTREAM_TEST_DOWNTIME_SECONDS", "30"))
"""How long the receiver is down in the breaker test (30 s by default, as a real outage might be)."""


def config_for(bootstrap: str, consumers: dict, partitions: int = 4):
    suffix = uuid.uuid4().hex[:8]
    data = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "events_topic": f"test.events.{suffix}",
            "partitions": partitions,
        },
        "consumers": consumers,
    }
    return parse_config(data, rules=stage_rules())


def events_for(keys: int, per_key: int, tag: str, **payload_extra):
    """``per_key`` events of each of ``keys`` ordering keys, interleaved, numbered per key."""
    out = []
    for seq in range(per_key):
        for k in range(keys):
            key = f"pi_{tag}_{k:02d}"
            payload = stripe_payment_intent(f"evt_{tag}_{k:02d}_{seq:03d}", key, seq=seq, **payload_extra)
            out.append(make_raw_event(payload, event_id=payload["id"], ordering_key=key))
    return out


def assert_in_key_order(received: list[tuple[str, int]]) -> None:
    last: dict[str, int] = {}
    for key, seq in received:
        assert seq > last.get(key, -1), f"{key}: {seq} after {last.get(key)}"
        last[key] = seq


# -- a receiver that fails, slows down and answers 429 ------------------------------------------
@dataclass
class Receiver:
    """Answers 200 unless told otherwise per event id (status, Retry-After, delay) for its first calls."""

    scripted: dict[str, list[tuple[int, str | None, float]]] = field(default_factory=dict)
    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    accepted: list[str] = field(default_factory=list)

    async def endpoint(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        event_id = request.headers["webhook-id"]
        self.calls[event_id].append(time.monotonic())
        script = self.scripted.get(event_id)
        if script:
            status, retry_after, delay = script.pop(0)
            await asyncio.sleep(delay)
            if status != 200:
                headers = {"Retry-After": retry_after} if retry_after else {}
                return PlainTextResponse("not now", status_code=status, headers=headers)
        payload = json.loads(body)
        if event_id not in self.accepted:
            self.accepted.append(event_id)
        return PlainTextResponse(f"ok {payload['id']}")

    def received(self) -> list[tuple[str, int]]:
        """(ordering key, per-key number) of each accepted event, in acceptance order."""
        out = []
        for event_id in self.accepted:
            _, tag, key, seq = event_id.split("_")
            out.append((f"pi_{tag}_{key}", int(seq)))
        return out


def http_consumer(port: int, **settings: object) -> dict:
    """An http action consumer forwarding to the receiver on ``port``, retrying fast."""
    return {
        "action": "http",
        "url": f"http://127.0.0.1:{port}/hooks",
        "secret": SECRET,
        "backoff_initial_ms": 10,
        "backoff_max_ms": 40,
        **settings,
    }


# -- rate limit ---------------------------------------------------------------------------------
async def test_a_rate_limited_consumer_delivers_at_its_rate_in_key_order_losing_nothing(kafka_bootstrap):
    name = f"paced-{uuid.uuid4().hex[:8]}"
    config = config_for(kafka_bootstrap, {})
    events = events_for(25, 21, "rate")  # 525 events: 10.5 s at 50/s
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    await produce_events(kafka_bootstrap, config.kafka.events_topic, events)
    seen: list[tuple[float, str, int]] = []
    consumers = Consumers()

    @consumers.consumer(name, typed=False, rate_limit="50/s", concurrency=2)
    async def handle(event: Event) -> None:
        seen.append((time.monotonic(), event.ordering_key, event.payload["data"]["object"]["seq"]))

    lines: list[str] = []
    most_lag, paused = 0, False
    async with running_consumers(config, [name], consumers=consumers, progress=lines.append) as [runtime]:

        def all_in() -> bool:
            nonlocal most_lag, paused
            most_lag = max(
                most_lag, int(runtime.metrics.value("hookstream_consumer_lag_events", consumer=name))
            )
            paused = paused or runtime._paused
            return len(seen) >= len(events)

        await wait_until(all_in, 40, "every event")
    first, last = seen[0][0], seen[-1][0]
    rate = (len(seen) - 1) / (last - first)
    print(f"rate-limited consumer: {len(seen)} events in {last - first:.2f} s = {rate:.1f}/s")
    assert 45 <= rate <= 55, rate
    assert last - first >= 9.5
    assert sorted((k, s) for _, k, s in seen) == sorted(
        (e.ordering_key, json.loads(e.body)["data"]["object"]["seq"]) for e in events
    )
    assert_in_key_order([(k, s) for _, k, s in seen])
    assert paused, "fetching should have paused while handlers waited for the rate limit"
    assert most_lag > 100
    assert any("rate limit 50/s" in line and "waiting (lag)" in line for line in lines), lines


# -- circuit breaker ----------------------------------------------------------------------------
async def test_a_receiver_down_opens_the_breaker_nothing_is_dead_lettered_and_all_arrives_in_order(
    kafka_bootstrap,
):
    name = f"guarded-{uuid.uuid4().hex[:8]}"
    port = free_port()
    receiver = Receiver()
    config = config_for(
        kafka_bootstrap,
        {
            name: http_consumer(
                port, timeout_seconds=2, max_attempts=3, breaker={"failures": 3, "open_seconds": 1}
            )
        },
    )
    before, during = events_for(6, 3, "up"), events_for(6, 7, "down")
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    async with running_consumers(config, [name]) as [runtime]:
        metric = runtime.metrics.value
        async with serving_endpoint(receiver.endpoint, port):
            await produce_events(kafka_bootstrap, config.kafka.events_topic, before)
            await wait_until(lambda: len(receiver.accepted) == len(before), 30, "the first events")
        down_since = time.monotonic()
        await produce_events(kafka_bootstrap, config.kafka.events_topic, during)
        await wait_until(
            lambda: metric("hookstream_consumer_breaker_state", consumer=name) == 2, 15, "the breaker to open"
        )
        while time.monotonic() - down_since < DOWNTIME_SECONDS:
            await asyncio.sleep(0.5)
            assert metric("hookstream_consumer_dead_lettered_events_total", consumer=name) == 0
        # Probed over and over while down, yet every event still waits rather than failing out.
        assert metric("hookstream_consumer_breaker_transitions_total", consumer=name, state="half-open") >= 2
        async with serving_endpoint(receiver.endpoint, port):
            await wait_until(
                lambda: len(receiver.accepted) == len(before) + len(during),
                60,
                "every event after the outage",
            )
        assert metric("hookstream_consumer_breaker_state", consumer=name) == 0
        assert metric("hookstream_consumer_breaker_transitions_total", consumer=name, state="closed") >= 1
        assert metric("hookstream_consumer_dead_lettered_events_total", consumer=name) == 0
    assert runtime.counts[Outcome.DEAD_LETTERED] == 0
    assert await read_topic(kafka_bootstrap, dlq_topic(name)) == []
    assert sorted(receiver.accepted) == sorted(e.event_id for e in before + during)
    assert_in_key_order(receiver.received())


# -- Retry-After and handler timeouts -----------------------------------------------------------
async def test_retry_after_is_honoured_and_a_slow_call_is_a_failed_attempt(kafka_bootstrap):
    name = f"patient-{uuid.uuid4().hex[:8]}"
    port = free_port()
    events = events_for(3, 1, "ra")
    limited, unavailable, slow = (e.event_id for e in events)
    receiver = Receiver(
        scripted={
            limited: [(429, "2", 0.0)],
            unavailable: [(503, "1", 0.0)],
            slow: [(200, None, 3.0)],  # answers, but too late
        }
    )
    config = config_for(
        kafka_bootstrap,
        {name: http_consumer(port, max_attempts=2, handler_timeout_seconds=0.5)},
    )
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    await produce_events(kafka_bootstrap, config.kafka.events_topic, events)
    async with serving_endpoint(receiver.endpoint, port), running_consumers(config, [name]) as [runtime]:
        await wait_until(lambda: len(receiver.accepted) == 3, 30, "every event")
        failures = runtime.metrics.value
        assert failures("hookstream_consumer_failed_attempts_total", consumer=name, reason="timeout") == 1
        assert failures("hookstream_consumer_failed_attempts_total", consumer=name, reason="error") == 2
    first, second = receiver.calls[limited]
    assert second - first >= 1.9  # not 10-20 ms of backoff: the 2 s the receiver asked for
    first, second = receiver.calls[unavailable]
    assert second - first >= 0.9
    first, second = receiver.calls[slow]
    assert 0.4 <= second - first < 2.5  # retried after the 0.5 s timeout, not after the 3 s answer
    assert await read_topic(kafka_bootstrap, dlq_topic(name)) == []


# -- filters and transforms ---------------------------------------------------------------------
def reshape(event: Event) -> Event | None:
    """Drops small payments, refuses 666, and adds the amount in euros to the rest."""
    amount = event.payload["data"]["object"]["amount"]
    if amount < 100:
        return None
    if amount == 666:
        raise ValueError("666 is not an amount we take")
    return event.with_payload({**event.payload, "euros": amount / 100})


async def test_filters_and_transforms_choose_and_reshape_what_the_action_gets(kafka_bootstrap, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    chosen, reshaped = f"chosen-{suffix}", f"reshaped-{suffix}"
    config = config_for(
        kafka_bootstrap,
        {
            chosen: {
                "action": "jsonl",
                "path": str(tmp_path / "chosen.jsonl"),
                "filter": {
                    "body.data.object.amount": {"$gte": 1000},
                    "body.data.object.currency": {"$in": ["eur", "usd"]},
                    "$not": {"headers.x-test": {"$exists": True}},
                },
            },
            reshaped: {
                "action": "jsonl",
                "path": str(tmp_path / "reshaped.jsonl"),
                "transform": f"{__name__}:reshape",
            },
        },
    )
    amounts = [50, 1500, 666, 2000, 999, 1200]
    currencies = ["eur", "eur", "eur", "gbp", "usd", "usd"]
    events = []
    for i, (amount, currency) in enumerate(zip(amounts, currencies, strict=True)):
        payload = stripe_payment_intent(f"evt_ft_{i}", f"pi_ft_{i % 2}", amount=amount, currency=currency)
        headers = {"X-Test": "1"} if i == 5 else {}
        events.append(
            make_raw_event(payload, event_id=payload["id"], ordering_key=f"pi_ft_{i % 2}", headers=headers)
        )
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 4)
    await produce_events(kafka_bootstrap, config.kafka.events_topic, events)

    def lines(file: str) -> list[dict]:
        path = tmp_path / file
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    async with running_consumers(config, [chosen, reshaped]) as [first, second]:
        await wait_until(
            lambda: sum(first.counts.values()) == 1 and sum(second.counts.values()) == 6, 30, "both consumers"
        )
        await wait_until(
            lambda: not any(p.offsets.pending for p in first._partitions.values()), 10, "commits"
        )
        assert (
            first.metrics.value("hookstream_consumer_filtered_events_total", consumer=chosen, reason="filter")
            == 5
        )
        dropped = second.metrics.value(
            "hookstream_consumer_filtered_events_total", consumer=reshaped, reason="transform"
        )
        assert dropped == 1
    assert [line["event_id"] for line in lines("chosen.jsonl")] == ["evt_ft_1"]
    written = {line["event_id"]: line["payload"] for line in lines("reshaped.jsonl")}
    assert sorted(written) == ["evt_ft_1", "evt_ft_3", "evt_ft_4", "evt_ft_5"]
    assert written["evt_ft_3"]["euros"] == 20.0 and written["evt_ft_4"]["euros"] == 9.99
    [letter] = await read_topic(kafka_bootstrap, dlq_topic(reshaped))
    reason = dict(letter.headers)["hookstream-dlq-error"].decode()
    assert reason == f"transform {__name__}:reshape raised ValueError: 666 is not an amount we take"
    assert await read_topic(kafka_bootstrap, dlq_topic(chosen)) == []

"""The per-event pipeline without Kafka: retries with backoff, the DLQ and its reasons, typed
decoding, the stop cutting a retry short."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from hookstream.config import ConsumerConfig
from hookstream.consumers.actions import FunctionAction
from hookstream.consumers.dlq import DeadLetter
from hookstream.consumers.errors import PermanentError
from hookstream.consumers.events import current_event
from hookstream.consumers.patterns import EventFilter
from hookstream.consumers.pipeline import Outcome, Pipeline
from hookstream.consumers.registry import ConsumerSpec
from hookstream.sample_events import make_raw_event
from hookstream.schemas.envelope import encode_raw_event, record_headers
from tests.payloads import stripe_payment_intent


@dataclass
class Record:
    value: bytes
    key: bytes | None = b"pi_1"
    topic: str = "hookstream.events"
    partition: int = 2
    offset: int = 41
    timestamp: int = 1_700_000_000_000
    headers: tuple = field(default_factory=lambda: tuple(record_headers()))


class Letters:
    topic = "hookstream.dlq.test"

    def __init__(self) -> None:
        self.written: list[DeadLetter] = []

    async def write(self, letter: DeadLetter) -> None:
        self.written.append(letter)


def pipeline(handler, *, typed=False, events=("*",), max_attempts=3, stopping=None):
    settings = ConsumerConfig(
        name="test",
        events=events,
        max_attempts=max_attempts,
        backoff_initial_ms=1,
        backoff_max_ms=2,
        typed=typed,
    )
    spec = ConsumerSpec(settings, EventFilter.of(events), lambda: FunctionAction(handler, "h"), "test")
    letters = Letters()
    return Pipeline(spec, FunctionAction(handler, "h"), letters, stopping or asyncio.Event()), letters


def record_of(payload, **kwargs) -> Record:
    return Record(encode_raw_event(make_raw_event(payload, event_id="evt_1", **kwargs)))


async def test_a_transient_failure_is_retried_and_then_succeeds():
    attempts = []

    async def handler(event):
        attempts.append(event.attempt)
        assert current_event.get() is event
        if event.attempt < 3:
            raise ConnectionError("receiver down")

    p, letters = pipeline(handler)
    work = p.prepare(record_of({"x": 1}))
    assert await p.deliver(work) is Outcome.HANDLED
    assert attempts == [1, 2, 3] and letters.written == []


async def test_after_max_attempts_the_event_goes_to_the_dlq_with_error_attempts_and_coordinates():
    async def handler(event):
        raise ConnectionError(f"receiver down (attempt {event.attempt})")

    p, letters = pipeline(handler)
    record = record_of({"x": 1})
    assert await p.deliver(p.prepare(record)) is Outcome.DEAD_LETTERED
    [letter] = letters.written
    assert (letter.error, letter.error_type, letter.attempts, letter.permanent) == (
        "receiver down (attempt 3)",
        "ConnectionError",
        3,
        False,
    )
    assert (letter.topic, letter.partition, letter.offset, letter.timestamp_ms) == (
        "hookstream.events",
        2,
        41,
        record.timestamp,
    )
    assert (letter.key, letter.value, letter.event_id, letter.delivery) == (
        b"pi_1",
        record.value,
        "evt_1",
        "live",
    )


async def test_a_permanent_error_skips_the_retries():
    calls = []

    def handler(event):  # sync handlers run in a worker thread
        calls.append(event.id)
        raise PermanentError("order 6735 does not exist")

    p, letters = pipeline(handler)
    assert await p.deliver(p.prepare(record_of({}))) is Outcome.DEAD_LETTERED
    assert calls == ["evt_1"] and letters.written[0].permanent and letters.written[0].attempts == 1


async def test_typed_consumers_get_the_typed_view_and_bad_payloads_go_to_the_dlq_unhandled():
    amounts = []

    async def handler(event):
        amounts.append(event.typed.data.object.amount)

    p, letters = pipeline(handler, typed=True)
    assert (
        await p.deliver(p.prepare(record_of(stripe_payment_intent("evt_1", "pi_1", amount=1234))))
        is Outcome.HANDLED
    )
    bad = record_of(stripe_payment_intent("evt_1", "pi_1", amount=None))
    assert await p.deliver(p.prepare(bad)) is Outcome.DEAD_LETTERED
    wrong = record_of(stripe_payment_intent("evt_1", "pi_1", amount="12.34"))
    assert await p.deliver(p.prepare(wrong)) is Outcome.DEAD_LETTERED
    not_json = Record(encode_raw_event(make_raw_event(None, body=b"<xml/>")))
    assert await p.deliver(p.prepare(not_json)) is Outcome.DEAD_LETTERED
    assert amounts == [1234]
    reasons = [letter.error for letter in letters.written]
    assert reasons[0] == "stripe payment_intent: missing required field data.object.amount"
    assert reasons[1] == 'stripe payment_intent: field data.object.amount must be an integer, got str "12.34"'
    assert reasons[2].startswith("body is not valid JSON")
    # Events without a typed view still reach a typed consumer, with typed=None.
    seen = []
    p2, _ = pipeline(lambda event: seen.append((event.typed, event.payload)), typed=True)
    await p2.deliver(p2.prepare(record_of({"a": 1}, source="acme", event_type="thing.happened")))
    assert seen == [(None, {"a": 1})]


async def test_untyped_consumers_take_any_body():
    seen = []
    p, letters = pipeline(lambda event: seen.append((event.payload, event.body)))
    await p.deliver(p.prepare(Record(encode_raw_event(make_raw_event(None, body=b"\x00binary")))))
    assert seen == [(None, b"\x00binary")] and letters.written == []


async def test_records_that_are_not_envelopes_go_to_the_dlq_and_unwanted_events_are_skipped():
    p, letters = pipeline(lambda event: None, events=("github:*",))
    assert p.prepare(record_of({}, source="stripe")) is None
    work = p.prepare(Record(b"definitely not avro"))
    assert await p.deliver(work) is Outcome.DEAD_LETTERED
    assert (
        letters.written[0].error.startswith("not a RawEvent envelope") and letters.written[0].event_id == ""
    )


async def test_a_stop_cuts_the_backoff_short_and_leaves_the_event_undone():
    stopping = asyncio.Event()

    async def handler(event):
        stopping.set()
        raise ConnectionError("down")

    settings = ConsumerConfig(name="t", max_attempts=5, backoff_initial_ms=60_000, backoff_max_ms=60_000)
    p = Pipeline(
        ConsumerSpec(settings, EventFilter.of(["*"]), lambda: None, "t"),
        FunctionAction(handler, "h"),
        Letters(),
        stopping,
    )
    outcome = await asyncio.wait_for(p.deliver(p.prepare(record_of({}))), 5)
    assert outcome is Outcome.INTERRUPTED and p.dead_letters.written == []


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_at_most_concurrency_handlers_run_at_once(concurrency):
    running = most = 0

    async def handler(event):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    settings = ConsumerConfig(name="t", concurrency=concurrency)
    p = Pipeline(
        ConsumerSpec(settings, EventFilter.of(["*"]), lambda: None, "t"),
        FunctionAction(handler, "h"),
        Letters(),
        asyncio.Event(),
    )
    await asyncio.gather(*(p.deliver(p.prepare(record_of({}))) for _ in range(10)))
    assert most == concurrency

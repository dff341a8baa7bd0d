"""One consumer's work on one record: decode, filter, type, transform, handle with retries
(within the rate limit, the circuit breaker and the handler timeout), dead-letter.

Shared by the live runtime, ``replay`` and ``dlq redrive``, so the three treat events alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from hookstream.config import KafkaConfig
from hookstream.errors import PayloadError
from hookstream.kafka.admin import retrying
from hookstream.kafka.message_size import refused_as_too_large
from hookstream.schemas.delivery import Delivery, Headers, parse_payload
from hookstream.schemas.envelope import RawEvent, decode_raw_event
from hookstream.schemas.typed_events import TypedEventError, decode_typed, typed_view

from .actions import Action
from .backoff import backoff_seconds
from .breaker import BreakerState, CircuitBreaker, Ticket
from .dlq import DeadLetter, dead_letter_of, dlq_topic
from .errors import PermanentError
from .events import Event, current_event
from .filters import event_document
from .groups import consumers_admin
from .keyed import KeyedScheduler
from .metrics import BREAKER_STATES, ConsumerMetrics
from .ratelimit import TokenBucket, parse_rate
from .registry import ConsumerSpec

log = logging.getLogger("hookstream.consumers")


class Outcome(enum.Enum):
    HANDLED = "handled"
    DEAD_LETTERED = "dead-lettered"
    DROPPED = "dropped"
    """The consumer's transform returned None: done, without the action."""
    INTERRUPTED = "interrupted"
    """Stopped (or the partition was taken away) before it finished: it will be delivered again."""


@dataclass
class Work:
    """A record on its way through the pipeline."""

    record: Any
    raw: RawEvent | None
    error: Exception | None = None
    """Set when the record cannot be an event at all (not a RawEvent): dead-lettered unhandled."""
    delivery: str = "live"
    abandon: asyncio.Event | None = None
    """Set when the work should stop retrying (its partition was revoked)."""
    tag: Any = field(default=None, repr=False)
    """Whatever the caller needs back (the runtime keeps the partition's bookkeeping here)."""


class DeadLetterWriter:
    """Produces dead letters to ``hookstream.dlq.<consumer>`` and waits for Kafka's ack."""

    def __init__(self, kafka: KafkaConfig, consumer: str) -> None:
        self.kafka = kafka
        self.topic = dlq_topic(consumer)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Create the DLQ topic to take records of ``kafka.max_message_bytes`` (a dead letter is a
        copy of an event, however large); an existing one is left as it is, with a warning if it
        takes less."""

        async def create() -> None:
            async with consumers_admin(self.kafka) as admin:
                await admin.ensure_sized_topic(self.topic, 1, log)

        await retrying(create, f"cannot create topic {self.topic}")
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            client_id=f"{self.kafka.client_id}-dlq",
            acks="all",
            enable_idempotence=True,
            max_request_size=self.kafka.max_message_bytes,  # a dead letter is as large as its event
        )
        await self._producer.start()

    async def write(self, letter: DeadLetter) -> None:
        """Keep trying until Kafka acknowledges: an event leaves the consumer only into the DLQ."""
        assert self._producer is not None, "start() first"
        delay = 0.5
        while True:
            delivery = None
            try:
                delivery = await self._producer.send(
                    self.topic, value=letter.value, key=letter.key, headers=letter.headers()
                )
                await delivery
                return
            except KafkaError as exc:
                # The broker's answer (not the producer's own check): refused on every try until
                # the topic's limit is raised, so the log says how.
                refused = delivery is not None and isinstance(exc, MessageSizeTooLargeError)
                error = refused_as_too_large(self.topic, self.kafka) if refused else str(exc)
                log.warning(
                    "cannot write to the DLQ yet; retrying",
                    extra={"topic": self.topic, "error": error, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class HandlerTimeout(Exception):
    """A handler call ran longer than the consumer's ``handler_timeout_seconds``: a failed attempt."""


class TransformFailed(PermanentError):
    """The consumer's transform raised or returned something else than an Event or None."""


class Pipeline:
    def __init__(
        self,
        spec: ConsumerSpec,
        action: Action,
        dead_letters: DeadLetterWriter,
        stopping: asyncio.Event,
        *,
        rng: random.Random | None = None,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.settings = spec.settings
        self.action = action
        self.dead_letters = dead_letters
        self.stopping = stopping
        self.rng = rng or random.Random()
        self.slots = asyncio.Semaphore(self.settings.concurrency)
        self.counts = {outcome: 0 for outcome in Outcome}
        self.metrics = metrics or ConsumerMetrics()
        name = self.settings.name
        self.bucket = TokenBucket(parse_rate(self.settings.rate_limit)) if self.settings.rate_limit else None
        self.breaker: CircuitBreaker | None = None
        if self.settings.breaker is not None:
            self.breaker = CircuitBreaker(self.settings.breaker, on_change=self._breaker_moved)
            self.metrics.breaker_state.labels(name).set(0)
        self.timeout = self.settings.handler_timeout_seconds or None

    def _breaker_moved(self, old: BreakerState, new: BreakerState, why: str) -> None:
        name = self.settings.name
        self.metrics.breaker_state.labels(name).set(BREAKER_STATES[new.value])
        self.metrics.breaker_transitions.labels(name, new.value).inc()
        level = logging.INFO if new is BreakerState.CLOSED else logging.WARNING
        log.log(
            level,
            f"circuit breaker {new.value}",
            extra={"consumer": name, "from": old.value, "to": new.value, "why": why},
        )

    def prepare(self, record: Any, delivery: str = "live") -> Work | None:
        """The work for ``record``, or None when the consumer does not want the event (counted)."""
        try:
            raw = decode_raw_event(record.value, record.headers)
        except Exception as exc:  # any decoding failure means "not a RawEvent"
            return Work(record, None, PermanentError(f"not a RawEvent envelope: {exc}"), delivery)
        if not self.spec.filter.matches(raw.source, raw.event_type):
            self.metrics.filtered.labels(self.settings.name, "events").inc()
            return None
        if self.spec.payload_filter is not None:
            try:
                payload = parse_payload(
                    Delivery(body=raw.body, headers=Headers(raw.headers), content_type=raw.content_type)
                )
            except PayloadError:
                payload = None
            if not self.spec.payload_filter.matches(event_document(raw, payload)):
                self.metrics.filtered.labels(self.settings.name, "filter").inc()
                return None
        return Work(record, raw, delivery=delivery)

    def _event(self, work: Work) -> Event:
        raw = work.raw
        assert raw is not None
        view = typed_view(raw.provider, raw.event_type) if self.settings.typed else None
        try:
            payload = parse_payload(
                Delivery(body=raw.body, headers=Headers(raw.headers), content_type=raw.content_type)
            )
        except PayloadError:
            if view is not None:
                raise
            payload = None
        typed = decode_typed(raw.provider, raw.event_type, payload) if view is not None else None
        return Event(
            raw=raw,
            payload=payload,
            typed=typed,
            consumer=self.settings.name,
            topic=work.record.topic,
            partition=work.record.partition,
            offset=work.record.offset,
            replay=work.delivery == "replay",
        )

    async def deliver(self, work: Work) -> Outcome:
        outcome = await self._deliver(work)
        self.counts[outcome] += 1
        if outcome is Outcome.HANDLED:
            self.metrics.handled.labels(self.settings.name).inc()
        elif outcome is Outcome.DEAD_LETTERED:
            self.metrics.dead_lettered.labels(self.settings.name).inc()
        elif outcome is Outcome.DROPPED:
            self.metrics.filtered.labels(self.settings.name, "transform").inc()
        return outcome

    async def _transformed(self, event: Event) -> Event | None:
        """The consumer's transform applied (once per event, before any attempt)."""
        transform = self.spec.transform
        label = self.settings.transform or "transform"
        try:
            result = transform(event)  # type: ignore[misc]
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise TransformFailed(f"transform {label} raised {type(exc).__name__}: {exc}") from exc
        if result is not None and not isinstance(result, Event):
            raise TransformFailed(f"transform {label} returned {type(result).__name__}, not an Event or None")
        if result is not None and result.payload is not event.payload and self.settings.typed:
            view = typed_view(result.provider, result.type)
            if view is not None:
                result = replace(result, typed=decode_typed(result.provider, result.type, result.payload))
        return result

    async def _call(self, event: Event) -> None:
        if self.timeout is None:
            await self.action(event)
            return
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                await self.action(event)
        except TimeoutError:
            if deadline.expired():
                raise HandlerTimeout(f"handler ran longer than {self.timeout:g} s") from None
            raise

    async def _breaker_turn(self, work: Work) -> Ticket | None:
        """Wait while the breaker is open; None if a stop (or losing the partition) came first."""
        assert self.breaker is not None
        while (ticket := self.breaker.admit()) is None:
            if not await self._pause(min(max(self.breaker.wait_seconds(), 0.05), 1.0), work):
                return None
        return ticket

    async def _rate_limited(self, work: Work) -> bool:
        """Wait for the rate limit's token; False if a stop (or losing the partition) came first."""
        assert self.bucket is not None
        take = asyncio.ensure_future(self.bucket.take())
        waiters = [asyncio.ensure_future(self.stopping.wait())]
        if work.abandon is not None:
            waiters.append(asyncio.ensure_future(work.abandon.wait()))
        try:
            await asyncio.wait([take, *waiters], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            if not take.done():
                take.cancel()
            await asyncio.gather(take, *waiters, return_exceptions=True)
        if take.cancelled() or take.exception() is not None:
            return False
        self.metrics.rate_limited_seconds.labels(self.settings.name).inc(take.result())
        return True

    async def _deliver(self, work: Work) -> Outcome:
        if work.error is not None:
            await self._dead_letter(work, work.error, attempts=1, permanent=True)
            return Outcome.DEAD_LETTERED
        try:
            base = self._event(work)
        except (TypedEventError, PayloadError) as exc:
            await self._dead_letter(work, exc, attempts=1, permanent=True)
            return Outcome.DEAD_LETTERED
        if self.spec.transform is not None:
            try:
                transformed = await self._transformed(base)
            except (TransformFailed, TypedEventError) as exc:
                await self._dead_letter(work, exc, attempts=1, permanent=True)
                return Outcome.DEAD_LETTERED
            if transformed is None:
                return Outcome.DROPPED
            base = transformed
        return await self._attempts(work, base)

    async def _attempts(self, work: Work, base: Event) -> Outcome:
        """Call the action until it succeeds, up to ``max_attempts`` failures. A failure the
        circuit breaker takes on itself (it opened, or a probe failed) uses up no attempt: the
        event waits for the receiver instead of heading for the DLQ."""
        name, attempts, breaker = self.settings.name, self.settings.max_attempts, self.breaker
        last: Exception | None = None
        attempt = 0
        while True:
            if self.bucket is not None and not await self._rate_limited(work):
                return Outcome.INTERRUPTED
            ticket = None
            if breaker is not None and (ticket := await self._breaker_turn(work)) is None:
                return Outcome.INTERRUPTED
            attempt += 1
            event = replace(base, attempt=attempt)
            token = current_event.set(event)
            settled = False
            try:
                async with self.slots:
                    await self._call(event)
                settled = True
                if ticket is not None:
                    breaker.succeeded(ticket)  # type: ignore[union-attr]
                return Outcome.HANDLED
            except PermanentError as exc:
                settled = True
                if ticket is not None:  # the receiver answered, so it is up
                    breaker.succeeded(ticket)  # type: ignore[union-attr]
                await self._dead_letter(work, exc, attempts=attempt, permanent=True)
                return Outcome.DEAD_LETTERED
            except Exception as exc:  # any other failure is worth another try
                settled = True
                last = exc
            finally:
                current_event.reset(token)
                if not settled and ticket is not None:  # cancelled mid-call
                    breaker.released(ticket)  # type: ignore[union-attr]
            retry_after = getattr(last, "retry_after", None)
            retry_after = float(retry_after) if isinstance(retry_after, int | float) else None
            timed_out = isinstance(last, HandlerTimeout)
            self.metrics.failed_attempts.labels(name, "timeout" if timed_out else "error").inc()
            if ticket is not None and breaker.failed(ticket, retry_after):  # type: ignore[union-attr]
                attempt -= 1
                continue
            if attempt >= attempts:
                break
            delay = backoff_seconds(
                attempt, self.settings.backoff_initial_ms, self.settings.backoff_max_ms, self.rng
            )
            delay = max(delay, retry_after or 0.0)
            log.warning(
                "handler failed; retrying",
                extra={
                    "consumer": name,
                    "event_id": base.id,
                    "attempt": attempt,
                    "of": attempts,
                    "error": f"{type(last).__name__}: {last}",
                    "retry_in_s": round(delay, 3),
                },
            )
            if not await self._pause(delay, work):
                return Outcome.INTERRUPTED
        assert last is not None
        await self._dead_letter(work, last, attempts=attempts, permanent=False)
        return Outcome.DEAD_LETTERED

    async def _pause(self, seconds: float, work: Work) -> bool:
        """Sleep before a retry; False if a stop (or losing the partition) cut it short."""
        waiters = [asyncio.ensure_future(self.stopping.wait())]
        if work.abandon is not None:
            waiters.append(asyncio.ensure_future(work.abandon.wait()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)
        return not done

    async def _dead_letter(self, work: Work, error: Exception, *, attempts: int, permanent: bool) -> None:
        letter = dead_letter_of(
            work.record,
            consumer=self.settings.name,
            error=error,
            attempts=attempts,
            permanent=permanent,
            event_id=work.raw.event_id if work.raw else "",
            delivery=work.delivery,
        )
        log.error(
            "event dead-lettered",
            extra={
                "consumer": self.settings.name,
                "event_id": letter.event_id,
                "attempts": attempts,
                "error": letter.error,
                "dlq": self.dead_letters.topic,
            },
        )
        await self.dead_letters.write(letter)


class OneShot:
    """A pipeline run over a bounded set of records (replay, redrive): per-key order, bounded
    concurrency and backpressure as in the live consumer, without a consumer group."""

    def __init__(
        self,
        pipeline: Pipeline,
        stopping: asyncio.Event,
        on_done: Callable[[Work, Outcome], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.stopping = stopping
        self.on_done = on_done
        self.scheduler: KeyedScheduler[tuple[int, bytes | None], Work] = KeyedScheduler(
            self._process, name=pipeline.settings.name
        )
        self.max_pending = max(200, 64 * pipeline.settings.concurrency)

    async def submit(self, work: Work) -> None:
        while self.scheduler.pending >= self.max_pending and not self.stopping.is_set():
            await self.scheduler.wait_changed(0.5)
        self.scheduler.submit((work.record.partition, work.record.key), work)

    async def _process(self, work: Work) -> None:
        outcome = await self.pipeline.deliver(work)
        if self.on_done is not None:
            self.on_done(work, outcome)

    async def finish(self) -> None:
        """Wait for everything submitted; on a stop, for what runs (bounded), dropping the rest."""
        joined = asyncio.ensure_future(self.scheduler.join())
        stopped = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait([joined, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not joined.done():
            joined.cancel()
            await self.scheduler.settle(lambda key: True, self.pipeline.settings.drain_timeout_seconds)
        if self.scheduler.failure is not None:
            raise RuntimeError("internal error in event handling") from self.scheduler.failure


@contextlib.asynccontextmanager
async def one_shot(
    kafka: KafkaConfig,
    spec: ConsumerSpec,
    stopping: asyncio.Event,
    on_done: Callable[[Work, Outcome], None] | None = None,
) -> AsyncIterator[OneShot]:
    """The consumer's action and DLQ, opened for a bounded run and closed after it."""
    action = spec.make_action()
    dead_letters = DeadLetterWriter(kafka, spec.name)
    await action.open()
    try:
        await dead_letters.start()
        run = OneShot(Pipeline(spec, action, dead_letters, stopping), stopping, on_done)
        try:
            yield run
        except BaseException:
            await run.scheduler.settle(lambda key: True, 0)
            raise
        await run.finish()
    finally:
        await dead_letters.stop()
        await action.close()

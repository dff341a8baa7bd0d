"""The dead-letter topic of a consumer: ``hookstream.dlq.<consumer>``.

Format: each dead letter is the original record, unchanged (same key, same value bytes: the
Avro RawEvent, so it can be decoded, redriven or re-verified like the original), plus record
headers that say why and where from:

==============================  =================================================================
``hookstream-dlq-consumer``     the consumer's name
``hookstream-dlq-error``        the reason, one line (e.g. ``stripe payment_intent: missing
                                required field data.object.amount``)
``hookstream-dlq-error-type``   the exception's class name (``TypedEventError``, ``HTTPStatus``…)
``hookstream-dlq-permanent``    ``true`` when the error was not retried (bad data, a 4xx answer)
``hookstream-dlq-attempts``     how many times the handler ran
``hookstream-dlq-topic``        original topic
``hookstream-dlq-partition``    original partition
``hookstream-dlq-offset``       original offset
``hookstream-dlq-timestamp``    original record timestamp (epoch ms)
``hookstream-dlq-failed-at``    when it was dead-lettered (epoch ms)
``hookstream-dlq-event-id``     the event id (when the envelope could be decoded)
``hookstream-dlq-delivery``     ``live``, ``replay`` or ``redrive`` (which path dead-lettered it)
==============================  =================================================================

The original record's own headers (e.g. the schema fingerprint ``hookstream-schema``) are kept.
Headers rather than a wrapper schema: any Kafka tool shows them, and the value stays byte-exact.
The topic has one partition, so dead letters keep one order and ``dlq list`` numbers them simply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREFIX = "hookstream-dlq-"
MAX_ERROR_CHARS = 2000


def dlq_topic(consumer: str) -> str:
    return f"hookstream.dlq.{consumer}"


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: why, where from, and the original record."""

    consumer: str
    error: str
    error_type: str
    permanent: bool
    attempts: int
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    failed_at_ms: int
    event_id: str
    delivery: str
    key: bytes | None
    value: bytes
    original_headers: tuple[tuple[str, bytes], ...]
    dlq_partition: int = -1
    dlq_offset: int = -1

    def headers(self) -> list[tuple[str, bytes]]:
        ours = {
            "consumer": self.consumer,
            "error": self.error,
            "error-type": self.error_type,
            "permanent": "true" if self.permanent else "false",
            "attempts": str(self.attempts),
            "topic": self.topic,
            "partition": str(self.partition),
            "offset": str(self.offset),
            "timestamp": str(self.timestamp_ms),
            "failed-at": str(self.failed_at_ms),
            "event-id": self.event_id,
            "delivery": self.delivery,
        }
        kept = [(k, v) for k, v in self.original_headers if not k.startswith(PREFIX)]
        return kept + [(PREFIX + k, v.encode("utf-8")) for k, v in ours.items()]

    @property
    def failed_at(self) -> datetime:
        return datetime.fromtimestamp(self.failed_at_ms / 1000, tz=UTC)

    def summary(self) -> dict[str, Any]:
        """For ``dlq list``: everything but the value."""
        return {
            "dlq_offset": f"{self.dlq_partition}:{self.dlq_offset}",
            "event_id": self.event_id,
            "error": self.error,
            "error_type": self.error_type,
            "permanent": self.permanent,
            "attempts": self.attempts,
            "original": f"{self.topic}/{self.partition}:{self.offset}",
            "failed_at": self.failed_at.isoformat(),
            "delivery": self.delivery,
        }


def one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 1] + "…"


def dead_letter_of(
    record: Any,
    *,
    consumer: str,
    error: BaseException,
    attempts: int,
    permanent: bool,
    event_id: str,
    delivery: str,
    now_ms: int | None = None,
) -> DeadLetter:
    """The dead letter for a consumed ``record`` (an aiokafka ConsumerRecord or alike)."""
    message = str(error) or type(error).__name__
    return DeadLetter(
        consumer=consumer,
        error=one_line(message),
        error_type=type(error).__name__,
        permanent=permanent,
        attempts=attempts,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        failed_at_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        event_id=event_id,
        delivery=delivery,
        key=record.key,
        value=record.value,
        original_headers=tuple(record.headers or ()),
    )


def parse_dead_letter(record: Any) -> DeadLetter:
    """A DeadLetter from a record of a DLQ topic; ValueError if it is not one of ours."""
    ours: dict[str, str] = {}
    original: list[tuple[str, bytes]] = []
    for key, value in record.headers or ():
        if key.startswith(PREFIX):
            ours[key[len(PREFIX) :]] = value.decode("utf-8", "replace")
        else:
            original.append((key, value))
    try:
        return DeadLetter(
            consumer=ours["consumer"],
            error=ours.get("error", ""),
            error_type=ours.get("error-type", ""),
            permanent=ours.get("permanent") == "true",
            attempts=int(ours.get("attempts", "0")),
            topic=ours["topic"],
            partition=int(ours["partition"]),
            offset=int(ours["offset"]),
            timestamp_ms=int(ours.get("timestamp", "0")),
            failed_at_ms=int(ours.get("failed-at", "0")),
            event_id=ours.get("event-id", ""),
            delivery=ours.get("delivery", "live"),
            key=record.key,
            value=record.value,
            original_headers=tuple(original),
            dlq_partition=record.partition,
            dlq_offset=record.offset,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a hookstream dead letter (header {exc} missing or malformed)") from None

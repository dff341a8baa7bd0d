"""What a handler receives: one event from the events topic, with its parsed and typed views."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from hookstream.schemas.envelope import RawEvent
from hookstream.schemas.typed_events import TypedRecord


@dataclass(frozen=True)
class Event:
    """One delivery of an event to a consumer.

    ``payload`` is the body parsed as the provider sends it (JSON, or a form as a dict; None when
    it is neither). ``typed`` is the schema-checked typed view (``schemas/typed/``) when the
    consumer asked for typed events and one exists for this provider and event type, else None.
    ``replay`` is true when ``hookstream replay`` re-delivers the event: idempotency stores let
    it through on purpose.
    """

    raw: RawEvent
    payload: Any
    typed: TypedRecord | None
    consumer: str
    topic: str
    partition: int
    offset: int
    attempt: int = 1
    replay: bool = False

    @property
    def id(self) -> str:
        return self.raw.event_id

    @property
    def source(self) -> str:
        return self.raw.source

    @property
    def provider(self) -> str:
        return self.raw.provider

    @property
    def type(self) -> str:
        return self.raw.event_type

    @property
    def ordering_key(self) -> str:
        return self.raw.ordering_key

    @property
    def received_at(self) -> datetime:
        return self.raw.received_at

    @property
    def created_at(self) -> datetime | None:
        return self.raw.created_at

    @property
    def late(self) -> bool:
        return self.raw.late

    @property
    def body(self) -> bytes:
        """The raw body, byte-exact as the provider sent it."""
        return self.raw.body

    @property
    def headers(self) -> dict[str, str]:
        return self.raw.headers

    def with_payload(self, payload: Any) -> Event:
        """This event carrying ``payload`` instead (for transforms): the body becomes its JSON,
        so actions that send or store the body send or store the new one."""
        body = orjson.dumps(payload)
        raw = replace(self.raw, body=body, content_type="application/json")
        return replace(self, raw=raw, payload=payload, typed=None)


current_event: contextvars.ContextVar[Event | None] = contextvars.ContextVar(
    "hookstream_current_event", default=None
)
"""The event whose handler is running in this task (the idempotency helper reads ``replay`` here)."""

"""How the console shows an event: its fields as plain data (the JSON answer and the template's
input are the same dict), headers with secret-bearing values masked, the body byte-exact in the
views that fit it. Everything here came from a provider and is untrusted: it is only ever data,
escaped by the templates."""

from __future__ import annotations

import json
from typing import Any

from hookstream.schemas.envelope import RawEvent
from hookstream.schemas.refused import masked_headers

HEX_LIMIT = 65_536
"""Bytes of a non-UTF-8 body shown as hex; the rest is summarised."""


def body_views(body: bytes) -> dict[str, Any]:
    """The body as pretty JSON (when it parses), raw text (when UTF-8), or hex (when not)."""
    views: dict[str, Any] = {"bytes": len(body)}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        shown = body[:HEX_LIMIT]
        views["hex"] = " ".join(f"{b:02x}" for b in shown)
        views["hex_truncated"] = len(body) > len(shown)
        return views
    views["text"] = text
    try:
        views["json"] = json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError:
        pass
    return views


def typed_of(event: RawEvent) -> dict[str, Any] | None:
    """The typed view, where the provider and event type have one: its data, or why it does not fit."""
    from hookstream.errors import PayloadError
    from hookstream.schemas.typed_events import decode_typed, typed_view

    view = typed_view(event.provider, event.event_type)
    if view is None:
        return None
    try:
        record = decode_typed(event.provider, event.event_type, json.loads(event.body))
    except (PayloadError, ValueError) as exc:
        return {"schema": view.schema_name, "error": str(exc)}
    if record is None:
        return None
    return {"schema": view.schema_name, "json": json.dumps(record.to_dict(), indent=2, default=str)}


def event_summary(event: RawEvent, partition: int, offset: int, timestamp_ms: int) -> dict[str, Any]:
    """One row of the Events list."""
    return {
        "partition": partition,
        "offset": offset,
        "timestamp_ms": timestamp_ms,
        **event.identity(),
        "bytes": len(event.body),
    }


def event_detail(event: RawEvent, record: Any) -> dict[str, Any]:
    """Everything the Event page shows but the consumers' state."""
    return {
        **event_summary(event, record.partition, record.offset, record.timestamp),
        "kafka": {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp_ms": record.timestamp,
            "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        },
        "ingest_id": event.ingest_id,
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "remote_addr": event.remote_addr,
        "content_type": event.content_type,
        "verified": event.verified,
        "late": event.late,
        "schema_version": event.schema_version,
        "headers": [{"name": n, "value": v} for n, v in masked_headers(event.headers.items())],
        "body": body_views(event.body),
        "typed": typed_of(event),
    }

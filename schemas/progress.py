"""Ingest's progress markers, written to every raw partition: "every request this ingest process
received before T has been acknowledged by Kafka" (or: "this process is leaving").

Streams orders events by ``received_at``, so it must know when no record received before T can
still land in a raw partition. A marker is computed in one step of ingest's event loop from the
records it has not seen acknowledged yet, and appended after them, so in each partition it
follows every record it covers. Several ingest processes each write their own (``instance``);
streams takes the lowest of those it heard from recently. Markers carry no key, the
``hookstream-kind: ingest-progress`` header and a JSON value
``{"instance": "…", "before": <ms>}`` or ``{"instance": "…", "leaving": true}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hookstream.schemas.envelope import RecordHeaders, header_pairs

KIND_HEADER = "hookstream-kind"
"""Marks records that are not events: ingest's progress in the raw topic, streams' watermarks."""
PROGRESS_KIND = b"ingest-progress"


@dataclass(frozen=True, slots=True)
class Progress:
    instance: str
    before_ms: int | None
    """None: the instance is stopping and holds nothing back any more."""


def encode_progress(progress: Progress) -> bytes:
    if progress.before_ms is None:
        return json.dumps({"instance": progress.instance, "leaving": True}).encode()
    return json.dumps({"instance": progress.instance, "before": progress.before_ms}).encode()


def decode_progress(data: bytes | None) -> Progress:
    """ValueError for anything that is not a progress marker's value."""
    try:
        body = json.loads(data or b"")
        instance = body["instance"]
        if not isinstance(instance, str):
            raise TypeError("instance is not a string")
        if body.get("leaving") is True:
            return Progress(instance, None)
        return Progress(instance, int(body["before"]))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"not a progress marker ({type(exc).__name__}: {exc})") from None


def has_kind(headers: RecordHeaders, kind: bytes) -> bool:
    """Whether a record is one of the non-event kinds above, by its ``hookstream-kind`` header."""
    return any(name == KIND_HEADER and value == kind for name, value in header_pairs(headers))


def is_progress(headers: RecordHeaders) -> bool:
    return has_kind(headers, PROGRESS_KIND)


def progress_headers() -> list[tuple[str, bytes]]:
    return [(KIND_HEADER, PROGRESS_KIND)]

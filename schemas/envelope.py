"""The RawEvent envelope: Avro (fastavro) encoding, decoding and the schema fingerprint header.

Without a schema registry, each record carries the writer schema's CRC-64-AVRO fingerprint in
the ``hookstream-schema`` record header, so a reader can tell which schema wrote it: the
current one or an earlier version kept in ``schemas/history/``. A record written by a newer
hookstream (a fingerprint this one does not know) is read as if the current schema wrote it:
schemas only ever append fields (a test checks it), so the fields this version knows come
first and read correctly, and the newer ones are left unread.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).parent
FINGERPRINT_HEADER = "hookstream-schema"
SCHEMA_VERSION = 1


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A parsed schema from ``schemas/<name>.avsc``."""
    raw = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    return fastavro.parse_schema(raw)


def _fingerprint(schema: dict[str, Any]) -> str:
    return fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")


@cache
def schema_fingerprint(name: str) -> str:
    return _fingerprint(load_schema(name))


@cache
def known_writer_schemas(name: str) -> dict[str, dict[str, Any]]:
    """Every version of schema ``name`` this hookstream can read, by fingerprint: the current
    one and those in ``schemas/history/<name>.v<N>.avsc``."""
    paths = [SCHEMA_DIR / f"{name}.avsc", *sorted((SCHEMA_DIR / "history").glob(f"{name}.v*.avsc"))]
    schemas = (fastavro.parse_schema(json.loads(p.read_text())) for p in paths)
    return {_fingerprint(schema): schema for schema in schemas}


RecordHeaders: TypeAlias = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None
"""A record's headers as aiokafka (pairs) or faust (pairs or a mapping) give them."""


def header_pairs(headers: RecordHeaders) -> list[tuple[str, bytes]]:
    """A record's headers as the (name, value) pairs a producer takes, whichever form they came in."""
    if not headers:
        return []
    return list(headers.items() if isinstance(headers, Mapping) else headers)


def writer_schema_of(headers: RecordHeaders) -> dict[str, Any] | None:
    """The RawEvent schema named by the record's fingerprint header; None when it has none or
    names a schema this version does not know (read those with the current schema)."""
    for key, value in header_pairs(headers):
        if key == FINGERPRINT_HEADER:
            text = value if isinstance(value, str) else bytes(value).decode("ascii", "replace")
            return known_writer_schemas("raw_event").get(text)
    return None


@dataclass(frozen=True)
class RawEvent:
    ingest_id: str
    event_id: str
    source: str
    provider: str
    event_type: str
    ordering_key: str
    received_at: datetime
    remote_addr: str
    headers: dict[str, str]
    content_type: str
    body: bytes
    verified: bool
    created_at: datetime | None = None
    matched_secret: int = 0
    late: bool = False
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def received_at_ms(self) -> int:
        return int(self.received_at.timestamp() * 1000)

    @property
    def created_at_ms(self) -> int | None:
        return int(self.created_at.timestamp() * 1000) if self.created_at else None

    def identity(self) -> dict[str, Any]:
        """What names the event to a person (``hookstream tail``, the console): ids, source,
        type, ordering key and when it was received."""
        return {
            "event_id": self.event_id,
            "source": self.source,
            "provider": self.provider,
            "event_type": self.event_type,
            "ordering_key": self.ordering_key,
            "received_at": self.received_at.isoformat(),
        }

    def to_record(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies the body and headers on the hot path.
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f for f in RawEvent.__dataclass_fields__ if f != "extra")


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def encode_raw_event(event: RawEvent) -> bytes:
    return encode_raw_record(event.to_record())


def encode_raw_record(record: dict[str, Any]) -> bytes:
    """Encode a RawEvent given as the Avro record itself (timestamps as datetimes or epoch ms).

    Ingest's request path uses this to skip building a RawEvent. ``strict``: a field missing
    from the record, or one the schema does not have (a typo), raises ValueError here instead
    of being written as the schema's default; it costs nothing measurable.
    """
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, load_schema("raw_event"), record, strict=True)
    return buf.getvalue()


def decode_raw_event(
    data: bytes, headers: RecordHeaders = None, *, writer_schema: dict[str, Any] | None = None
) -> RawEvent:
    """Decode with the current schema as reader, the writer schema being the one the record's
    ``headers`` name (see ``writer_schema_of``), else ``writer_schema``, else the current one."""
    reader = load_schema("raw_event")
    writer = writer_schema_of(headers) or writer_schema or reader
    record = fastavro.schemaless_reader(io.BytesIO(data), writer, reader)
    known = {f for f in RawEvent.__dataclass_fields__ if f != "extra"}
    extra = {k: v for k, v in record.items() if k not in known}
    return RawEvent(**{k: v for k, v in record.items() if k in known}, extra=extra)


def record_headers() -> list[tuple[str, bytes]]:
    return [(FINGERPRINT_HEADER, schema_fingerprint("raw_event").encode())]


EVENT_ID_HEADER = "hookstream-event-id"
ORDERING_KEY_HEADER = "hookstream-ordering-key"
RECEIVED_AT_HEADER = "hookstream-received-at"
CREATED_AT_HEADER = "hookstream-created-at"


@dataclass(frozen=True, slots=True)
class Routing:
    """What streams needs of an event to dedupe and order it, without decoding the envelope.

    Ingest writes these fields again as record headers beside the value (``routing_headers``),
    the values being the envelope's own; ``received_at_ms``/``created_at_ms`` are epoch ms."""

    event_id: str
    ordering_key: str
    received_at_ms: int
    created_at_ms: int | None = None

    @classmethod
    def of(cls, event: RawEvent) -> Routing:
        return cls(event.event_id, event.ordering_key, event.received_at_ms, event.created_at_ms)


def routing_headers(
    event_id: str, ordering_key: str, received_at_ms: int, created_at_ms: int | None
) -> list[tuple[str, bytes]]:
    """The record headers of an envelope in the current schema: its fingerprint and its routing."""
    headers = [
        _fingerprint_pair(),
        (EVENT_ID_HEADER, event_id.encode()),
        (ORDERING_KEY_HEADER, ordering_key.encode()),
        (RECEIVED_AT_HEADER, b"%d" % received_at_ms),
    ]
    if created_at_ms is not None:
        headers.append((CREATED_AT_HEADER, b"%d" % created_at_ms))
    return headers


@cache
def _fingerprint_pair() -> tuple[str, bytes]:
    return (FINGERPRINT_HEADER, schema_fingerprint("raw_event").encode())


def routing_of(headers: RecordHeaders) -> Routing | None:
    """The routing a record's headers carry, if it is an envelope of the current schema that
    ingest wrote them for; None otherwise (an earlier hookstream's record: decode the value)."""
    found: dict[str, bytes] = {}
    for key, value in header_pairs(headers):
        found[key] = value
    try:
        if found.get(FINGERPRINT_HEADER) != _fingerprint_pair()[1]:
            return None
        created = found.get(CREATED_AT_HEADER)
        return Routing(
            found[EVENT_ID_HEADER].decode(),
            found[ORDERING_KEY_HEADER].decode(),
            int(found[RECEIVED_AT_HEADER]),
            int(created) if created is not None else None,
        )
    except (KeyError, ValueError):  # ValueError: UnicodeDecodeError too
        return None


def event_headers(event: RawEvent) -> list[tuple[str, bytes]]:
    """``routing_headers`` for ``event`` (encoded in the current schema)."""
    return routing_headers(event.event_id, event.ordering_key, event.received_at_ms, event.created_at_ms)

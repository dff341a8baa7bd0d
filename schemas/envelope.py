"""The RawEvent envelope: Avro (fastavro) encoding, decoding and the schema fingerprint header.

Without a schema registry, each record carries the writer schema's CRC-64-AVRO fingerprint in
the ``hookstream-schema`` record header, so a reader can tell which schema wrote it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

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


@cache
def schema_fingerprint(name: str) -> str:
    return fingerprint(to_parsing_canonical_form(load_schema(name)), "CRC-64-AVRO")


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


def decode_raw_event(data: bytes, writer_schema: dict[str, Any] | None = None) -> RawEvent:
    """Decode with the current schema as reader; ``writer_schema`` for data written by another version."""
    reader = load_schema("raw_event")
    record = fastavro.schemaless_reader(io.BytesIO(data), writer_schema or reader, reader)
    known = {f for f in RawEvent.__dataclass_fields__ if f != "extra"}
    extra = {k: v for k, v in record.items() if k not in known}
    return RawEvent(**{k: v for k, v in record.items() if k in known}, extra=extra)


def record_headers() -> list[tuple[str, bytes]]:
    return [(FINGERPRINT_HEADER, schema_fingerprint("raw_event").encode())]

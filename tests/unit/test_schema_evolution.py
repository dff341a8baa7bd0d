"""Schema evolution: the current envelope and typed schemas read data written by their earlier
versions (backward), and those versions read data written by the current ones (forward).

Earlier versions live in schemas/history/ as <name>.v<N>.avsc; a schema change that adds a
field without a default, or removes one the old readers need, fails here.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from hookstream.schemas.envelope import (
    FINGERPRINT_HEADER,
    SCHEMA_DIR,
    RawEvent,
    decode_raw_event,
    encode_raw_event,
    header_pairs,
    load_schema,
    record_headers,
)
from hookstream.schemas.typed_events import TYPED_DIR, decode_typed, load_typed_schema

SCHEMAS = SCHEMA_DIR
HISTORY = SCHEMAS / "history"


def parsed(path: Path) -> dict:
    return fastavro.parse_schema(json.loads(path.read_text()))


def write(schema: dict, datum: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, datum)
    return buf.getvalue()


def read(data: bytes, writer: dict, reader: dict) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(data), writer, reader)


def current_of(history_file: Path) -> Path:
    name = history_file.name.split(".v")[0]
    top = SCHEMAS / f"{name}.avsc"
    return top if top.exists() else TYPED_DIR / f"{name}.avsc"


ENVELOPE_V1 = HISTORY / "raw_event.v1.avsc"


def v1_event() -> dict:
    return {
        "schema_version": 1,
        "ingest_id": "ing_1",
        "event_id": "evt_1",
        "source": "stripe",
        "provider": "stripe",
        "event_type": "payment_intent.succeeded",
        "ordering_key": "pi_1",
        "received_at": datetime(2024, 7, 1, 12, 0, tzinfo=UTC),
        "created_at": None,
        "remote_addr": "203.0.113.9",
        "headers": {"content-type": "application/json"},
        "content_type": "application/json",
        "body": b'{"id":"evt_1"}',
        "verified": True,
    }


def test_the_current_envelope_reads_what_version_1_wrote():
    data = write(parsed(ENVELOPE_V1), v1_event())
    event = decode_raw_event(data, writer_schema=parsed(ENVELOPE_V1))
    assert (event.event_id, event.body, event.received_at) == (
        "evt_1",
        b'{"id":"evt_1"}',
        v1_event()["received_at"],
    )
    assert event.late is False and event.matched_secret == 0  # the defaults of the added fields


def test_version_1_readers_read_what_the_current_envelope_writes():
    event = RawEvent(
        **{k: v for k, v in v1_event().items() if k != "schema_version"}, matched_secret=1, late=True
    )
    old = read(encode_raw_event(event), load_schema("raw_event"), parsed(ENVELOPE_V1))
    assert old == v1_event()  # the new fields are skipped, everything else is as written


PI_V1 = HISTORY / "stripe_payment_intent.v1.avsc"


def test_the_current_payment_intent_view_and_its_version_1_read_each_other():
    current = load_typed_schema("stripe_payment_intent")
    payload = {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "created": 1719835200,
        "data": {
            "object": {
                "id": "pi_1",
                "amount": 2000,
                "amount_received": 2000,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"order_id": "6735"},
            }
        },
    }
    new_datum = decode_typed("stripe", "payment_intent.succeeded", payload).to_dict()
    # Forward: an old reader reads new data, without the fields it does not know.
    old_view = read(write(current, new_datum), current, parsed(PI_V1))
    assert old_view["data"]["object"]["amount"] == 2000
    assert (
        "metadata" not in old_view["data"]["object"] and "amount_received" not in old_view["data"]["object"]
    )
    # Backward: a new reader reads old data, with the added fields at their defaults.
    old_datum = {k: v for k, v in new_datum.items()}
    old_datum["data"] = {
        "object": {
            k: v for k, v in new_datum["data"]["object"].items() if k not in ("metadata", "amount_received")
        }
    }
    new_view = read(write(parsed(PI_V1), old_datum), parsed(PI_V1), current)
    assert (
        new_view["data"]["object"]["metadata"] == {} and new_view["data"]["object"]["amount_received"] is None
    )
    assert new_view["data"]["object"]["amount"] == 2000


def fields(schema: dict, prefix: str = "") -> dict[str, dict]:
    """Every record field, by dotted path, through nested records and [null, record] unions."""
    out: dict[str, dict] = {}
    kind = schema if isinstance(schema, dict) else {}
    if kind.get("type") == "record":
        for field in kind["fields"]:
            path = f"{prefix}{field['name']}"
            out[path] = field
            types = field["type"] if isinstance(field["type"], list) else [field["type"]]
            for t in types:
                out.update(fields(t, f"{path}."))
    return out


@pytest.mark.parametrize("old_file", sorted(HISTORY.glob("*.avsc")), ids=lambda p: p.name)
def test_every_field_added_or_removed_since_an_old_version_has_a_default(old_file):
    old = fields(fastavro.schema.expand_schema(json.loads(old_file.read_text())))
    new = fields(fastavro.schema.expand_schema(json.loads(current_of(old_file).read_text())))
    added = [
        path
        for path in new.keys() - old.keys()
        if "default" not in new[path] and path.rsplit(".", 1)[0] not in new.keys() - old.keys()
    ]
    removed = [path for path in old.keys() - new.keys() if "default" not in old[path]]
    assert not added, f"{current_of(old_file).name}: fields added without a default break old data: {added}"
    assert not removed, f"{old_file.name}: fields removed that old readers require: {removed}"


# -- reading what another version wrote, at run time ------------------------------------------------
def v1_record() -> tuple[bytes, list[tuple[str, bytes]]]:
    """A record as a version-1 ingest published it: v1 bytes, v1 fingerprint header."""
    v1 = parsed(ENVELOPE_V1)
    fp = fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(v1), "CRC-64-AVRO")
    return write(v1, v1_event()), [(FINGERPRINT_HEADER, fp.encode())]


def test_a_record_version_1_wrote_is_read_with_the_schema_its_header_names():
    data, headers = v1_record()
    with pytest.raises(EOFError):  # read as if the current schema wrote it, it is garbage
        decode_raw_event(data)
    as_text = [(k, v.decode()) for k, v in headers]
    for form in (headers, tuple(headers), dict(headers), as_text):  # aiokafka, faust, decoded values
        event = decode_raw_event(data, form)
        assert (event.event_id, event.body, event.late, event.matched_secret) == (
            "evt_1",
            b'{"id":"evt_1"}',
            False,
            0,
        )


def test_record_headers_in_every_form_become_the_pairs_a_producer_takes():
    pairs = [(FINGERPRINT_HEADER, b"1"), ("hookstream-kind", b"watermark")]
    for form in (pairs, tuple(pairs), dict(pairs)):  # aiokafka, faust, a mapping
        assert header_pairs(form) == pairs
    assert header_pairs(None) == header_pairs([]) == header_pairs({}) == []


def test_the_current_fingerprint_header_names_the_current_schema():
    event = RawEvent(**{k: v for k, v in v1_event().items() if k != "schema_version"}, late=True)
    assert decode_raw_event(encode_raw_event(event), record_headers()) == event


def test_a_record_from_a_newer_version_is_read_for_the_fields_this_one_knows():
    # A future version appends a field; this version does not know its fingerprint.
    future = json.loads((SCHEMAS / "raw_event.avsc").read_text())
    future["fields"].append({"name": "added_later", "type": "string", "default": ""})
    future_schema = fastavro.parse_schema(future)
    event = RawEvent(**{k: v for k, v in v1_event().items() if k != "schema_version"}, matched_secret=2)
    data = write(future_schema, event.to_record() | {"added_later": "x"})
    unknown = [(FINGERPRINT_HEADER, b"0123456789abcdef")]
    assert decode_raw_event(data, unknown) == event


@pytest.mark.parametrize("old_file", sorted(HISTORY.glob("raw_event.v*.avsc")), ids=lambda p: p.name)
def test_the_envelope_only_ever_appends_fields(old_file):
    """What lets an older reader read a newer writer's records without knowing its schema."""
    old = json.loads(old_file.read_text())["fields"]
    new = json.loads((SCHEMAS / "raw_event.avsc").read_text())["fields"]
    assert [(f["name"], f["type"]) for f in new[: len(old)]] == [(f["name"], f["type"]) for f in old], (
        "raw_event.avsc must keep every field of the earlier versions, in order, with its type, "
        "and add new fields (with defaults) at the end"
    )

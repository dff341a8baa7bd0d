"""The routing headers ingest writes beside the envelope, and what streams makes of a record
with and without them (no broker)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hookstream.sample_events import raw_event
from hookstream.schemas.envelope import (
    FINGERPRINT_HEADER,
    Routing,
    decode_raw_event,
    encode_raw_event,
    event_headers,
    record_headers,
    routing_of,
)
from hookstream.streams.sequence import SortKey
from hookstream.streams.stages import Envelope


@dataclass
class Message:
    headers: list


@dataclass
class Event:
    value: bytes
    message: Message


def test_the_routing_headers_carry_the_envelopes_own_fields():
    event = raw_event("evt_1", "pi_1", 1_700_000_000_123, created_ms=1_699_999_999_000)
    routing = routing_of(event_headers(event))
    assert routing == Routing("evt_1", "pi_1", 1_700_000_000_123, 1_699_999_999_000)
    assert routing == Routing.of(event)
    assert SortKey.of(routing) == SortKey.of(event)
    without_created = raw_event("evt_2", "pi_1", 5)
    assert routing_of(event_headers(without_created)) == Routing("evt_2", "pi_1", 5, None)


def test_headers_that_do_not_describe_a_current_envelope_give_no_routing():
    event = raw_event("evt_1", "pi_1", 10)
    headers = event_headers(event)
    assert routing_of(record_headers()) is None  # an earlier ingest: fingerprint only
    assert routing_of(None) is None
    old = [(FINGERPRINT_HEADER, b"another-schema"), *headers[1:]]
    assert routing_of(old) is None  # another schema wrote the value: decode it
    garbled = [*headers[:3], ("hookstream-received-at", b"soon")]
    assert routing_of(garbled) is None
    assert routing_of([*headers[:2], ("hookstream-ordering-key", b"\xff\xfe")] + headers[3:]) is None


def test_streams_passes_on_the_value_ingest_wrote_untouched_unless_it_is_late():
    event = raw_event("evt_1", "pi_1", 10, body=b'{"id": "evt_1"}')
    value = encode_raw_event(event)
    envelope = Envelope.read(Event(value, Message(event_headers(event))))
    assert envelope.decoded is None  # the headers sufficed
    out, headers = envelope.output(late=False)
    assert out is value
    assert decode_raw_event(out, headers) == event

    out, headers = envelope.output(late=True)
    assert decode_raw_event(out, headers) == replace(event, late=True)
    assert routing_of(headers) == Routing.of(event)


def test_a_record_without_routing_headers_is_decoded_and_comes_out_in_the_current_schema():
    event = raw_event("evt_1", "pi_1", 10, created_ms=7)
    envelope = Envelope.read(Event(encode_raw_event(event), Message(record_headers())))
    assert envelope.routing == Routing.of(event)
    out, headers = envelope.output(late=False)
    assert decode_raw_event(out, headers) == event
    assert routing_of(headers) == Routing.of(event)

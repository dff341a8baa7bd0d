"""The pieces of ingest's request path that were rewritten for speed still mean what they did."""

from __future__ import annotations

import gc
import uuid

import pytest

from hookstream.ingest.app import new_ingest_id
from hookstream.ingest.providers.base import json_pointer
from hookstream.ingest.server import GC_GEN0_THRESHOLD, tune_gc
from hookstream.schemas.envelope import (
    RawEvent,
    decode_raw_event,
    encode_raw_event,
    encode_raw_record,
    ms_to_datetime,
)


def test_ingest_ids_are_random_version_4_uuids():
    ids = [new_ingest_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # canonical lower-case 8-4-4-4-12 form


def test_json_pointer_escapes_and_lookups_with_the_parsed_pointer_cache():
    doc = {"a/b": {"m~n": [10, {"x": "y"}]}, "": 1}
    for _ in range(2):  # second round is served from the cache
        assert json_pointer(doc, "/a~1b/m~0n/1/x") == "y"
        assert json_pointer(doc, "/a~1b/m~0n/0") == 10
        assert json_pointer(doc, "/a~1b/m~0n/2") is None
        assert json_pointer(doc, "/a~1b/m~0n/x") is None
        assert json_pointer(doc, "/missing/x") is None
        assert json_pointer(doc, "/a~1b/m~0n/0/deeper") is None


def test_a_record_encoded_from_epoch_millis_equals_the_raw_event_encoding():
    event = RawEvent(
        ingest_id=new_ingest_id(),
        event_id="evt_1",
        source="gh",
        provider="github",
        event_type="push",
        ordering_key="acme/api",
        received_at=ms_to_datetime(1_795_000_000_123),
        created_at=ms_to_datetime(1_794_999_999_000),
        remote_addr="127.0.0.1",
        headers={"x-github-event": "push"},
        content_type="application/json",
        body=b'{"a": 1}',
        verified=True,
        matched_secret=1,
    )
    record = event.to_record() | {"received_at": 1_795_000_000_123, "created_at": 1_794_999_999_000}
    assert encode_raw_record(record) == encode_raw_event(event)
    assert decode_raw_event(encode_raw_record(record)) == event
    # A misspelt or missing field is an error, not the schema's default written silently.
    typo = {("matched_secrets" if k == "matched_secret" else k): v for k, v in record.items()}
    with pytest.raises(ValueError, match="matched_secrets"):
        encode_raw_record(typo)
    with pytest.raises(ValueError, match="late"):
        encode_raw_record({k: v for k, v in record.items() if k != "late"})


def test_tune_gc_raises_the_young_generation_threshold_and_freezes_start_up_objects():
    before = gc.get_threshold()
    gc.unfreeze()  # whatever an earlier test froze must not count
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

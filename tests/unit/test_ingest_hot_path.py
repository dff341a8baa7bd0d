"""The pieces of ingest's request path that were rewritten for speed still mean what they did."""

from __future__ import annotations

import gc
import hmac
import os
import uuid

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from hookstream.ingest.app import new_ingest_id
from hookstream.ingest.metrics import Latencies
from hookstream.ingest.providers.base import hmac_digest, json_pointer
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


def test_a_forked_child_does_not_reuse_the_ids_its_parent_has_yet_to_hand_out():
    new_ingest_id()  # the parent now holds random bytes for 255 more ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "\n".join(new_ingest_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {new_ingest_id() for _ in range(50)}
    assert len(child) == 50 and not child & parent


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_hmac_from_a_kept_keyed_object_equals_the_one_shot_hmac(algorithm):
    keys = [b"k1", b"another key", b"x" * 200, b""]  # one longer than a block: hashed first
    for _ in range(2):  # the second round uses the kept objects
        for key in keys:
            for message in (b"", b"payload", os.urandom(5000)):
                assert hmac_digest(key, message, algorithm) == hmac.digest(key, message, algorithm)
    # Each call starts from the keyed state: no message leaks into the next digest.
    assert hmac_digest(b"k1", b"a", algorithm) == hmac_digest(b"k1", b"a", algorithm)


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


def test_the_publish_latency_histogram_exposes_what_prometheus_clients_own_would():
    buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    values = [0.0, 0.0004, 0.001, 0.0010001, 0.003, 0.05, 0.7, 1, 2.5, 9.99, 10, 11, 250.0]
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = Latencies("h_seconds", "doc", buckets, ours_registry)
    theirs = Histogram("h_seconds", "doc", buckets=buckets, registry=theirs_registry)
    for value in values:  # bounds themselves included: a bucket counts values <= its bound
        ours.observe(value)
        theirs.observe(value)

    def samples(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return [
            line for line in text.splitlines() if line.startswith("h_seconds_") and "_created" not in line
        ]

    assert samples(ours_registry) == samples(theirs_registry)
    assert 'h_seconds_bucket{le="+Inf"} 13.0' in samples(ours_registry)

"""Every shared vector through the real HTTP path: valid ones are answered 2xx and published
byte-exact; invalid ones are answered 401 and publish nothing."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from hookstream.ingest.providers import PROVIDERS
from hookstream.schemas.envelope import decode_raw_event

from .support import make_config, read_topic, running_ingest

pytestmark = pytest.mark.kafka

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signatures.json").read_text())
ALIASES = {"standard-webhooks": "standard"}


def source_for(vector: dict) -> dict:
    source = {
        "provider": ALIASES.get(vector["provider"], vector["provider"]),
        "secrets": vector.get("secrets") or [vector["secret"]],
    }
    if vector.get("url"):
        split = urlsplit(vector["url"])
        source["public_url"] = f"{split.scheme}://{split.netloc}{split.path}"
    return source


async def test_every_vector_through_http(kafka_bootstrap):
    vectors = [v for v in VECTORS if ALIASES.get(v["provider"], v["provider"]) in PROVIDERS]
    assert len(vectors) == len(VECTORS)
    sources = {v["id"]: source_for(v) for v in vectors}
    clock_now: list[float | None] = [None]

    def clock() -> float:
        import time

        return clock_now[0] if clock_now[0] is not None else time.time()

    config = make_config(kafka_bootstrap, sources)
    published_bodies = {}
    async with (
        running_ingest(config, clock=clock) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        for vector in vectors:
            clock_now[0] = vector.get("now")
            query = urlsplit(vector["url"]).query if vector.get("url") else ""
            path = f"/webhooks/{vector['id']}" + (f"?{query}" if query else "")
            r = await client.post(path, content=vector["body"].encode("utf-8"), headers=vector["headers"])
            if vector["expect"] == "valid" and r.status_code == 400:
                # Verified, but the body is no payload (e.g. GitHub's "Hello, World!" test body).
                assert r.json()["error"] == "invalid_payload", (vector["id"], r.text)
                with pytest.raises(ValueError):
                    json.loads(vector["body"])
            elif vector["expect"] == "valid":
                assert 200 <= r.status_code < 300, (vector["id"], r.text)
                if (
                    r.headers.get("content-type", "").startswith("application/json")
                    and r.json().get("status") == "accepted"
                ):
                    published_bodies[r.json()["ingest_id"]] = vector["body"].encode("utf-8")
            else:
                assert r.status_code == 401, (vector["id"], r.text)
                assert r.json()["error"] in ("signature_mismatch", "stale_timestamp"), (vector["id"], r.text)
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert len(records) == len(published_bodies)
    for record in records:
        event = decode_raw_event(record.value)
        assert event.body == published_bodies[event.ingest_id]

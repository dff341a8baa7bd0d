"""Refused requests recorded by ingest to the refused topic (``record_refused``), against a real
broker: the answer is the one a source without recording gives, the record holds the reason,
the masked headers and the cut body, a flood is bounded by the per-minute budget, and the
console lists the records with the fix their reason suggests."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from hookstream.console.refused import FIXES
from hookstream.schemas.refused import decode_refused
from tests.integration.console_support import running_console
from tests.integration.support import make_config, read_topic, running_ingest, wait_until

pytestmark = pytest.mark.kafka
SECRET = "whsec_" + "c2VjcmV0LXJlZnVzZWQtdGVzdHM="


def config_for(bootstrap: str, **source):
    return make_config(
        bootstrap,
        {
            "recorded": {"provider": "stripe", "secrets": [SECRET], "record_refused": "on", **source},
            "silent": {"provider": "stripe", "secrets": [SECRET]},
        },
        refused_topic=f"test.refused.{uuid.uuid4().hex[:8]}",
    )


async def test_a_refused_request_is_recorded_masked_and_cut_and_answered_as_before(kafka_bootstrap):
    config = config_for(kafka_bootstrap, refused_body_bytes=16)
    body = json.dumps({"id": "evt_1", "object": "event", "type": "charge.succeeded"}).encode()
    signature = {"stripe-signature": f"t={int(time.time())},v1={'ab' * 32}", "x-request-id": "req-42"}
    async with running_ingest(config) as url, httpx.AsyncClient(base_url=url) as client:
        started = time.perf_counter()
        recorded = await client.post("/webhooks/recorded", content=body, headers=signature)
        elapsed = time.perf_counter() - started
        silent = await client.post("/webhooks/silent", content=body, headers=signature)
        assert recorded.status_code == silent.status_code == 401
        assert recorded.json() == silent.json() and recorded.json()["error"] == "signature_mismatch"
        assert elapsed < 0.5
        missing = await client.post("/webhooks/recorded", content=body)
        assert missing.json()["error"] == "missing_signature"

        async def two_recorded() -> bool:
            return len(await read_topic(kafka_bootstrap, config.kafka.refused_topic)) == 2

        await wait_until(two_recorded, 30, "the refused requests to be recorded")
    records = await read_topic(kafka_bootstrap, config.kafka.refused_topic)
    first, second = (decode_refused(r.value) for r in records)
    assert [r.key for r in records] == [b"recorded", b"recorded"]  # the silent source records nothing
    assert (first.reason, first.status, second.reason) == ("signature_mismatch", 401, "missing_signature")
    assert first.body == body[:16] and first.body_bytes == len(body)
    headers = dict(first.headers)
    assert "ab" * 32 not in headers["stripe-signature"] and "masked" in headers["stripe-signature"]
    assert headers["x-request-id"] == "req-42"

    config_console = config
    async with running_console(config_console) as url, httpx.AsyncClient(base_url=url) as client:
        page = (await client.get("/refused", headers={"accept": "application/json"})).json()
        assert [r["reason"] for r in page["refused"]] == ["missing_signature", "signature_mismatch"]
        assert page["refused"][1]["fix"] == FIXES["signature_mismatch"] and page["recording"] == ["recorded"]
        assert page["refused"][1]["body_truncated"] is True
        only = (
            await client.get(
                "/refused", params={"reason": "signature_mismatch"}, headers={"accept": "application/json"}
            )
        ).json()
        assert [r["reason"] for r in only["refused"]] == ["signature_mismatch"]
        html = await client.get("/refused")
        assert "Suggested fix" in html.text and "ab" * 32 not in html.text


async def test_a_flood_of_refusals_is_bounded_per_source(kafka_bootstrap):
    config = config_for(kafka_bootstrap, refused_per_minute=3)
    async with running_ingest(config) as url, httpx.AsyncClient(base_url=url) as client:
        for _ in range(20):
            assert (await client.post("/webhooks/recorded", content=b"{}")).status_code == 401

        async def three_recorded() -> bool:
            return len(await read_topic(kafka_bootstrap, config.kafka.refused_topic)) == 3

        await wait_until(three_recorded, 30, "three refused requests to be recorded")
        await client.post("/webhooks/recorded", content=b"{}")
    assert len(await read_topic(kafka_bootstrap, config.kafka.refused_topic)) == 3

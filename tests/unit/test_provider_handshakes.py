"""Handshakes answered as the providers require: Slack's url_verification, Zoom's URL validation,
Discord's interaction and webhook pings; ordinary events are no handshake.
"""

from __future__ import annotations

import json

from hookstream.ingest.providers import PROVIDERS, Delivery
from hookstream.ingest.providers.base import parse_payload
from hookstream.ingest.providers.slack import Slack
from tests.provider_cases import (
    DISCORD_PING,
    DISCORD_PING_SIGNATURE,
    NOW,
    RFC8032_PUBLIC,
    SAMPLE_CASES,
    sample_delivery,
)


def test_slack_url_verification_returns_the_challenge():
    body = json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    p = Slack(["s"])
    delivery = Delivery.of(body, p.sign(body, timestamp=NOW))
    assert p.verify(delivery, now=NOW) == 0
    handshake = p.handshake(delivery, parse_payload(delivery))
    assert handshake is not None
    assert handshake.body == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert (handshake.status, handshake.publish) == (200, False)
    # An ordinary event is no handshake.
    sample = p.sample("message", now=NOW)
    ordinary = Delivery.of(sample.body, sample.headers)
    assert p.handshake(ordinary, parse_payload(ordinary)) is None


def zoom_validation(secret: str) -> Delivery:
    provider = PROVIDERS["zoom"]([secret])
    body = json.dumps(
        {
            "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
            "event_ts": NOW * 1000,
            "event": "endpoint.url_validation",
        }
    ).encode()
    return Delivery.of(body, provider.sign(body, timestamp=NOW))


def test_zoom_url_validation_matches_the_documented_example():
    # PROVIDERS.md 3.10 COMPUTED example.
    expected = "3c2b10f362f0af541a70ce39ff8c29d36d675be3af5eb90288083abf690766e8"
    delivery = zoom_validation("Sec3tT0kenExampleZoom123")
    provider = PROVIDERS["zoom"](["Sec3tT0kenExampleZoom123"])
    assert provider.verify(delivery, now=NOW) == 0
    hs = provider.handshake(delivery, json.loads(delivery.body))
    assert hs is not None and hs.status == 200 and not hs.publish
    assert hs.body == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


def test_zoom_url_validation_uses_the_secret_that_verified():
    delivery = zoom_validation("Sec3tT0kenExampleZoom123")
    provider = PROVIDERS["zoom"](["OldZoomSecretToken00000", "Sec3tT0kenExampleZoom123"])
    assert provider.verify(delivery, now=NOW) == 1
    hs = provider.handshake(delivery, json.loads(delivery.body))
    assert hs.body["encryptedToken"].startswith("3c2b10f362f0af54")


def test_zoom_ordinary_event_has_no_handshake():
    case = next(c for c in SAMPLE_CASES if c.name == "zoom")
    delivery = sample_delivery(case)
    assert PROVIDERS["zoom"](case.secrets).handshake(delivery, json.loads(delivery.body)) is None


def test_discord_ping_is_answered_with_pong():
    provider = PROVIDERS["discord"]([RFC8032_PUBLIC])
    delivery = Delivery.of(
        DISCORD_PING.encode(),
        {"X-Signature-Ed25519": DISCORD_PING_SIGNATURE, "X-Signature-Timestamp": "1700000000"},
    )
    assert provider.verify(delivery, now=NOW) == 0
    hs = provider.handshake(delivery, json.loads(DISCORD_PING))
    assert hs is not None and hs.body == {"type": 1} and hs.status == 200 and not hs.publish
    got = provider.describe(delivery, json.loads(DISCORD_PING))
    assert (got.event_id, got.event_type) == ("1180000000000000000", "PING")
    assert got.created_at_ms == (1180000000000000000 >> 22) + 1420070400000


def test_discord_other_handshakes():
    provider = PROVIDERS["discord"]([RFC8032_PUBLIC])
    d = Delivery.of(b"", {})
    command = provider.handshake(d, {"id": "1", "token": "t", "type": 2, "data": {"name": "blep"}})
    assert command.body == {"type": 5} and command.publish
    component = provider.handshake(d, {"id": "1", "token": "t", "type": 3})
    assert component.body == {"type": 6} and component.publish
    webhook_ping = provider.handshake(d, {"version": 1, "application_id": "1", "type": 0})
    assert (webhook_ping.status, webhook_ping.body, webhook_ping.publish) == (204, None, False)
    event = {
        "version": 1,
        "application_id": "1",
        "type": 1,
        "event": {
            "type": "APPLICATION_AUTHORIZED",
            "timestamp": "2024-10-18T14:42:53.064834",
            "data": {"user": {"id": "9"}},
        },
    }
    webhook_event = provider.handshake(d, event)
    assert (webhook_event.status, webhook_event.publish) == (204, True)
    got = provider.describe(Delivery.of(json.dumps(event).encode(), {}), event)
    assert (got.event_type, got.ordering_key) == ("APPLICATION_AUTHORIZED", "9")
    assert got.event_id.startswith("sha256:")

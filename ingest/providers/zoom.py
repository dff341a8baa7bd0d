"""Zoom: ``x-zm-signature: v0=<hex>`` over ``"v0:{x-zm-request-timestamp}:{raw body}"``, HMAC-SHA256
keyed with the app's Secret Token (Slack's v0 scheme under other header names).

Tolerance: Zoom publishes no window. The default is 300 s in either direction, as for Slack's
identical scheme; each delivery attempt is a new request with its own timestamp. If retries
are ever refused as stale, raise ``tolerance_seconds`` (0 turns the check off).

The ``endpoint.url_validation`` challenge (sent when the URL is saved and every 72 h) is
answered, after the signature verified, with ``plainToken`` and ``encryptedToken`` = hex
HMAC-SHA256(secret token, plainToken), computed with the secret that verified the request.

Verify the raw bytes: Zoom's own sample re-serializes the JSON first, which only works by luck.
Zoom has no delivery id, so the event id is the content hash of source + body that ingest
uses as its fallback (stable across retries of the same notification).
"""

from __future__ import annotations

import json
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Handshake,
    Provider,
    Sample,
    content_hash_id,
    hmac_digest,
    pick,
    plain_secret,
    v0_signature,
    v0_signed,
)

SIGNATURE = "x-zm-signature"
TIMESTAMP = "x-zm-request-timestamp"
URL_VALIDATION = "endpoint.url_validation"


def encrypted_token(key: bytes, plain_token: str) -> str:
    return hmac_digest(key, plain_token.encode("utf-8")).hex()


class Zoom(Provider):
    name = "zoom"
    summary = "Zoom webhooks (v0 HMAC-SHA256 hex over v0:ts:body; answers endpoint.url_validation)"
    signature_headers = (SIGNATURE, TIMESTAMP)
    secret_format = "the app's Secret Token (Features > Access), used verbatim"
    default_tolerance = 300
    sample_event_type = "meeting.started"

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(secret, "Secret Token from the Zoom app's Access page")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        return self.verify_v0(delivery, now, SIGNATURE, TIMESTAMP)

    def handshake(self, delivery: Delivery, payload: Any) -> Handshake | None:
        if not (isinstance(payload, dict) and payload.get("event") == URL_VALIDATION):
            return None
        plain = pick(payload, "/payload/plainToken") or ""
        try:
            _, candidate, signed = v0_signed(delivery, SIGNATURE, TIMESTAMP)
            index = self.match_any([candidate], lambda key: hmac_digest(key, signed))
        except VerificationError:
            index = 0  # ingest verifies before asking; this is only for callers that did not
        return Handshake(
            body={"plainToken": plain, "encryptedToken": encrypted_token(self.keys[index], plain)}
        )

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_ts = pick(payload, "/event_ts")
        event_id = content_hash_id(self.source, delivery.body)
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/event") or "",
            ordering_key=pick(payload, "/payload/object/id", "/payload/object/uuid", "/payload/account_id")
            or event_id,
            created_at_ms=int(event_ts) if event_ts and event_ts.isdecimal() else None,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        return {
            SIGNATURE: v0_signature(self.keys[key_index], timestamp, body),
            TIMESTAMP: str(timestamp),
            "Content-Type": "application/json; charset=utf-8",
        }

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid
        from datetime import UTC, datetime

        if event_type == URL_VALIDATION:
            payload: dict[str, Any] = {
                "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
                "event_ts": now * 1000,
                "event": URL_VALIDATION,
            }
        else:
            started = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            payload = {
                "event": event_type,
                "event_ts": now * 1000,
                "payload": {
                    "account_id": "AAAAAABBBB",
                    "object": {
                        "id": resource_id or "1234567890",
                        "uuid": "4444AAAiAAAAAiAiAiiAii==",
                        "host_id": "x1yCzABCDEfg23HiJKl4mN",
                        "topic": "My Meeting",
                        "type": 2,
                        "start_time": started,
                        "timezone": "America/Los_Angeles",
                        "duration": 60,
                    },
                },
            }
        body = json.dumps(payload).encode()
        headers = self.sign(body, timestamp=now)
        headers["x-zm-trackingid"] = event_id or f"v=2.0;clid=aw1;rid=WEB_{uuid.uuid4().hex}"
        return Sample(body=body, headers=headers)

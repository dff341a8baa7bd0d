"""Linear: ``Linear-Signature`` = hex HMAC-SHA256 of the raw body (no prefix).

Freshness comes from ``webhookTimestamp`` (epoch **milliseconds**) inside the signed body,
refused when more than the tolerance (60 s, as in @linear/sdk) away in either direction. The
optional ``Linear-Timestamp`` header is deliberately ignored: it is not signed, so it proves
nothing. The delivery id ``Linear-Delivery`` is the dedupe key; Linear sends one signature,
so rotation means configuring both secrets.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    check_timestamp,
    decode_signature,
    hmac_digest,
    iso8601_ms,
    now_seconds,
    pick,
    plain_secret,
    require_header,
)

HEADER = "Linear-Signature"
DELIVERY = "Linear-Delivery"


def signed_timestamp_ms(body: bytes) -> int:
    """``webhookTimestamp`` from an already-verified body; MALFORMED when it is absent."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        payload = None
    value = payload.get("webhookTimestamp") if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise VerificationError(
            VerificationError.MALFORMED,
            "the signed body has no numeric webhookTimestamp (epoch ms), so its freshness cannot be checked",
        )
    return int(value)


class Linear(Provider):
    name = "linear"
    summary = "Linear webhooks (HMAC-SHA256 hex of the body; webhookTimestamp in ms inside it, ±60 s)"
    signature_headers = (HEADER, DELIVERY, "Linear-Event")
    secret_format = "the webhook's signing secret, used verbatim"
    default_tolerance = 60
    sample_event_type = "Issue.create"

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(secret, "signing secret shown on the Linear webhook's page")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        candidate = decode_signature(require_header(delivery, HEADER), HEADER, encoding="hex", size=32)
        matched = self.match_any([candidate], lambda key: hmac_digest(key, delivery.body))
        if self.tolerance:
            ts_ms = signed_timestamp_ms(delivery.body)
            check_timestamp(ts_ms / 1000, now_seconds(now), self.tolerance, future=True)
        return matched

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        delivery_id = delivery.headers.get(DELIVERY, "")
        kind = pick(payload, "/type") or delivery.headers.get("Linear-Event", "")
        action = pick(payload, "/action")
        created = iso8601_ms(pick(payload, "/createdAt"))
        if created is None and (ts := pick(payload, "/webhookTimestamp")) and ts.isdecimal():
            created = int(ts)
        return EventDescription(
            event_id=delivery_id,
            event_type=f"{kind}.{action}" if kind and action else kind,
            ordering_key=pick(payload, "/data/id") or delivery_id,
            created_at_ms=created,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        headers = {HEADER: hmac_digest(self.keys[key_index], body).hex(), "Content-Type": "application/json"}
        if event_id:
            headers[DELIVERY] = event_id
        return headers

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid
        from datetime import UTC, datetime

        kind, _, action = event_type.partition(".")
        kind, action = kind or "Issue", action or "create"
        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = {
            "action": action,
            "type": kind,
            "createdAt": created,
            "organizationId": "3c5c3c4d-6a1e-4b7e-9d8e-0d3b1f2a9c11",
            "url": "https://linear.app/acme/issue/ENG-123/fix-the-login-redirect",
            "data": {
                "id": resource_id or "0f6a3c2e-1d4b-4f5a-8e9c-7b2d1a0e3f45",
                "identifier": "ENG-123",
                "title": "Fix the login redirect",
                "priority": 2,
                "teamId": "72b2a2dc-6f4f-4423-9d34-24b5bd10634a",
                "stateId": "6c1a3f0e-2b5d-4e8a-9f7c-1d2e3b4a5c6d",
                "createdAt": created,
                "updatedAt": created,
            },
            "webhookTimestamp": now * 1000,
            "webhookId": "000042e3-d123-4980-b49f-8e140eef9329",
        }
        body = json.dumps(payload).encode()
        headers = self.sign(body, timestamp=now, event_id=event_id or str(uuid.uuid4()))
        headers["Linear-Event"] = kind
        headers["User-Agent"] = "Linear-Webhook"
        return Sample(body=body, headers=headers)

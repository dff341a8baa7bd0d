"""PagerDuty v3 webhooks: ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`` = hex HMAC-SHA256 of the
raw body, one ``v1`` per active secret (zero-downtime rotation); any match suffices.

The subscription secret is the key **as given**: it looks like base64 but must not be decoded.
Entries other than ``v1=`` are skipped, as are ``v1`` values that are not SHA-256 hex digests.
No timestamp in the scheme; ``X-Webhook-Id`` is repeated across attempts and is the dedupe key.
"""

from __future__ import annotations

import json
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    hmac_digest,
    iso8601_ms,
    pick,
    plain_secret,
    require_header,
)

HEADER = "X-PagerDuty-Signature"
WEBHOOK_ID = "X-Webhook-Id"


class PagerDuty(Provider):
    name = "pagerduty"
    summary = "PagerDuty v3 webhooks (HMAC-SHA256 hex of the body, comma-separated v1= per active secret)"
    signature_headers = (HEADER, WEBHOOK_ID, "X-Webhook-Subscription")
    secret_format = "the webhook subscription's secret, used verbatim (never base64-decoded)"
    sample_event_type = "incident.triggered"

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(secret, "subscription secret shown when the PagerDuty webhook was created")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        header = require_header(delivery, HEADER)
        candidates: list[bytes] = []
        for entry in header.split(","):
            version, sep, hexsig = entry.strip().partition("=")
            if not sep or version != "v1":
                continue
            try:
                digest = bytes.fromhex(hexsig)
            except ValueError:
                continue
            if len(digest) == 32:
                candidates.append(digest)
        if not candidates:
            raise VerificationError(
                VerificationError.MALFORMED, f"{HEADER} has no v1=<hex SHA-256> signature"
            )
        return self.match_any(candidates, lambda key: hmac_digest(key, delivery.body))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = delivery.headers.get(WEBHOOK_ID, "") or pick(payload, "/event/id") or ""
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/event/event_type") or "",
            ordering_key=pick(payload, "/event/data/id") or event_id,
            created_at_ms=iso8601_ms(pick(payload, "/event/occurred_at")),
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        sigs = ",".join(f"v1={hmac_digest(k, body).hex()}" for k in self.keys)
        headers = {HEADER: sigs, "Content-Type": "application/json"}
        if event_id:
            headers[WEBHOOK_ID] = event_id
        return headers

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid
        from datetime import UTC, datetime

        occurred = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        incident = resource_id or "PGR0VU2"
        payload = {
            "event": {
                "id": uuid.uuid4().hex[:26].upper(),
                "event_type": event_type,
                "resource_type": event_type.partition(".")[0] or "incident",
                "occurred_at": occurred,
                "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": "Tenex Engineer"},
                "client": None,
                "data": {
                    "id": incident,
                    "type": "incident",
                    "self": f"https://api.pagerduty.com/incidents/{incident}",
                    "html_url": f"https://acme.pagerduty.com/incidents/{incident}",
                    "number": 2,
                    "status": "triggered",
                    "title": "A little bump in the road",
                    "service": {"id": "PF9KMXH", "type": "service_reference", "summary": "API Service"},
                    "urgency": "high",
                },
            }
        }
        body = json.dumps(payload).encode()
        headers = self.sign(body, timestamp=now, event_id=event_id or str(uuid.uuid4()))
        headers["X-Webhook-Subscription"] = "PY1OPTC"
        headers["User-Agent"] = "PagerDuty-Webhook/V3.0"
        return Sample(body=body, headers=headers)

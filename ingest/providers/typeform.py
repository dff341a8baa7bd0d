"""Typeform: ``Typeform-Signature: sha256=<base64>`` = **base64** (not hex) HMAC-SHA256 of the raw
body, keyed with the webhook's secret.

No timestamp in the scheme (replays are caught downstream by deduplication on the body's
``event_id``) and a single signature, so rotation means configuring both secrets.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    hmac_digest,
    iso8601_ms,
    pick,
    plain_secret,
    prefixed_signature,
)

HEADER = "Typeform-Signature"


class Typeform(Provider):
    name = "typeform"
    summary = "Typeform webhooks (base64 HMAC-SHA256 of the body, sha256= prefix)"
    signature_headers = (HEADER,)
    secret_format = "the webhook's secret, used verbatim"
    sample_event_type = "form_response"

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(secret, "secret set on the Typeform webhook")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        candidate = prefixed_signature(delivery, HEADER, prefix="sha256=", encoding="base64", size=32)
        return self.match_any([candidate], lambda key: hmac_digest(key, delivery.body))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = pick(payload, "/event_id") or ""
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/event_type") or "",
            ordering_key=pick(payload, "/form_response/token", "/form_response/form_id") or event_id,
            created_at_ms=iso8601_ms(
                pick(payload, "/form_response/submitted_at", "/form_response/landed_at")
            ),
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        digest = base64.b64encode(hmac_digest(self.keys[key_index], body)).decode()
        return {HEADER: f"sha256={digest}", "Content-Type": "application/json"}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = {
            "event_id": event_id or uuid.uuid4().hex[:26].upper(),
            "event_type": event_type,
            "form_response": {
                "form_id": "lT4Z3j",
                "token": resource_id or "a3a12ec67a1365927098a606107fac15",
                "submitted_at": stamp,
                "landed_at": stamp,
                "definition": {
                    "id": "lT4Z3j",
                    "title": "Webhooks example",
                    "fields": [{"id": "DlXFaesGBpoF", "title": "What is your name?", "type": "short_text"}],
                },
                "answers": [
                    {"type": "text", "text": "Laura", "field": {"id": "DlXFaesGBpoF", "type": "short_text"}}
                ],
            },
        }
        body = json.dumps(payload).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now))

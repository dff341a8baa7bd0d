"""Intercom: ``X-Hub-Signature: sha1=<hex>`` = HMAC-**SHA1** of the raw body, keyed with the app's
``client_secret``.

Same header name and format as GitHub's *legacy* signature, but here SHA-1 is the only one
Intercom sends. No timestamp in the scheme (replays are caught downstream by deduplication on
the notification ``id``) and a single signature, so rotation means configuring both secrets.
"""

from __future__ import annotations

import json
from typing import Any

from hookstream.schemas.delivery import Delivery

from .base import EventDescription, Provider, Sample, hmac_digest, pick, plain_secret, prefixed_signature

HEADER = "X-Hub-Signature"


class Intercom(Provider):
    name = "intercom"
    summary = "Intercom webhooks (HMAC-SHA1 hex of the body, sha1= prefix)"
    signature_headers = (HEADER,)
    secret_format = "the app's client_secret (Developer Hub > Basic information), used verbatim"
    sample_event_type = "conversation.user.created"

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(secret, "client secret from the Intercom Developer Hub")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        candidate = prefixed_signature(delivery, HEADER, prefix="sha1=", encoding="hex", size=20)
        return self.match_any([candidate], lambda key: hmac_digest(key, delivery.body, "sha1"))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = pick(payload, "/id") or ""
        created = pick(payload, "/created_at")
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/topic") or "",
            ordering_key=pick(payload, "/data/item/id") or event_id,
            created_at_ms=int(created) * 1000 if created and created.isdecimal() else None,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        digest = hmac_digest(self.keys[key_index], body, "sha1").hex()
        return {HEADER: f"sha1={digest}", "Content-Type": "application/json"}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        payload = {
            "type": "notification_event",
            "app_id": "abc12345",
            "id": event_id or f"notif_{uuid.uuid4()}",
            "topic": event_type,
            "delivery_status": "pending",
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": now,
            "created_at": now,
            "self": None,
            "data": {
                "type": "notification_event_data",
                "item": {
                    "type": "conversation",
                    "id": resource_id or "147",
                    "created_at": now,
                    "updated_at": now,
                    "state": "open",
                    "open": True,
                    "source": {"type": "conversation", "body": "<p>Hi there</p>"},
                },
            },
        }
        body = json.dumps(payload).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now))

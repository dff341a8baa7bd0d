"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`` over ``"{t}.{raw body}"``.

The ``whsec_…`` secret is the HMAC key verbatim (UTF-8, prefix included); it is *not*
base64-decoded like a Standard Webhooks secret. Stripe sends one ``v1`` per active secret
while an endpoint secret is being rolled; any match suffices. Only too-old timestamps are
refused (as in Stripe's SDK).
"""

from __future__ import annotations

import json
from typing import Any

from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    check_timestamp,
    hmac_digest,
    now_seconds,
    pick,
    timestamped_signatures,
)

HEADER = "Stripe-Signature"


class Stripe(Provider):
    name = "stripe"
    summary = "Stripe webhooks (HMAC-SHA256 hex over t.body, several v1 during secret rolls)"
    signature_headers = (HEADER,)
    secret_format = "whsec_… endpoint secret, used verbatim"
    default_tolerance = 300
    sample_event_type = "payment_intent.succeeded"

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        timestamp, candidates = timestamped_signatures(
            delivery, HEADER, separator=",", timestamp_key="t", signature_key="v1", lenient=False
        )
        signed = str(timestamp).encode() + b"." + delivery.body
        matched = self.match_any(candidates, lambda key: hmac_digest(key, signed))
        check_timestamp(timestamp, now_seconds(now), self.tolerance, future=False)
        return matched

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = pick(payload, "/id")
        created = pick(payload, "/created")
        return EventDescription(
            event_id=event_id or "",
            event_type=pick(payload, "/type") or "",
            ordering_key=pick(payload, "/data/object/id") or event_id or "",
            created_at_ms=int(created) * 1000 if created and created.isdigit() else None,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        sigs = ",".join(
            f"v1={hmac_digest(k, str(timestamp).encode() + b'.' + body).hex()}" for k in self.keys
        )
        return {HEADER: f"t={timestamp},{sigs}", "Content-Type": "application/json; charset=utf-8"}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        event_id = event_id or f"evt_{now:x}{id(self) & 0xFFFF:04x}"
        pi = resource_id or "pi_3MtwBwLkdIwHu7ix28a3tqPa"
        payload = {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": now,
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {
                "object": {
                    "id": pi,
                    "object": "payment_intent",
                    "amount": 2000,
                    "amount_received": 2000,
                    "currency": "usd",
                    "customer": "cus_NffrFeUfNV2Hib",
                    "status": "succeeded",
                    "metadata": {"order_id": "6735"},
                    "created": now,
                }
            },
        }
        body = json.dumps(payload, indent=2).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now))

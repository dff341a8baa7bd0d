"""Paddle Billing: ``Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>…]`` over ``"{ts}:{raw body}"``.

The endpoint secret (``pdl_ntfset_…``, older ``pdl_ntf_…``) is the HMAC key verbatim (UTF-8).
Any matching ``h1`` suffices (Paddle sends one per active secret while rotating); ``h1``
entries that are not hex digests (Paddle's own SDK test sends ``h1=dummy``) and unknown keys
are skipped. Paddle's default tolerance is only 5 seconds and, as in the SDK at the reference
commit, only too-old timestamps are refused: keep the clock in sync with NTP, or raise
``tolerance_seconds``. Classic Paddle (RSA ``p_signature`` in the body) is a different scheme.
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
    iso8601_ms,
    now_seconds,
    pick,
    plain_secret,
    timestamped_signatures,
)

HEADER = "Paddle-Signature"
SECRET_PREFIX = "pdl_ntf"


class Paddle(Provider):
    name = "paddle"
    summary = (
        "Paddle Billing notifications (HMAC-SHA256 hex over ts:body, several h1 while rotating, 5 s window)"
    )
    signature_headers = (HEADER,)
    secret_format = "the notification destination's secret key, pdl_ntfset_…, used verbatim"
    default_tolerance = 5
    sample_event_type = "transaction.completed"

    def parse_secret(self, secret: str, index: int) -> bytes:
        key = plain_secret(secret, "secret key of the notification destination")
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError(
                "is not a Paddle notification secret: expected pdl_ntfset_…; copy the secret key of the "
                "notification destination (Developer tools > Notifications), not an API key"
            )
        return key

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        timestamp, candidates = timestamped_signatures(
            delivery, HEADER, separator=";", timestamp_key="ts", signature_key="h1", lenient=True
        )
        signed = str(timestamp).encode() + b":" + delivery.body
        matched = self.match_any(candidates, lambda key: hmac_digest(key, signed))
        check_timestamp(timestamp, now_seconds(now), self.tolerance, future=False)
        return matched

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = pick(payload, "/event_id", "/notification_id") or ""
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/event_type") or "",
            ordering_key=pick(payload, "/data/id") or event_id,
            created_at_ms=iso8601_ms(pick(payload, "/occurred_at")),
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        signed = str(timestamp).encode() + b":" + body
        sigs = ";".join(f"h1={hmac_digest(k, signed).hex()}" for k in self.keys)
        return {HEADER: f"ts={timestamp};{sigs}", "Content-Type": "application/json"}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid
        from datetime import UTC, datetime

        occurred = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        suffix = uuid.uuid4().hex[:26]
        payload = {
            "event_id": event_id or f"evt_{suffix}",
            "event_type": event_type,
            "occurred_at": occurred,
            "notification_id": f"ntf_{uuid.uuid4().hex[:26]}",
            "data": {
                "id": resource_id or "txn_01hv8wptq8987qeep44cyrewp9",
                "status": "completed",
                "customer_id": "ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
                "currency_code": "USD",
                "origin": "web",
                "collection_mode": "automatic",
                "details": {"totals": {"subtotal": "2400", "tax": "480", "total": "2880"}},
                "created_at": occurred,
                "updated_at": occurred,
            },
        }
        body = json.dumps(payload).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now))

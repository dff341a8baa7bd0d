"""Square: ``x-square-hmacsha256-signature`` = base64 HMAC-SHA256 over the notification URL
followed by the raw body, keyed with the subscription's signature key (UTF-8).

The URL is part of the signed bytes, so it must be the notification URL exactly as configured
in the subscription: behind a proxy, set ``public_url`` on the source (ingest passes it as
``delivery.url``). One listener URL shared by several subscriptions makes signatures fail.
No timestamp in the scheme; Square sends one signature, so rotation means configuring both
keys. Redeliveries are caught downstream by deduplication on the body's ``event_id``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    decode_signature,
    hmac_digest,
    iso8601_ms,
    pick,
    plain_secret,
    require_header,
)

HEADER = "x-square-hmacsha256-signature"


class Square(Provider):
    name = "square"
    summary = "Square webhooks (base64 HMAC-SHA256 over notification URL + body; set public_url)"
    signature_headers = (HEADER, "square-environment")
    secret_format = "the subscription's signature key, used verbatim"
    sample_event_type = "payment.updated"
    options = ("public_url",)

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(
            secret, "signature key from the webhook subscription in the Square Developer Console"
        )

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        candidate = decode_signature(require_header(delivery, HEADER), HEADER, encoding="base64", size=32)
        if not delivery.url:
            raise VerificationError(
                VerificationError.MISMATCH,
                "the notification URL is unknown and it is part of the signed bytes: "
                "set public_url on the source to the URL configured in the Square subscription",
            )
        signed = delivery.url.encode("utf-8") + delivery.body
        try:
            return self.match_any([candidate], lambda key: hmac_digest(key, signed))
        except VerificationError as exc:
            raise VerificationError(
                exc.code,
                f"{exc.detail} (signed URL assumed: {delivery.url}; it must match the subscription's)",
            ) from None

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = pick(payload, "/event_id") or ""
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/type") or "",
            ordering_key=pick(payload, "/data/id") or event_id,
            created_at_ms=iso8601_ms(pick(payload, "/created_at")),
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        digest = hmac_digest(self.keys[key_index], url.encode("utf-8") + body)
        return {HEADER: base64.b64encode(digest).decode(), "Content-Type": "application/json"}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid
        from datetime import UTC, datetime

        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payment_id = resource_id or "KkAkhdMsgzn59SM8A89WgKwekxLZY"
        kind = event_type.partition(".")[0] or "payment"
        payload = {
            "merchant_id": "6SSW7HV8K2ST5",
            "type": event_type,
            "event_id": event_id or str(uuid.uuid4()),
            "created_at": created,
            "data": {
                "type": kind,
                "id": payment_id,
                "object": {
                    kind: {
                        "id": payment_id,
                        "amount_money": {"amount": 100, "currency": "USD"},
                        "status": "COMPLETED",
                        "source_type": "CARD",
                        "location_id": "L88917AVBK2S5",
                        "order_id": "03O3USaPaAaFnI6kkwB1JxGgBsUZY",
                        "created_at": created,
                        "updated_at": created,
                        "version": 2,
                    }
                },
            },
        }
        body = json.dumps(payload).encode()
        headers = self.sign(body, timestamp=now, url=url)
        headers["square-environment"] = "Sandbox"
        return Sample(body=body, headers=headers)

"""Shopify: ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body, keyed with the
app's client secret. Events (preview) deliveries use unprefixed ``shopify-*`` headers.

After a secret rotation Shopify keeps signing with the old secret for up to an hour, so
configure both; the scheme has no timestamp.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import EventDescription, Provider, Sample, decode_signature, hmac_digest, pick

HEADERS = ("X-Shopify-Hmac-Sha256", "shopify-hmac-sha256")


def _header(delivery: Delivery, name: str) -> str:
    """Classic ``X-Shopify-Name`` or Events-style ``shopify-name``."""
    return delivery.headers.get(f"X-Shopify-{name}") or delivery.headers.get(f"shopify-{name}") or ""


class Shopify(Provider):
    name = "shopify"
    summary = "Shopify webhooks (base64 HMAC-SHA256 of the body)"
    signature_headers = (*HEADERS, "X-Shopify-Topic", "X-Shopify-Webhook-Id", "X-Shopify-Shop-Domain")
    secret_format = "the app's client secret (configure old and new while rotating)"
    sample_event_type = "orders/create"

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        value = _header(delivery, "Hmac-Sha256").strip()
        if not value:
            raise VerificationError(VerificationError.MISSING, "header X-Shopify-Hmac-Sha256 is missing")
        candidate = decode_signature(value, "X-Shopify-Hmac-Sha256", encoding="base64", size=32)
        return self.match_any([candidate], lambda key: hmac_digest(key, delivery.body))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        shop = _header(delivery, "Shop-Domain")
        resource = pick(payload, "/id", "/admin_graphql_api_id") or _header(delivery, "Resource-Id")
        webhook_id = _header(delivery, "Webhook-Id") or _header(delivery, "Event-Id")
        return EventDescription(
            event_id=webhook_id,
            event_type=_header(delivery, "Topic"),
            ordering_key=f"{shop}/{resource}" if resource else (shop or webhook_id),
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        digest = base64.b64encode(hmac_digest(self.keys[key_index], body)).decode()
        return {"X-Shopify-Hmac-Sha256": digest, "Content-Type": "application/json"}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        order_id = int(resource_id) if resource_id.isdigit() else 820982911946154508
        payload = {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "email": "jon@example.com",
            "currency": "USD",
            "total_price": "403.00",
            "financial_status": "paid",
            "line_items": [
                {"id": 866550311766439020, "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"}
            ],
        }
        body = json.dumps(payload).encode()
        headers = self.sign(body, timestamp=now)
        headers.update(
            {
                "X-Shopify-Topic": event_type,
                "X-Shopify-Shop-Domain": "example.myshopify.com",
                "X-Shopify-API-Version": "2024-07",
                "X-Shopify-Webhook-Id": event_id or str(uuid.uuid4()),
                "X-Shopify-Triggered-At": "2024-07-01T12:00:00Z",
            }
        )
        return Sample(body=body, headers=headers)

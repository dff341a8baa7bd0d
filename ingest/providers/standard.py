"""Standard Webhooks (and Svix, its origin): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64> [v1,<base64> …]`` over ``"{id}.{timestamp}.{raw body}"``.

The secret is ``whsec_`` + base64 of the key: strip the prefix and base64-decode (unlike
Stripe's ``whsec_``). Several signatures express rotation; unknown versions (``v1a``,
``v2``) are skipped. Timestamps more than the tolerance away either way are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    check_timestamp,
    hmac_digest,
    now_seconds,
    parse_unix_seconds,
    pick,
)

PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    raw = secret[len(PREFIX) :] if secret.startswith(PREFIX) else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "is not a Standard Webhooks secret: expected whsec_ followed by base64 "
            "(copy it exactly as the sender shows it)"
        ) from None
    if not key:
        raise ValueError("decodes to an empty key")
    return key


class StandardWebhooks(Provider):
    name = "standard"
    summary = "Standard Webhooks v1 (HMAC-SHA256 base64 over id.timestamp.body); accepts svix-* headers too"
    header_prefixes: tuple[str, ...] = ("webhook", "svix")
    signature_headers = ("webhook-id", "webhook-timestamp", "webhook-signature")
    secret_format = "whsec_<base64>, base64-decoded after the prefix"
    default_tolerance = 300
    sample_event_type = "invoice.paid"
    options = ("ordering_key_pointer",)

    def parse_secret(self, secret: str, index: int) -> bytes:
        return decode_secret(secret)

    def _headers(self, delivery: Delivery) -> tuple[str, str, str]:
        for prefix in self.header_prefixes:
            if f"{prefix}-signature" in delivery.headers or f"{prefix}-id" in delivery.headers:
                break
        else:
            prefix = self.header_prefixes[0]
        values = []
        for part in ("id", "timestamp", "signature"):
            v = delivery.headers.get(f"{prefix}-{part}", "").strip()
            if not v:
                raise VerificationError(VerificationError.MISSING, f"header {prefix}-{part} is missing")
            values.append(v)
        return values[0], values[1], values[2]

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        msg_id, ts_text, header = self._headers(delivery)
        ts = parse_unix_seconds(ts_text, "webhook-timestamp")
        candidates: list[bytes] = []
        for entry in header.split():
            version, sep, sig = entry.partition(",")
            if not sep:
                raise VerificationError(
                    VerificationError.MALFORMED, "webhook-signature entries must look like v1,<base64>"
                )
            if version != "v1":
                continue
            try:
                candidate = base64.b64decode(sig, validate=True)
            except (binascii.Error, ValueError):
                raise VerificationError(
                    VerificationError.MALFORMED, "webhook-signature v1 entry is not base64"
                ) from None
            if len(candidate) != 32:
                raise VerificationError(
                    VerificationError.MALFORMED, "webhook-signature v1 entry is not an HMAC-SHA256 digest"
                )
            candidates.append(candidate)
        if not candidates:
            raise VerificationError(VerificationError.MALFORMED, "webhook-signature has no v1 signature")
        signed = f"{msg_id}.{ts}.".encode() + delivery.body
        matched = self.match_any(candidates, lambda key: hmac_digest(key, signed))
        check_timestamp(ts, now_seconds(now), self.tolerance, future=True)
        return matched

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        prefix = "svix" if "svix-id" in delivery.headers else "webhook"
        msg_id = delivery.headers.get(f"{prefix}-id", "")
        pointer = self.options.get("ordering_key_pointer")
        key = pick(payload, pointer) if pointer else None
        return EventDescription(
            event_id=msg_id,
            event_type=pick(payload, "/type", "/event_type", "/eventType") or "",
            ordering_key=key or msg_id,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        prefix = self.header_prefixes[0]
        signed = f"{event_id}.{timestamp}.".encode() + body
        sigs = " ".join("v1," + base64.b64encode(hmac_digest(k, signed)).decode() for k in self.keys)
        return {
            f"{prefix}-id": event_id,
            f"{prefix}-timestamp": str(timestamp),
            f"{prefix}-signature": sigs,
            "Content-Type": "application/json",
        }

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        payload = {
            "type": event_type,
            "timestamp": "2024-07-01T12:00:00Z",
            "data": {"id": resource_id or "inv_1234", "amount": 4200, "currency": "eur"},
        }
        body = json.dumps(payload).encode()
        return Sample(
            body=body, headers=self.sign(body, timestamp=now, event_id=event_id or f"msg_{uuid.uuid4().hex}")
        )


class Svix(StandardWebhooks):
    name = "svix"
    summary = "Svix (Standard Webhooks with svix-* headers; webhook-* accepted too)"
    header_prefixes = ("svix", "webhook")
    signature_headers = ("svix-id", "svix-timestamp", "svix-signature")

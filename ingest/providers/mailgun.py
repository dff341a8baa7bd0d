"""Mailgun: the signature travels in the **body**, not a header: JSON webhooks carry
``{"signature": {"timestamp", "token", "signature"}, "event-data": {…}}``, legacy form posts the
fields ``timestamp``, ``token`` and ``signature``. ``signature`` = hex HMAC-SHA256 of
``timestamp + token`` keyed with the HTTP webhook signing key.

**The event data is NOT signed.** A valid signature only proves that Mailgun sent *some*
request with that timestamp and token; anyone who captures one delivery can attach other
``event-data`` to its signature block. The timestamp window (default 300 s, either direction)
bounds how long that is possible; re-fetch anything security-relevant from Mailgun's API
rather than trusting ``event-data``. The token (50 random characters) identifies one signing:
ingest's dedupe is on ``event-data.id`` (so that retries collapse), which is exactly the field
an attacker controls, so keep the window short.

Only JSON webhooks and url-encoded form posts are understood (multipart route forwards are
not). Subaccount deliveries must be verified with the subaccount's own signing key.
"""

from __future__ import annotations

import json
import secrets as random_tokens
from typing import Any
from urllib.parse import parse_qs

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    check_timestamp,
    decode_signature,
    hmac_digest,
    now_seconds,
    parse_unix_seconds,
    pick,
    plain_secret,
)

FIELDS = ("timestamp", "token", "signature")


def signature_block(delivery: Delivery) -> tuple[str, str, str]:
    """``(timestamp, token, signature)`` from a JSON or url-encoded form body."""
    ctype = delivery.content_type.split(";")[0].strip().lower()
    block: Any
    if ctype == "application/x-www-form-urlencoded":
        form = parse_qs(delivery.body.decode("utf-8", "replace"), keep_blank_values=True)
        block = {k: v[0] for k, v in form.items() if k in FIELDS}
        where = "the form fields"
    elif ctype.startswith("multipart/"):
        raise VerificationError(
            VerificationError.MISSING, "multipart Mailgun posts are not supported: use JSON webhooks"
        )
    else:
        try:
            payload = json.loads(delivery.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise VerificationError(
                VerificationError.MISSING, "the body is not JSON, so it carries no Mailgun signature block"
            ) from None
        block = payload.get("signature") if isinstance(payload, dict) else None
        where = "the body's signature block"
        if block is None:
            raise VerificationError(VerificationError.MISSING, "the body has no signature block")
    if not isinstance(block, dict):
        raise VerificationError(VerificationError.MALFORMED, "the body's signature is not an object")
    if not any(block.get(f) for f in FIELDS):
        raise VerificationError(VerificationError.MISSING, f"{where}: no timestamp, token or signature")
    values = []
    for field in FIELDS:
        value = block.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and field == "timestamp":
            value = str(value)
        if not isinstance(value, str) or not value:
            raise VerificationError(
                VerificationError.MALFORMED, f"{where}: {field} is missing or not a string"
            )
        values.append(value)
    return values[0], values[1], values[2]


def signature_for(key: bytes, timestamp: str, token: str) -> str:
    return hmac_digest(key, (timestamp + token).encode("utf-8")).hex()


class Mailgun(Provider):
    name = "mailgun"
    summary = "Mailgun webhooks (HMAC-SHA256 hex of timestamp + token in the body; event-data is NOT signed)"
    signature_headers = ()
    secret_format = "the HTTP webhook signing key (Sending > Webhooks), used verbatim"
    default_tolerance = 300
    sample_event_type = "delivered"

    def parse_secret(self, secret: str, index: int) -> bytes:
        return plain_secret(secret, "HTTP webhook signing key from Mailgun (Sending > Webhooks)")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        timestamp, token, signature = signature_block(delivery)
        ts = parse_unix_seconds(timestamp, "signature.timestamp")
        candidate = decode_signature(signature, "signature.signature", encoding="hex", size=32)
        message = (timestamp + token).encode("utf-8")
        matched = self.match_any([candidate], lambda key: hmac_digest(key, message))
        check_timestamp(ts, now_seconds(now), self.tolerance, future=True)
        return matched

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        event_id = pick(payload, "/event-data/id", "/signature/token", "/token") or ""
        created = pick(payload, "/event-data/timestamp")
        try:
            created_ms = int(float(created) * 1000) if created else None
        except (ValueError, OverflowError):
            created_ms = None
        return EventDescription(
            event_id=event_id,
            event_type=pick(payload, "/event-data/event", "/event") or "",
            ordering_key=pick(payload, "/event-data/message/headers/message-id", "/Message-Id") or event_id,
            created_at_ms=created_ms,
        )

    def sign_body(self, body: bytes, *, timestamp: int, token: str = "", key_index: int = 0) -> bytes:
        """``body`` (a JSON object) with a fresh signature block, as Mailgun would send it."""
        payload = json.loads(body)
        token = token or random_tokens.token_hex(25)
        ts = str(timestamp)
        payload["signature"] = {
            "timestamp": ts,
            "token": token,
            "signature": signature_for(self.keys[key_index], ts, token),
        }
        return json.dumps(payload).encode()

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        raise NotImplementedError("Mailgun signs inside the body, not in headers: use sign_body()")

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        event_data = {
            "id": event_id or random_tokens.token_urlsafe(16),
            "timestamp": float(now),
            "log-level": "info",
            "event": event_type,
            "recipient": "alice@example.com",
            "recipient-domain": "example.com",
            "tags": ["newsletter"],
            "envelope": {"transport": "smtp", "sender": "bob@mg.example.com", "targets": "alice@example.com"},
            "message": {
                "headers": {
                    "to": "Alice <alice@example.com>",
                    "message-id": resource_id or "20130503182626.18666.16540@mg.example.com",
                    "from": "Bob <bob@mg.example.com>",
                    "subject": "Test delivered webhook",
                },
                "size": 111,
            },
            "delivery-status": {"code": 250, "message": "OK", "attempt-no": 1},
        }
        body = self.sign_body(json.dumps({"event-data": event_data}).encode(), timestamp=now)
        return Sample(body=body, headers={"Content-Type": "application/json"})

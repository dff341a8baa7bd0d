"""SendGrid Signed Event Webhook: ``X-Twilio-Email-Event-Webhook-Signature`` is a base64 DER
ECDSA P-256 / SHA-256 signature over ``X-Twilio-Email-Event-Webhook-Timestamp`` + raw body,
checked with the base64 DER SubjectPublicKeyInfo "Verification Key" from Mail Settings.

The body is a JSON array of events ending in ``\\r\\n``: verify it byte for byte. SendGrid
publishes no freshness window, its SDK checks none and it retries for up to 24 h, so there is no
default tolerance (set ``tolerance_seconds`` to refuse older timestamps, in either direction).

One delivery is one batch. Its event id is the ``sg_event_id`` of a single-event batch, else a
hash of all of them; its type is the event name, or the sorted distinct names joined by ``,``
for a mixed batch; its ordering key is the first event's ``sg_message_id``.

The optional ``signing_key`` option (a base64 DER PKCS#8 or PEM P-256 private key of a key pair
you made, whose public key is in ``secrets``) is only for ``hookstream send`` and tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    check_timestamp,
    decode_signature,
    now_seconds,
    parse_unix_seconds,
    require_header,
)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
ALGORITHM = ec.ECDSA(hashes.SHA256())


def _load_key(text: str, *, private: bool) -> Any:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        data = text.encode()
        return (
            serialization.load_pem_private_key(data, None)
            if private
            else serialization.load_pem_public_key(data)
        )
    der = base64.b64decode(text, validate=True)
    return (
        serialization.load_der_private_key(der, None) if private else serialization.load_der_public_key(der)
    )


def parse_public_key(text: str) -> ec.EllipticCurvePublicKey:
    try:
        key = _load_key(text, private=False)
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(
            "is not a base64 DER P-256 public key: copy the Verification Key from SendGrid "
            "(Settings > Mail Settings > Signed Event Webhook), it starts with MFkwEwYHKoZIzj0CAQYI"
        )
    return key


def parse_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = _load_key(text, private=True)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(
            "signing_key is not a base64 DER (PKCS#8) or PEM P-256 private key "
            "(only used by `hookstream send` and tests)"
        )
    return key


def sign_with(private_key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | str) -> dict[str, str]:
    """Headers for ``body`` as SendGrid would send them, signed with ``private_key``."""
    ts = str(timestamp)
    signature = private_key.sign(ts.encode() + body, ALGORITHM)
    return {
        SIGNATURE: base64.b64encode(signature).decode(),
        TIMESTAMP: ts,
        "Content-Type": "application/json",
    }


class SendGrid(Provider):
    name = "sendgrid"
    summary = "SendGrid Signed Event Webhook (ECDSA P-256/SHA-256 over timestamp + body; public key)"
    signature_headers = (SIGNATURE, TIMESTAMP)
    secret_format = "the Signed Event Webhook Verification Key (base64 DER public key)"
    sample_event_type = "delivered"
    options = ("signing_key",)

    def __init__(self, secrets, *, tolerance=None, options=None, source="") -> None:  # type: ignore[no-untyped-def]
        super().__init__(secrets, tolerance=tolerance, options=options, source=source)
        private = self.options.get("signing_key")
        self.signing_key = parse_private_key(str(private)) if private else None

    def parse_secret(self, secret: str, index: int) -> ec.EllipticCurvePublicKey:
        return parse_public_key(secret)

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        signature = decode_signature(require_header(delivery, SIGNATURE), SIGNATURE, encoding="base64")
        try:
            decode_dss_signature(signature)
        except ValueError:
            raise VerificationError(
                VerificationError.MALFORMED, f"{SIGNATURE} is not a DER-encoded ECDSA signature"
            ) from None
        ts_text = require_header(delivery, TIMESTAMP)
        ts = parse_unix_seconds(ts_text, TIMESTAMP)
        message = ts_text.encode() + delivery.body
        matched = self.match_public_key(lambda key: key.verify(signature, message, ALGORITHM), "ECDSA")
        check_timestamp(ts, now_seconds(now), self.tolerance, future=True)
        return matched

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        events = [e for e in payload if isinstance(e, dict)] if isinstance(payload, list) else []
        ids = [str(e["sg_event_id"]) for e in events if e.get("sg_event_id")]
        if len(events) == 1 and ids:
            event_id = ids[0]
        elif ids:
            event_id = "batch:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
        else:
            event_id = ""
        names = sorted({str(e["event"]) for e in events if e.get("event")})
        first = events[0] if events else {}
        created = first.get("timestamp")
        created_ms = int(created) * 1000 if type(created) is int else None
        return EventDescription(
            event_id=event_id,
            event_type=",".join(names),
            ordering_key=str(first.get("sg_message_id") or first.get("email") or event_id),
            created_at_ms=created_ms,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        key = self.require_signing_key("SendGrid", "a test P-256 key pair's private key")
        return sign_with(key, body, timestamp)

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        message_id = resource_id or "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
        event = {
            "email": "example@test.com",
            "timestamp": now,
            "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": event_type,
            "category": ["cat facts"],
            "sg_event_id": event_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            "sg_message_id": message_id,
            "response": "250 OK",
        }
        body = json.dumps([event], separators=(",", ":")).encode() + b"\r\n"
        return Sample(body=body, headers=self.sign(body, timestamp=now))

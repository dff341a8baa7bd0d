"""Discord interactions and webhook events: ``X-Signature-Ed25519`` (hex, 64 bytes) is an Ed25519
signature over ``X-Signature-Timestamp`` + raw body, checked with the application's public key.

The configured "secret" is the app's **public key** (64 hex characters from the developer
portal), so nothing secret lives in the config. Discord routinely sends deliberately invalid
signatures and removes endpoints that accept them: every failure is a VerificationError (401).

Tolerance: Discord publishes no window and its SDKs check none. The default is 300 s in either
direction (interactions must be answered within 3 s and are never retried); raise
``tolerance_seconds`` if webhook-event retries (up to 10 minutes) are ever refused as stale.

Handshakes, after the signature verified: an interaction PING (type 1) is answered
``{"type": 1}``; other interactions are acknowledged with a deferred response (type 5, or 6 for
components) and published, so a consumer can follow up with the interaction token within
15 minutes; webhook events (outer type 0 = PING, 1 = EVENT) are answered 204 with no body.

The optional ``signing_key`` option (hex Ed25519 seed of a key pair you made, whose public key
is in ``secrets``) is only for ``hookstream send`` and tests: Discord's private key never is.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Handshake,
    Provider,
    Sample,
    check_timestamp,
    content_hash_id,
    decode_signature,
    iso8601_ms,
    now_seconds,
    parse_unix_seconds,
    pick,
    require_header,
)

SIGNATURE = "X-Signature-Ed25519"
TIMESTAMP = "X-Signature-Timestamp"
DISCORD_EPOCH_MS = 1420070400000

INTERACTION_TYPES = {
    1: "PING",
    2: "APPLICATION_COMMAND",
    3: "MESSAGE_COMPONENT",
    4: "APPLICATION_COMMAND_AUTOCOMPLETE",
    5: "MODAL_SUBMIT",
}
PONG = 1
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
AUTOCOMPLETE_RESULT = 8


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = bytes.fromhex(text.strip())
        if len(raw) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError(
            "is not a 32-byte hex Ed25519 public key: copy the PUBLIC KEY from the Discord developer "
            "portal (General Information), not the bot token or client secret"
        ) from None


def parse_private_seed(text: str) -> Ed25519PrivateKey:
    try:
        raw = bytes.fromhex(str(text).strip())
        if len(raw) != 32:
            raise ValueError
        return Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError:
        raise ValueError(
            "signing_key is not a 32-byte hex Ed25519 seed (only used by `hookstream send` and tests)"
        ) from None


def sign_with(private_key: Ed25519PrivateKey, body: bytes, timestamp: int | str) -> dict[str, str]:
    """Headers for ``body`` as Discord would send them, signed with ``private_key``."""
    ts = str(timestamp)
    return {
        SIGNATURE: private_key.sign(ts.encode() + body).hex(),
        TIMESTAMP: ts,
        "Content-Type": "application/json",
    }


def is_webhook_event(payload: Any) -> bool:
    """Webhook events carry ``{version, application_id, type, event?}``; interactions an id and token."""
    return isinstance(payload, dict) and "token" not in payload and "id" not in payload


class Discord(Provider):
    name = "discord"
    summary = "Discord interactions and webhook events (Ed25519 over timestamp + body; app public key)"
    signature_headers = (SIGNATURE, TIMESTAMP)
    secret_format = "the application's PUBLIC KEY, 64 hex characters"
    default_tolerance = 300
    sample_event_type = "APPLICATION_COMMAND"
    options = ("signing_key",)

    def __init__(self, secrets, *, tolerance=None, options=None, source="") -> None:  # type: ignore[no-untyped-def]
        super().__init__(secrets, tolerance=tolerance, options=options, source=source)
        seed = self.options.get("signing_key")
        self.signing_key = parse_private_seed(seed) if seed else None

    def parse_secret(self, secret: str, index: int) -> Ed25519PublicKey:
        return parse_public_key(secret)

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        signature = decode_signature(require_header(delivery, SIGNATURE), SIGNATURE, encoding="hex", size=64)
        ts_text = require_header(delivery, TIMESTAMP)
        ts = parse_unix_seconds(ts_text, TIMESTAMP)
        message = ts_text.encode() + delivery.body
        matched = self.match_public_key(lambda key: key.verify(signature, message), "Ed25519")
        check_timestamp(ts, now_seconds(now), self.tolerance, future=True)
        return matched

    def handshake(self, delivery: Delivery, payload: Any) -> Handshake | None:
        if not isinstance(payload, dict):
            return None
        kind = payload.get("type")
        if is_webhook_event(payload):
            # Discord wants 204 and no body for webhook events, PING (0) and EVENT (1) alike.
            return Handshake(body=None, status=204, publish=kind != 0)
        if kind == 1:
            return Handshake(body={"type": PONG})
        if kind == 3:
            return Handshake(body={"type": DEFERRED_UPDATE_MESSAGE}, publish=True)
        if kind == 4:
            return Handshake(body={"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}}, publish=True)
        if kind in (2, 5):
            return Handshake(body={"type": DEFERRED_CHANNEL_MESSAGE}, publish=True)
        return None

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        if is_webhook_event(payload):
            event_id = content_hash_id(self.source, delivery.body)
            kind = pick(payload, "/event/type") or ("PING" if pick(payload, "/type") == "0" else "")
            key = pick(payload, "/event/data/guild/id", "/event/data/user/id", "/application_id")
            return EventDescription(
                event_id=event_id,
                event_type=kind,
                ordering_key=key or event_id,
                created_at_ms=iso8601_ms(pick(payload, "/event/timestamp")),
            )
        event_id = pick(payload, "/id") or ""
        type_number = pick(payload, "/type") or ""
        kind = (
            INTERACTION_TYPES.get(int(type_number), type_number) if type_number.isdecimal() else type_number
        )
        command = pick(payload, "/data/name")
        if command and kind in ("APPLICATION_COMMAND", "APPLICATION_COMMAND_AUTOCOMPLETE"):
            kind = f"{kind}.{command}"
        guild = pick(payload, "/guild_id") or ""
        channel = pick(payload, "/channel_id", "/channel/id") or ""
        user = pick(payload, "/member/user/id", "/user/id") or ""
        return EventDescription(
            event_id=event_id,
            event_type=kind,
            ordering_key=f"{guild}/{channel}" if guild or channel else (user or event_id),
            created_at_ms=(int(event_id) >> 22) + DISCORD_EPOCH_MS if event_id.isdecimal() else None,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        return sign_with(self.require_signing_key("Discord", "a test key pair's hex seed"), body, timestamp)

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        snowflake = str(((now * 1000 - DISCORD_EPOCH_MS) << 22) | 0x1F0042)
        guild, _, channel = (resource_id or "290926798626357250/290926798626357999").partition("/")
        name, _, command = event_type.partition(".")
        type_number = next((n for n, v in INTERACTION_TYPES.items() if v == name), 2)
        payload: dict[str, Any] = {
            "id": event_id or snowflake,
            "application_id": "775799577604948029",
            "type": type_number,
            "token": "aW50ZXJhY3Rpb246ODg0NzM0MzY1NzE1MjkxMTY2OnNhbXBsZQ",
            "version": 1,
        }
        if type_number != 1:
            payload.update(
                {
                    "guild_id": guild,
                    "channel_id": channel or guild,
                    "data": {"id": "771825006014889984", "name": command or "blep", "type": 1},
                    "member": {
                        "user": {"id": "53908232506183680", "username": "Mason", "global_name": "Mason"},
                        "roles": [],
                    },
                    "locale": "en-US",
                }
            )
        body = json.dumps(payload).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now))

"""Slack: ``X-Slack-Signature: v0=<hex>`` over ``"v0:{X-Slack-Request-Timestamp}:{raw body}"``.

Timestamps are refused when more than the tolerance away in either direction (as in
slack_sdk). The Events API ``url_verification`` handshake is answered with its challenge,
after the signature has been verified.
"""

from __future__ import annotations

import json
from typing import Any

from hookstream.schemas.delivery import Delivery

from .base import EventDescription, Handshake, Provider, Sample, pick, v0_signature

SIGNATURE = "X-Slack-Signature"
TIMESTAMP = "X-Slack-Request-Timestamp"


class Slack(Provider):
    name = "slack"
    summary = "Slack Events API, commands, interactivity (v0 HMAC-SHA256 hex)"
    signature_headers = (SIGNATURE, TIMESTAMP)
    secret_format = "the app's signing secret"
    default_tolerance = 300
    sample_event_type = "message"

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        return self.verify_v0(delivery, now, SIGNATURE, TIMESTAMP)

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        if isinstance(payload, dict) and isinstance(payload.get("payload"), str):
            # Interactivity posts a form whose `payload` field is JSON.
            try:
                payload = json.loads(payload["payload"])
            except ValueError:
                pass
        team = pick(payload, "/team_id", "/team/id") or ""
        channel = pick(payload, "/event/channel", "/channel_id", "/channel/id", "/event/item/channel") or ""
        event_type = pick(payload, "/event/type", "/command", "/type") or ""
        event_id = pick(payload, "/event_id", "/trigger_id") or ""
        return EventDescription(
            event_id=event_id,
            event_type=event_type,
            ordering_key=f"{team}/{channel}" if team or channel else event_id,
            created_at_ms=int(float(t) * 1000) if (t := pick(payload, "/event_time")) else None,
        )

    def handshake(self, delivery: Delivery, payload: Any) -> Handshake | None:
        if isinstance(payload, dict) and payload.get("type") == "url_verification":
            return Handshake(body={"challenge": payload.get("challenge", "")})
        return None

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        return {
            SIGNATURE: v0_signature(self.keys[key_index], timestamp, body),
            TIMESTAMP: str(timestamp),
            "Content-Type": "application/json",
        }

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        payload = {
            "token": "XXYYZZ",
            "team_id": "T123ABC456",
            "api_app_id": "A123ABC456",
            "event": {
                "type": event_type,
                "channel": resource_id or "C123ABC456",
                "user": "U123ABC456",
                "text": "Hello world",
                "ts": f"{now}.000200",
            },
            "type": "event_callback",
            "event_id": event_id or f"Ev{now:X}",
            "event_time": now,
        }
        body = json.dumps(payload).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now))

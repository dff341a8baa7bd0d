"""GitHub: ``X-Hub-Signature-256: sha256=<hex>`` = HMAC-SHA256 of the raw body.

No timestamp in the scheme: replays are caught downstream by deduplication on
``X-GitHub-Delivery``. The legacy SHA-1 ``X-Hub-Signature`` is never accepted on its own.
GitHub sends one signature, so rotation means trying each configured secret.
"""

from __future__ import annotations

import json
from typing import Any

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import EventDescription, Provider, Sample, hmac_digest, pick, prefixed_signature

HEADER = "X-Hub-Signature-256"


class GitHub(Provider):
    name = "github"
    summary = "GitHub webhooks (HMAC-SHA256 hex of the body, sha256= prefix)"
    signature_headers = (HEADER, "X-GitHub-Event", "X-GitHub-Delivery")
    secret_format = "the webhook secret (any string)"
    sample_event_type = "push"

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        if HEADER not in delivery.headers and "X-Hub-Signature" in delivery.headers:
            raise VerificationError(
                VerificationError.MISSING,
                f"only the legacy SHA-1 X-Hub-Signature was sent; {HEADER} is required",
            )
        candidate = prefixed_signature(delivery, HEADER, prefix="sha256=", encoding="hex", size=32)
        return self.match_any([candidate], lambda key: hmac_digest(key, delivery.body))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        delivery_id = delivery.headers.get("X-GitHub-Delivery", "")
        event = delivery.headers.get("X-GitHub-Event", "")
        action = pick(payload, "/action")
        return EventDescription(
            event_id=delivery_id,
            event_type=f"{event}.{action}" if event and action else event,
            ordering_key=pick(payload, "/repository/full_name") or delivery_id,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        return {
            HEADER: "sha256=" + hmac_digest(self.keys[key_index], body).hex(),
            "Content-Type": "application/json",
        }

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        event, _, action = event_type.partition(".")
        payload: dict[str, Any] = {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "repository": {
                "id": 1296269,
                "full_name": resource_id or "octocat/Hello-World",
                "private": False,
            },
            "pusher": {"name": "octocat", "email": "octocat@github.com"},
            "sender": {"login": "octocat", "id": 1},
        }
        if action:
            payload["action"] = action
        body = json.dumps(payload).encode()
        headers = self.sign(body, timestamp=now)
        headers.update(
            {
                "X-GitHub-Event": event or "push",
                "X-GitHub-Delivery": event_id or str(uuid.uuid4()),
                "X-GitHub-Hook-ID": "292430182",
                "User-Agent": "GitHub-Hookshot/044aadd",
            }
        )
        return Sample(body=body, headers=headers)

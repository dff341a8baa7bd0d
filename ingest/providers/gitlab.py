"""GitLab: ``X-Gitlab-Token`` carries the configured secret token itself, compared in constant
time against every configured token. Nothing is signed: any body passes with the right token,
and replays are only caught downstream by deduplication on ``Idempotency-Key``.

GitLab's newer signing token (behind the ``webhook_signing_token`` feature flag) makes
deliveries Standard Webhooks v1 (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).
Configure it as ``whsec_…``: when a delivery has ``webhook-signature`` and a signing token is
configured, it is verified exactly as the ``standard`` provider does (±300 s by default) and the
plain token is not consulted. When only signing tokens are configured, unsigned deliveries are
refused, so the plain token cannot be used to downgrade.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import EventDescription, Provider, Sample, pick, plain_secret, require_header
from .standard import PREFIX as SIGNING_PREFIX
from .standard import StandardWebhooks, decode_secret

TOKEN = "X-Gitlab-Token"
SIGNATURE = "webhook-signature"


class GitLabKey(NamedTuple):
    token: bytes | None
    """A plain secret token, compared with X-Gitlab-Token; None for a signing token."""
    signing_key: bytes | None
    """The decoded ``whsec_`` signing token; None for a plain token."""


def _digest(value: bytes) -> bytes:
    # Hash both sides so the constant-time comparison also hides the configured token's length.
    return hashlib.sha256(value).digest()


class GitLab(Provider):
    name = "gitlab"
    summary = (
        "GitLab webhooks (X-Gitlab-Token compared in constant time; whsec_ signing token = Standard Webhooks)"
    )
    signature_headers = (TOKEN, "X-Gitlab-Event", "X-Gitlab-Event-UUID", "Idempotency-Key", SIGNATURE)
    secret_format = "the webhook's secret token (any string), or its signing token whsec_<base64>"
    default_tolerance = 300
    """Only for deliveries signed with a signing token; the plain token scheme has no timestamp."""
    sample_event_type = "push"

    def __init__(self, secrets, *, tolerance=None, options=None, source="") -> None:  # type: ignore[no-untyped-def]
        super().__init__(secrets, tolerance=tolerance, options=options, source=source)
        signing = [(i, s) for i, s in enumerate(secrets) if s.startswith(SIGNING_PREFIX)]
        self._signing_indexes = [i for i, _ in signing]
        self._signing = (
            StandardWebhooks([s for _, s in signing], tolerance=self.tolerance, source=self.source)
            if signing
            else None
        )

    def parse_secret(self, secret: str, index: int) -> GitLabKey:
        if secret.startswith(SIGNING_PREFIX):
            try:
                return GitLabKey(token=None, signing_key=decode_secret(secret))
            except ValueError:
                raise ValueError(
                    "is not a GitLab signing token: expected whsec_ followed by base64; copy it exactly "
                    "from the webhook's settings (or use the plain secret token, without whsec_)"
                ) from None
        return GitLabKey(
            token=plain_secret(secret, "secret token from the GitLab webhook settings"), signing_key=None
        )

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        signed = delivery.headers.get(SIGNATURE, "").strip() != ""
        if signed and self._signing is not None:
            return self._signing_indexes[self._signing.verify(delivery, now)]
        if not any(k.token is not None for k in self.keys):
            raise VerificationError(
                VerificationError.MISSING,
                f"header {SIGNATURE} is missing, and only signing tokens (whsec_…) are configured",
            )
        candidate = _digest(require_header(delivery, TOKEN).encode("utf-8"))
        return self.match_any([candidate], lambda key: _digest(key.token) if key.token is not None else b"")

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        h = delivery.headers
        event_id = h.get("Idempotency-Key") or h.get("X-Gitlab-Event-UUID") or h.get("webhook-id") or ""
        kind = pick(payload, "/object_kind", "/event_name") or h.get("X-Gitlab-Event", "")
        action = pick(payload, "/object_attributes/action")
        return EventDescription(
            event_id=event_id,
            event_type=f"{kind}.{action}" if kind and action else kind,
            ordering_key=pick(payload, "/project/path_with_namespace") or event_id,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        key = self.keys[key_index]
        if key.signing_key is not None and self._signing is not None:
            headers = self._signing.sign(body, timestamp=timestamp, event_id=event_id)
        else:
            assert key.token is not None
            headers = {TOKEN: key.token.decode("utf-8"), "Content-Type": "application/json"}
        if event_id:
            headers["Idempotency-Key"] = event_id
            headers["X-Gitlab-Event-UUID"] = event_id
        return headers

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        project = resource_id or "jsmith/example"
        payload = {
            "object_kind": event_type,
            "event_name": event_type,
            "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
            "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "ref": "refs/heads/main",
            "user_id": 4,
            "user_username": "jsmith",
            "project_id": 15,
            "project": {
                "id": 15,
                "name": project.rpartition("/")[2],
                "path_with_namespace": project,
                "web_url": f"https://gitlab.example.com/{project}",
                "default_branch": "main",
            },
            "commits": [],
            "total_commits_count": 0,
        }
        body = json.dumps(payload).encode()
        event_id = event_id or str(uuid.uuid4())
        headers = self.sign(body, timestamp=now, event_id=event_id)
        headers.update(
            {
                "X-Gitlab-Event": f"{event_type.replace('_', ' ').title()} Hook",
                "X-Gitlab-Webhook-UUID": "f4b2a8f0-2d5c-4c6e-9a43-3f0e1c2b7d11",
                "X-Gitlab-Instance": "https://gitlab.example.com",
                "User-Agent": "GitLab/17.5.0",
            }
        )
        return Sample(body=body, headers=headers)

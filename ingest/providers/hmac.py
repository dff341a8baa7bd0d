"""Generic HMAC: a configurable header carrying ``[prefix]`` + hex or base64 HMAC of the raw body.

For senders that follow no published scheme. Options on the source:
``signature_header`` (default ``X-Signature``), ``algorithm`` (sha256 | sha512 | sha1),
``encoding`` (hex | base64), ``prefix`` (e.g. ``sha256=``), ``event_id_header``,
``event_type_header`` / ``event_type_pointer``, ``ordering_key_pointer``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hookstream.schemas.delivery import Delivery

from .base import EventDescription, Provider, Sample, hmac_digest, pick, prefixed_signature

ALGORITHMS = {"sha1": 20, "sha256": 32, "sha512": 64}


class GenericHmac(Provider):
    name = "hmac"
    summary = "Any sender signing the raw body with HMAC (header, algorithm, encoding, prefix configurable)"
    signature_headers = ("X-Signature",)
    secret_format = "the shared secret (UTF-8)"
    sample_event_type = "example.created"
    options = (
        "signature_header",
        "algorithm",
        "encoding",
        "prefix",
        "event_id_header",
        "event_type_header",
        "event_type_pointer",
        "ordering_key_pointer",
    )

    def __init__(self, secrets, *, tolerance=None, options=None, source="") -> None:  # type: ignore[no-untyped-def]
        super().__init__(secrets, tolerance=tolerance, options=options, source=source)
        self.header = str(self.options.get("signature_header", "X-Signature"))
        self.algorithm = str(self.options.get("algorithm", "sha256"))
        self.encoding = str(self.options.get("encoding", "hex"))
        self.prefix = str(self.options.get("prefix", ""))
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {self.algorithm!r}")
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"encoding must be hex or base64, not {self.encoding!r}")

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        candidate = prefixed_signature(
            delivery, self.header, prefix=self.prefix, encoding=self.encoding, size=ALGORITHMS[self.algorithm]
        )
        return self.match_any([candidate], lambda key: hmac_digest(key, delivery.body, self.algorithm))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        o = self.options
        event_id = delivery.headers.get(o["event_id_header"], "") if "event_id_header" in o else ""
        event_id = event_id or pick(payload, "/id", "/event_id") or ""
        if "event_type_header" in o:
            event_type = delivery.headers.get(o["event_type_header"], "")
        else:
            event_type = pick(payload, o.get("event_type_pointer", "/type"), "/event_type", "/type") or ""
        key = pick(payload, o["ordering_key_pointer"]) if "ordering_key_pointer" in o else None
        return EventDescription(event_id=event_id, event_type=event_type, ordering_key=key or event_id)

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        digest = hmac_digest(self.keys[key_index], body, self.algorithm)
        encoded = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        headers = {self.header: self.prefix + encoded, "Content-Type": "application/json"}
        if event_id and "event_id_header" in self.options:
            headers[self.options["event_id_header"]] = event_id
        return headers

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        event_id = event_id or f"evt_{uuid.uuid4().hex}"
        payload = {"id": event_id, "type": event_type, "created": now, "data": {"id": resource_id or "obj_1"}}
        body = json.dumps(payload).encode()
        return Sample(body=body, headers=self.sign(body, timestamp=now, event_id=event_id))

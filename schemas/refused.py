"""Refused requests, as ingest records them to ``kafka.refused_topic`` for the console.

A record is JSON (key: the source name) holding the reason code and detail of the refusal, the
request's headers with every secret-bearing value masked, and the body cut to the source's
``refused_body_bytes`` (text when it is UTF-8, else base64). It exists to answer "why are this
provider's deliveries refused?"; it is never an event and never re-published.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

SECRET_HEADER = re.compile(r"signature|authorization|cookie|token|secret|password|hmac|api-?key|-sig\b", re.I)
"""Header names whose values prove who sent a request, or would let someone impersonate them."""

RETENTION_MS = 7 * 24 * 3600 * 1000
RETENTION_BYTES = 256 * 1024 * 1024
"""The topic's bounds: a week, and at most this much on disk (one partition)."""


def mask(value: str) -> str:
    return f"••••• ({len(value)} chars, masked)"


def masked_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers sorted by name, secret-bearing values masked."""
    return sorted((name, mask(value) if SECRET_HEADER.search(name) else value) for name, value in headers)


@dataclass(frozen=True)
class RefusedRequest:
    source: str
    provider: str
    status: int
    reason: str
    detail: str
    at_ms: int
    remote_addr: str
    headers: list[tuple[str, str]]
    """Masked already."""
    body: bytes
    """At most the source's ``refused_body_bytes``."""
    body_bytes: int
    """The whole body's size (0 when it was refused before it was read)."""

    def encode(self) -> bytes:
        try:
            body, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(self.body).decode(), "base64"
        return orjson.dumps(
            {
                "source": self.source,
                "provider": self.provider,
                "status": self.status,
                "reason": self.reason,
                "detail": self.detail,
                "at_ms": self.at_ms,
                "remote_addr": self.remote_addr,
                "headers": self.headers,
                "body": body,
                "body_encoding": encoding,
                "body_bytes": self.body_bytes,
            }
        )


def decode_refused(value: bytes) -> RefusedRequest:
    """ValueError for a value that is not a refused-request record."""
    try:
        data: dict[str, Any] = orjson.loads(value)
        raw = data["body"].encode() if data["body_encoding"] == "utf-8" else base64.b64decode(data["body"])
        return RefusedRequest(
            source=data["source"],
            provider=data["provider"],
            status=int(data["status"]),
            reason=data["reason"],
            detail=data["detail"],
            at_ms=int(data["at_ms"]),
            remote_addr=data["remote_addr"],
            headers=[(str(k), str(v)) for k, v in data["headers"]],
            body=raw,
            body_bytes=int(data["body_bytes"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a refused-request record: {exc}") from None

"""Twilio: ``X-Twilio-Signature`` = base64 HMAC-SHA1 over the full URL Twilio called plus every
POST parameter (name + value, sorted by name; repeated values sorted and de-duplicated).

JSON bodies are signed through the URL's ``bodySHA256`` query parameter. The URL must be the
public one Twilio used: behind a proxy, set ``public_url`` on the source. Twilio is
inconsistent about default ports, so both the with-port and without-port forms are tried.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from hookstream.errors import VerificationError
from hookstream.schemas.delivery import Delivery

from .base import (
    EventDescription,
    Provider,
    Sample,
    constant_time_equal,
    decode_signature,
    hmac_digest,
    pick,
    require_header,
)

HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"https": 443, "http": 80}


def signed_data(url: str, params: dict[str, list[str]]) -> bytes:
    parts = [url]
    for name in sorted(params):
        for value in sorted(set(params[name])):
            parts.append(name + value)
    return "".join(parts).encode("utf-8")


def url_variants(url: str) -> list[str]:
    """The URL as given, plus with the default port added or any port removed.

    Works on the netloc text (as twilio-python does) so the host keeps its case; a URL that
    cannot be parsed, or whose port is not a number, is tried only as given (the Host header
    is the sender's to choose, so it must not raise).
    """
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return [url]
    if port is None:
        default = DEFAULT_PORTS.get(split.scheme)
        other = split._replace(netloc=f"{split.netloc}:{default}") if default and split.netloc else None
    else:
        other = split._replace(netloc=split.netloc.rpartition(":")[0])
    return [url] + ([urlunsplit(other)] if other else [])


def query_params(url: str) -> dict[str, list[str]]:
    """The URL's query parameters; none for a URL that cannot be parsed."""
    try:
        return parse_qs(urlsplit(url).query)
    except ValueError:
        return {}


class Twilio(Provider):
    name = "twilio"
    summary = "Twilio voice/messaging webhooks (HMAC-SHA1 base64 over URL + sorted params)"
    signature_headers = (HEADER, "I-Twilio-Idempotency-Token")
    secret_format = "the account's primary Auth Token"
    sample_event_type = "message.received"
    options = ("public_url",)

    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        header = require_header(delivery, HEADER)
        candidate = decode_signature(header, HEADER, encoding="base64", size=20)  # HMAC-SHA1
        url = delivery.url
        query = query_params(url)
        if "bodySHA256" in query:
            expected_hash = hashlib.sha256(delivery.body).hexdigest().encode()
            if not constant_time_equal(expected_hash, query["bodySHA256"][0].lower().encode()):
                raise VerificationError(
                    VerificationError.MISMATCH, "body does not match the signed bodySHA256"
                )
            params: dict[str, list[str]] = {}
        elif delivery.content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            params = parse_qs(delivery.body.decode("utf-8", "replace"), keep_blank_values=True)
        else:
            params = {}
        messages = [signed_data(u, params) for u in url_variants(url)]
        return self.match_any([candidate], lambda key: _first_match(key, messages, candidate))

    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        sid = pick(payload, "/MessageSid", "/SmsSid", "/CallSid", "/Sid") or ""
        if (status := pick(payload, "/MessageStatus", "/SmsStatus")) is not None:
            event_type = f"message.{status}"
        elif (status := pick(payload, "/CallStatus")) is not None:
            event_type = f"call.{status}"
        else:
            event_type = "webhook"
        return EventDescription(
            event_id=delivery.headers.get("I-Twilio-Idempotency-Token", ""),
            event_type=event_type,
            ordering_key=sid,
        )

    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        if "bodySHA256" in query_params(url):
            # JSON body: the signature covers the URL (with the body's hash) and no params.
            params: dict[str, list[str]] = {}
            content_type = "application/json"
        else:
            params = parse_qs(body.decode("utf-8"), keep_blank_values=True)
            content_type = "application/x-www-form-urlencoded"
        digest = hmac_digest(self.keys[key_index], signed_data(url, params), "sha1")
        return {HEADER: base64.b64encode(digest).decode(), "Content-Type": content_type}

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        import uuid

        status = event_type.partition(".")[2] or "received"
        params = {
            "MessageSid": resource_id or "SM1f0e8ae6ade43cb3c0ce4525424e404f",
            "AccountSid": "AC" + "0" * 32,
            "From": "+14158675309",
            "To": "+18005551212",
            "Body": "Hello from hookstream",
            "MessageStatus": status,
        }
        body = urlencode(params).encode()
        headers = self.sign(body, timestamp=now, url=url)
        headers["I-Twilio-Idempotency-Token"] = event_id or str(uuid.uuid4())
        return Sample(body=body, headers=headers)


def _first_match(key: bytes, messages: list[bytes], candidate: bytes) -> bytes:
    """The digest for whichever URL form matches (else the first), for ``match_any``."""
    digests = [hmac_digest(key, m, "sha1") for m in messages]
    for d in digests:
        if constant_time_equal(d, candidate):
            return d
    return digests[0]

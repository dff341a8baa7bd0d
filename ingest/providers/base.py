"""The provider protocol: one small class per provider, verify and sign side by side.

Every provider works on the raw request bytes and a case-insensitive view of the headers,
with the clock injected, so verification is a pure function that tests can drive exactly.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature

from hookstream.errors import VerificationError

# Their home is schemas.delivery, beside the envelope that keeps a delivery's body and headers;
# still importable from here, where they were first defined.
from hookstream.schemas.delivery import Delivery as Delivery
from hookstream.schemas.delivery import Headers as Headers
from hookstream.schemas.delivery import parse_payload as parse_payload


@dataclass(frozen=True)
class EventDescription:
    event_id: str
    event_type: str
    ordering_key: str
    created_at_ms: int | None = None


@dataclass(frozen=True)
class Handshake:
    """A reply the provider expects instead of the usual acknowledgement (Slack, Zoom, Discord)."""

    body: Any
    status: int = 200
    publish: bool = False
    """Whether the handshake event is also an event worth publishing (most are not)."""


@dataclass(frozen=True)
class Sample:
    """A realistic signed request, as the provider would send it (for `hookstream send`)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=256)
def _keyed_hmac(key: bytes, algorithm: str) -> hmac.HMAC:
    return hmac.new(key, digestmod=algorithm)


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    """HMAC of ``message`` under ``key``.

    A copy of an HMAC object already keyed with ``key`` (kept per key and algorithm) rather
    than ``hmac.digest``, which sets the key up on every call: on ingest's request path the
    signature check cost a third less this way (``hookstream bench ingest``'s load, in process).
    """
    h = _keyed_hmac(key, algorithm).copy()
    h.update(message)
    return h.digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def require_header(delivery: Delivery, name: str) -> str:
    value = delivery.headers.get(name)
    if value is None or value.strip() == "":
        raise VerificationError(VerificationError.MISSING, f"header {name} is missing")
    return value.strip()


def parse_unix_seconds(value: str, header: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise VerificationError(
            VerificationError.MALFORMED, f"{header} must be integer Unix seconds, got {value[:40]!r}"
        ) from None


def check_timestamp(ts: float, now: float, tolerance: int | None, *, future: bool, unit: str = "s") -> None:
    """Refuse a timestamp older (and, where the scheme says so, newer) than ``tolerance`` seconds."""
    if tolerance is None or tolerance <= 0:
        return
    # Compared, not subtracted: int vs float comparison is exact, while ``now - ts`` raises
    # OverflowError for a (signed) timestamp too large for a float.
    if ts < now - tolerance:
        raise VerificationError(
            VerificationError.STALE,
            f"timestamp is {int(now) - int(ts)} s old, older than the {tolerance} s tolerance "
            "(a replay, a delayed retry, or a clock out of sync)",
        )
    if future and ts > now + tolerance:
        raise VerificationError(
            VerificationError.STALE,
            f"timestamp is {int(ts) - int(now)} s in the future, beyond the {tolerance} s tolerance (clock out of sync?)",
        )


@functools.lru_cache(maxsize=1024)
def _pointer_parts(pointer: str) -> tuple[str, ...]:
    return tuple(raw.replace("~1", "/").replace("~0", "~") for raw in pointer.lstrip("/").split("/"))


def json_pointer(doc: Any, pointer: str) -> Any:
    """Resolve an RFC 6901 JSON pointer; None where any step is missing."""
    if pointer in ("", "/"):
        return doc
    node = doc
    for part in _pointer_parts(pointer):
        if isinstance(node, dict):
            if part not in node:
                return None
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(node, Mapping):
            if part not in node:
                return None
            node = node[part]
        else:
            return None
    return node


def pick(payload: Any, *pointers: str) -> str | None:
    """The first pointer that resolves to a non-empty scalar, as text."""
    for p in pointers:
        v = json_pointer(payload, p)
        if v is not None and v != "" and not isinstance(v, (dict, list)):
            return str(v)
    return None


def content_hash_id(source: str, body: bytes) -> str:
    """Fallback event id: stable for redeliveries of the same bytes to the same source."""
    return "sha256:" + hashlib.sha256(source.encode() + b"\0" + body).hexdigest()


class Provider:
    """Base of all providers. Subclasses set the class attributes and override what differs.

    An instance holds one source's keys (parsed once, at config load) and options.
    ``verify`` returns the index of the secret that matched, so rotation can be observed.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    signature_headers: ClassVar[tuple[str, ...]] = ()
    secret_format: ClassVar[str] = "the signing secret, as the provider shows it"
    default_tolerance: ClassVar[int | None] = None
    """Seconds; None where the scheme carries no timestamp."""
    sample_event_type: ClassVar[str] = ""
    options: ClassVar[tuple[str, ...]] = ()
    """Extra keys this provider accepts in its `[sources.X]` table."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        tolerance: int | None = None,
        options: Mapping[str, Any] | None = None,
        source: str = "",
    ) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        self.source = source or self.name
        self.options = dict(options or {})
        self.tolerance = self.default_tolerance if tolerance is None else tolerance
        self.keys = []
        for i, secret in enumerate(secrets):
            try:
                self.keys.append(self.parse_secret(secret, i))
            except ValueError as exc:
                raise ValueError(f"secrets[{i}] {exc}") from None

    # -- keys ------------------------------------------------------------------------------
    def parse_secret(self, secret: str, index: int) -> Any:
        """Turn one configured secret into key material; raise ValueError naming the fix."""
        if not secret:
            raise ValueError("is empty")
        return secret.encode("utf-8")

    # -- verification ----------------------------------------------------------------------
    def verify(self, delivery: Delivery, now: float | None = None) -> int:
        raise NotImplementedError

    def match_any(self, candidates: Sequence[bytes], expected_for_key: Any) -> int:
        """Index of the first key whose expected signature equals any candidate, else MISMATCH.

        Every key is compared against every candidate in constant time; no early exit leaks
        which secret or signature came close.
        """
        matched = -1
        for i, key in enumerate(self.keys):
            expected = expected_for_key(key)
            for candidate in candidates:
                if constant_time_equal(expected, candidate) and matched < 0:
                    matched = i
        if matched < 0:
            raise VerificationError(
                VerificationError.MISMATCH,
                f"no signature matched any of the {len(self.keys)} configured secret(s)",
            )
        return matched

    def verify_v0(
        self, delivery: Delivery, now: float | None, signature_header: str, timestamp_header: str
    ) -> int:
        """``verify`` for ``v0_signed``'s scheme (Slack, Zoom): HMAC match, then the timestamp window."""
        ts, candidate, signed = v0_signed(delivery, signature_header, timestamp_header)
        matched = self.match_any([candidate], lambda key: hmac_digest(key, signed))
        check_timestamp(ts, now_seconds(now), self.tolerance, future=True)
        return matched

    def match_public_key(self, verifies: Callable[[Any], None], scheme: str) -> int:
        """Index of the first configured public key for which ``verifies(key)`` does not raise
        ``InvalidSignature``, else MISMATCH. Public keys are not secret: no constant-time need."""
        for i, key in enumerate(self.keys):
            try:
                verifies(key)
            except InvalidSignature:
                continue
            return i
        raise VerificationError(
            VerificationError.MISMATCH,
            f"the {scheme} signature does not verify with any of the {len(self.keys)} configured public key(s)",
        )

    def require_signing_key(self, company: str, key_hint: str) -> Any:
        """The ``signing_key`` option for ``sign``: a provider signing with its own private key
        cannot be imitated without a test key pair."""
        key = getattr(self, "signing_key", None)
        if key is None:
            raise NotImplementedError(
                f"{company} signs with its private key; set the source's signing_key option ({key_hint}, "
                "its public key in secrets) to sign samples"
            )
        return key

    # -- description -----------------------------------------------------------------------
    def describe(self, delivery: Delivery, payload: Any) -> EventDescription:
        raise NotImplementedError

    def handshake(self, delivery: Delivery, payload: Any) -> Handshake | None:
        return None

    # -- signing (tests, `hookstream send`) ------------------------------------------------
    def sign(
        self, body: bytes, *, timestamp: int, url: str = "", event_id: str = "", key_index: int = 0
    ) -> dict[str, str]:
        raise NotImplementedError

    def sample(
        self, event_type: str, *, now: int, url: str = "", event_id: str = "", resource_id: str = ""
    ) -> Sample:
        """A realistic request for ``event_type``; ``resource_id`` sets the ordering key's resource."""
        raise NotImplementedError


def now_seconds(now: float | None) -> float:
    return time.time() if now is None else now


def plain_secret(secret: str, what: str) -> bytes:
    """A shared secret used verbatim as UTF-8, refusing copy-paste slips that could never match."""
    if not secret:
        raise ValueError("is empty")
    if secret != secret.strip():
        raise ValueError(
            f"has leading or trailing whitespace: copy the {what} exactly (a pasted newline is the usual cause)"
        )
    return secret.encode("utf-8")


def decode_signature(value: str, header: str, *, encoding: str, size: int | None = None) -> bytes:
    """One hex or base64 signature as bytes; MALFORMED if it does not decode (to ``size`` bytes)."""
    try:
        raw = bytes.fromhex(value) if encoding == "hex" else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise VerificationError(VerificationError.MALFORMED, f"{header} is not {encoding}") from None
    if size is not None and len(raw) != size:
        raise VerificationError(
            VerificationError.MALFORMED, f"{header} decodes to {len(raw)} bytes, expected {size}"
        )
    return raw


def prefixed_signature(delivery: Delivery, header: str, *, prefix: str, encoding: str, size: int) -> bytes:
    """The signature in ``header`` after ``prefix`` (e.g. ``sha256=``), decoded: the shape of
    GitHub, Intercom, Typeform and generic HMAC headers. MISSING or MALFORMED otherwise."""
    value = require_header(delivery, header)
    if not value.startswith(prefix):
        raise VerificationError(VerificationError.MALFORMED, f"{header} must look like {prefix}<{encoding}>")
    return decode_signature(value[len(prefix) :], header, encoding=encoding, size=size)


def timestamped_signatures(
    delivery: Delivery, header: str, *, separator: str, timestamp_key: str, signature_key: str, lenient: bool
) -> tuple[int, list[bytes]]:
    """The timestamp and HMAC-SHA256 digests of a ``t=<unix>,v1=<hex>[,v1=<hex>…]``-shaped header.

    Stripe (``,``, ``t``, ``v1``) and Paddle (``;``, ``ts``, ``h1``) send one signature per active
    secret while rotating. Unknown keys are ignored. A signature entry that is not a SHA-256 hex
    digest is MALFORMED, unless ``lenient`` (Paddle's SDK sends placeholders like ``h1=dummy``):
    then it is skipped, and only a header without any digest is MALFORMED.
    """
    value = require_header(delivery, header)
    timestamp: int | None = None
    candidates: list[bytes] = []
    saw_signature = False
    for item in value.split(separator):
        key, sep, text = item.strip().partition("=")
        if not sep:
            raise VerificationError(
                VerificationError.MALFORMED, f"{header} item {item[:20]!r} is not key=value"
            )
        if key == timestamp_key:
            timestamp = parse_unix_seconds(text, f"{header} {timestamp_key}=")
        elif key == signature_key:
            saw_signature = True
            try:
                digest = bytes.fromhex(text)
            except ValueError:
                digest = b""
            if len(digest) == 32:
                candidates.append(digest)
            elif not lenient:
                raise VerificationError(
                    VerificationError.MALFORMED, f"{header} {signature_key}= is not an HMAC-SHA256 hex digest"
                )
    if timestamp is None:
        raise VerificationError(VerificationError.MALFORMED, f"{header} has no {timestamp_key}= timestamp")
    if not candidates:
        what = (
            f"no {signature_key}= entry is a SHA-256 hex digest"
            if saw_signature
            else f"has no {signature_key}= signature"
        )
        raise VerificationError(VerificationError.MALFORMED, f"{header} {what}")
    return timestamp, candidates


def v0_signed(delivery: Delivery, signature_header: str, timestamp_header: str) -> tuple[int, bytes, bytes]:
    """Slack's and Zoom's scheme: ``v0=<hex HMAC-SHA256>`` over ``v0:{timestamp}:{body}``.

    Returns (timestamp, candidate signature, signed bytes). The timestamp header's text as
    sent is what was signed (as in slack_sdk), not a re-rendering of the parsed number.
    """
    signature = require_header(delivery, signature_header)
    ts_text = require_header(delivery, timestamp_header)
    ts = parse_unix_seconds(ts_text, timestamp_header)
    if not signature.startswith("v0="):
        raise VerificationError(VerificationError.MALFORMED, f"{signature_header} must look like v0=<hex>")
    candidate = decode_signature(signature[3:], signature_header, encoding="hex", size=32)
    return ts, candidate, b"v0:" + ts_text.encode() + b":" + delivery.body


def v0_signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The ``v0=<hex>`` header value of ``v0_signed``'s scheme, for ``sign``."""
    return "v0=" + hmac_digest(key, b"v0:" + str(timestamp).encode() + b":" + body).hex()


def iso8601_ms(value: str | None) -> int | None:
    """Epoch milliseconds of an ISO 8601 / RFC 3339 timestamp (``Z`` or an offset); None if absent or bad."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)

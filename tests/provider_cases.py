"""The cases every provider test runs over, and the few helpers those tests share.

Two tables, and every registered provider is in exactly one (test_provider_registry.py checks it):
  CASES         sign a fixed body through ``sign()`` (JSON with non-ASCII text; a form for Twilio) and
                list, per header the provider reads, the values it must refuse as malformed;
  SAMPLE_CASES  sign the provider's own ``sample()`` and carry what describe() must make of it, the
                secrets of the wrong shape, and how the scheme's timestamp (if any) is judged.
Key material: the RFC 8032 §7.1 TEST 1 Ed25519 pair (Discord) and a fixed P-256 pair (SendGrid).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery, Provider
from hookstream.ingest.providers.github import GitHub
from hookstream.ingest.providers.hmac import GenericHmac
from hookstream.ingest.providers.shopify import Shopify
from hookstream.ingest.providers.slack import Slack
from hookstream.ingest.providers.standard import StandardWebhooks, Svix
from hookstream.ingest.providers.stripe import Stripe
from hookstream.ingest.providers.twilio import Twilio

NOW = 1_700_000_000
TWILIO_URL = "https://mycompany.com/twilio/sms?foo=1&bar=2"
SAMPLE_URL = "https://hooks.example.com/webhooks/square"
HEX32 = "ab" * 32  # hex of a 32-byte digest, the right shape for HMAC-SHA256
HEX20 = "cd" * 20  # hex of a SHA-1-sized digest


def b64(size: int, fill: int = 7) -> str:
    return base64.b64encode(bytes([fill]) * size).decode()


JSON_BODY = json.dumps({"id": "evt_1", "type": "thing.happened", "note": "caf\u00e9 \u2603"}).encode()
FORM_BODY = urlencode(
    {"MessageSid": "SM1", "From": "+14158675309", "Body": "h\u00e9llo & bye", "Empty": ""}
).encode()


# -- keys --------------------------------------------------------------------------------------------

RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032 §7.1 TEST 1
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
OTHER_ED25519_PUBLIC = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"  # RFC 8032 TEST 2

# A fixed P-256 test key pair for SendGrid (generated once for these tests; not SendGrid's).
SENDGRID_PRIVATE = ec.derive_private_key(0x5EED5E4D6A11D0C5, ec.SECP256R1())
SENDGRID_OTHER = ec.derive_private_key(0x0DDBA11C0FFEE, ec.SECP256R1())


def spki_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def pkcs8_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


# -- CASES: a fixed body through sign() --------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """How to build a signed delivery for one provider, and which headers a sender controls."""

    id: str
    cls: type[Provider]
    secret: str
    wrong_secret: str
    signature_header: str
    malformed: tuple[str, ...]
    """Values of ``signature_header`` that must be refused as malformed_signature."""
    body: bytes = JSON_BODY
    url: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    timestamp_header: str | None = None
    malformed_timestamps: tuple[str, ...] = ()
    id_header: str | None = None
    freshness: str | None = None
    """None: no timestamp in the scheme; "past": only too-old refused; "both": either direction."""

    def provider(self, secrets: list[str] | None = None, tolerance: int | None = None) -> Provider:
        return self.cls(secrets or [self.secret], tolerance=tolerance, options=self.options)

    def headers(
        self, *, ts: int = NOW, secrets: list[str] | None = None, key_index: int = 0
    ) -> dict[str, str]:
        return self.provider(secrets).sign(
            self.body, timestamp=ts, url=self.url, event_id="evt_case_1", key_index=key_index
        )

    def delivery(
        self, headers: dict[str, str], body: bytes | None = None, url: str | None = None
    ) -> Delivery:
        return Delivery.of(self.body if body is None else body, headers, url=self.url if url is None else url)

    def signed(self, **kwargs: Any) -> Delivery:
        return self.delivery(self.headers(**kwargs))

    def fuzzed_headers(self) -> tuple[str, ...]:
        return tuple(h for h in (self.signature_header, self.timestamp_header, self.id_header) if h)


SW_MALFORMED = (
    "garbage",
    "v1=" + b64(32),  # "=" where the comma belongs
    "v1,not base64!",
    "v1," + b64(32).rstrip("="),  # unpadded
    "v1," + b64(20),  # wrong digest length
    "v1," + b64(32) + ",x",
    "v1,",
    "v2," + b64(32),  # no v1 entry at all
    "v1a," + b64(64),
    "v1," + HEX32,  # hex where base64 belongs: decodes, to 48 bytes
)

CASES = [
    Case(
        id="stripe",
        cls=Stripe,
        secret="whsec_test_secret",
        wrong_secret="whsec_other_secret",
        signature_header="Stripe-Signature",
        freshness="past",
        malformed=(
            "garbage",
            f"v1={HEX32}",  # missing t=
            f"t=abc,v1={HEX32}",
            f"t=1700000000.5,v1={HEX32}",
            f"t={NOW},v1={'zz' * 32}",
            f"t={NOW},v1={HEX32[:-2]}",  # wrong digest length
            f"t={NOW},v1={HEX32}00",
            f"t={NOW},v1=",
            f"t={NOW}",  # no v1
            f"t={NOW},v0={HEX32}",  # only the test-mode v0
            f"t={NOW};v1={HEX32}",
            f"t={NOW},v1={HEX32},",
            f"t={NOW},v1={b64(32)}",
        ),
    ),
    Case(
        id="github",
        cls=GitHub,
        secret="It's a Secret to Everybody",
        wrong_secret="It's a Secret to Nobody",
        signature_header="X-Hub-Signature-256",
        malformed=(
            "garbage",
            HEX32,
            f"sha1={HEX20}",  # wrong prefix
            f"SHA256={HEX32}",
            f"sha256 {HEX32}",
            f"sha256={'zz' * 32}",
            f"sha256={HEX32[:-2]}",  # wrong digest length
            f"sha256={HEX20}",
            "sha256=",
            f"sha256={b64(32)}",
        ),
    ),
    Case(
        id="shopify",
        cls=Shopify,
        secret="test_secret_key",
        wrong_secret="test_secret_kez",
        signature_header="X-Shopify-Hmac-Sha256",
        malformed=(
            "garbage!",
            HEX32,  # valid base64 alphabet, decodes to 48 bytes
            b64(20),  # wrong digest length
            b64(32).rstrip("="),
            "sha256=" + b64(32),
            b64(32) + "AAAA",
        ),
    ),
    Case(
        id="slack",
        cls=Slack,
        secret="8f742231b10e8888abcd99yyyzzz85a5",
        wrong_secret="8f742231b10e8888abcd99yyyzzz85a6",
        signature_header="X-Slack-Signature",
        timestamp_header="X-Slack-Request-Timestamp",
        malformed_timestamps=("abc", "1700000000.5", "1e9", "0x6553F100", "-", "9" * 5000),
        freshness="both",
        malformed=(
            "garbage",
            HEX32,
            f"v1={HEX32}",  # wrong version prefix
            f"v0:{HEX32}",
            f"v0={'zz' * 32}",
            f"v0={HEX32[:-2]}",  # wrong digest length
            "v0=",
            f"v0={b64(32)}",
        ),
    ),
    Case(
        id="twilio",
        cls=Twilio,
        secret="12345",
        wrong_secret="54321",
        signature_header="X-Twilio-Signature",
        body=FORM_BODY,
        url=TWILIO_URL,
        malformed=(
            "garbage!!",
            b64(32),  # an HMAC-SHA256-sized digest
            HEX20,  # hex of a SHA-1 digest: valid base64, 30 bytes
            b64(20).rstrip("="),
            "sha1=" + b64(20),
        ),
    ),
    Case(
        id="standard",
        cls=StandardWebhooks,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        wrong_secret="whsec_" + b64(24, fill=9),
        signature_header="webhook-signature",
        timestamp_header="webhook-timestamp",
        id_header="webhook-id",
        malformed_timestamps=("abc", "1614265330.5", "1e9", "2024-01-01T00:00:00Z", "9" * 5000),
        freshness="both",
        malformed=SW_MALFORMED,
    ),
    Case(
        id="svix",
        cls=Svix,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        wrong_secret="whsec_" + b64(24, fill=9),
        signature_header="svix-signature",
        timestamp_header="svix-timestamp",
        id_header="svix-id",
        malformed_timestamps=("abc", "1614265330.5", "1e9"),
        freshness="both",
        malformed=SW_MALFORMED,
    ),
    Case(
        id="hmac-sha512-base64-prefix",
        cls=GenericHmac,
        secret="s3cr3t-\u00e9\u00e8",
        wrong_secret="s3cr3t-ee",
        signature_header="X-Hub-Signature-512",
        options={
            "signature_header": "X-Hub-Signature-512",
            "algorithm": "sha512",
            "encoding": "base64",
            "prefix": "sha512=",
        },
        malformed=(
            "garbage",
            b64(64),  # prefix missing
            "sha256=" + b64(64),  # wrong prefix
            "sha512=not base64!",
            "sha512=" + "ab" * 64,  # hex of the right digest: valid base64 alphabet, 96 bytes
            "sha512=" + b64(32),  # wrong digest length
            "sha512=",
        ),
    ),
    Case(
        id="hmac-sha256-hex",
        cls=GenericHmac,
        secret="shared",
        wrong_secret="shares",
        signature_header="X-Signature",
        malformed=(
            "garbage",
            "sha256=" + HEX32,  # a prefix that is not configured
            "zz" * 32,
            HEX32[:-2],  # wrong digest length
            "ab" * 64,
            b64(32),
        ),
    ),
]

CASE_IDS = [c.id for c in CASES]
TIMESTAMPED = [c for c in CASES if c.freshness]
UNTIMESTAMPED = [c for c in CASES if not c.freshness]


# -- SAMPLE_CASES: the provider's own sample() -------------------------------------------------------


@dataclass
class SampleCase:
    """A provider signing its own sample, and what each check expects of it."""

    name: str
    secrets: list[str]
    wrong_secret: str
    bad_secrets: list[str]
    signature_header: str | None
    """Header to drop / corrupt; None where the signature is in the body (Mailgun)."""
    malformed: str | None
    """A malformed value for signature_header; None where no value can be malformed."""
    expect: tuple[str | None, str, str]
    """describe() of sample(TYPE, event_id=EVENT_ID, resource_id=RESOURCE): id (None: any), type, key."""
    sample_type: str
    resource_id: str = "res-1"
    event_id: str = "evt-1"
    options: dict[str, Any] = field(default_factory=dict)
    stale_tolerance: int | None = None
    """Tolerance to test staleness with; None where the scheme has no timestamp."""
    future_refused: bool = True
    body_signed: bool = True


SAMPLE_CASES = [
    SampleCase(
        "square",
        ["Ibxx_5AKakO-3qeNVR61Dw"],
        "MCmhFRxGX82xMwg5FsaoQA",
        ["", " Ibxx_5AKakO-3qeNVR61Dw\n"],
        "x-square-hmacsha256-signature",
        "not base64!",
        ("evt-1", "payment.updated", "res-1"),
        "payment.updated",
    ),
    SampleCase(
        "paddle",
        ["pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"],
        "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_otherOtherOtherOtherOtherOther",
        ["", "pdl_live_apikey_01gtgztp8fw1zxvbj3jq2sxsqp_u0iY", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "Paddle-Signature",
        "ts=1700000000;h1=dummy",
        ("evt-1", "transaction.completed", "res-1"),
        "transaction.completed",
        stale_tolerance=5,
        future_refused=False,
    ),
    SampleCase(
        "linear",
        ["lin_wh_7hRk2mZ1"],
        "lin_wh_other",
        ["", "lin_wh_7hRk2mZ1\n"],
        "Linear-Signature",
        "sha256=abc",
        ("evt-1", "Issue.update", "res-1"),
        "Issue.update",
        stale_tolerance=60,
    ),
    SampleCase(
        "zoom",
        ["Sec3tT0kenExampleZoom123"],
        "AnotherZoomSecretToken1",
        ["", "\tSec3tT0kenExampleZoom123"],
        "x-zm-signature",
        "v1=abcdef",
        (None, "meeting.started", "res-1"),
        "meeting.started",
        stale_tolerance=300,
    ),
    SampleCase(
        "discord",
        [RFC8032_PUBLIC],
        OTHER_ED25519_PUBLIC,
        ["", "d75a98", "zz" * 32, RFC8032_PUBLIC + "00", "MTAyMzQ1Njc4OTAxMjM0NTY3OA.GhJkLm.bot-token"],
        "X-Signature-Ed25519",
        "not-hex",
        ("1180000000000000000", "APPLICATION_COMMAND.blep", "res-1/chan-1"),
        "APPLICATION_COMMAND",
        resource_id="res-1/chan-1",
        event_id="1180000000000000000",
        options={"signing_key": RFC8032_SEED},
        stale_tolerance=300,
    ),
    SampleCase(
        "sendgrid",
        [spki_b64(SENDGRID_PRIVATE)],
        spki_b64(SENDGRID_OTHER),
        [
            "",
            "not base64!",
            base64.b64encode(b"\x30\x59not a key").decode(),
            pkcs8_b64(SENDGRID_PRIVATE),  # a private key where the public one belongs
            spki_b64(ec.derive_private_key(7, ec.SECP384R1())),  # wrong curve
        ],
        "X-Twilio-Email-Event-Webhook-Signature",
        "AAAA",  # base64, but not a DER ECDSA signature
        ("evt-1", "delivered", "res-1"),
        "delivered",
        options={"signing_key": pkcs8_b64(SENDGRID_PRIVATE)},
        stale_tolerance=300,
    ),
    SampleCase(
        "mailgun",
        ["mailgun-signing-key"],
        "other-signing-key",
        ["", "mailgun-signing-key\r\n"],
        None,
        None,
        ("evt-1", "delivered", "res-1"),
        "delivered",
        stale_tolerance=300,
        body_signed=False,
    ),
    SampleCase(
        "gitlab",
        ["glsecret-token-1"],
        "glsecret-token-2",
        ["", " glsecret-token-1", "whsec_!!not base64!!"],
        "X-Gitlab-Token",
        None,
        ("evt-1", "push", "res-1"),
        "push",
        body_signed=False,
    ),
    SampleCase(
        "gitlab",
        ["whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="],
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ["whsec_", "whsec_%%%"],
        "webhook-signature",
        "v1,not base64!",
        ("evt-1", "push", "res-1"),
        "push",
        stale_tolerance=300,
    ),
    SampleCase(
        "intercom",
        ["intercom-client-secret"],
        "other-client-secret",
        ["", "intercom-client-secret "],
        "X-Hub-Signature",
        "sha256=6137804eb57450078a2421124afe4b23da85204d",
        ("evt-1", "conversation.user.created", "res-1"),
        "conversation.user.created",
    ),
    SampleCase(
        "pagerduty",
        ["lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"],
        "94340749c7d479750a69044d17ef172220ca67b5d7de2b41018cf05344c0470f",
        ["", "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK\n"],
        "X-PagerDuty-Signature",
        "v1=nothex,v2=abcd",
        ("evt-1", "incident.triggered", "res-1"),
        "incident.triggered",
    ),
    SampleCase(
        "typeform",
        ["abc123"],
        "abc124",
        ["", " abc123"],
        "Typeform-Signature",
        "sha256=6137804eb5",
        ("evt-1", "form_response", "res-1"),
        "form_response",
    ),
]

SAMPLE_IDS = [c.name + ("-signing" if c.secrets[0].startswith("whsec_") else "") for c in SAMPLE_CASES]


def provider_for(
    case: SampleCase, secrets: list[str] | None = None, tolerance: int | None = None
) -> Provider:
    return PROVIDERS[case.name](secrets or case.secrets, tolerance=tolerance, options=case.options)


def sample_delivery(case: SampleCase, provider: Provider | None = None) -> Delivery:
    provider = provider or provider_for(case)
    sample = provider.sample(
        case.sample_type, now=NOW, url=SAMPLE_URL, event_id=case.event_id, resource_id=case.resource_id
    )
    return Delivery.of(sample.body, sample.headers, url=SAMPLE_URL)


# -- bodies signed in more than one file -------------------------------------------------------------


MAILGUN_TOKEN = "a8ce0edb2dd8301dce9c93dc0e5d2ec6f1fc1dd4a2d3e7e41e"
MAILGUN_SIGNATURE = "e197c8c6f410ef737b403f91f339b0784ce90c9e785be47f85eb2c491734e8f3"


def mailgun_body(signature: str = MAILGUN_SIGNATURE, **event_data: Any) -> str:
    return json.dumps(
        {
            "signature": {"timestamp": "1700000000", "token": MAILGUN_TOKEN, "signature": signature},
            "event-data": {"id": "CPgfbmQMTCKtHW6uIWtuVe", "event": "delivered", **event_data},
        }
    )


GITLAB_BODY = '{"object_kind":"push","project":{"path_with_namespace":"group/project"}}'
DISCORD_PING = '{"application_id":"775799577604948029","id":"1180000000000000000","token":"aW50ZXJhY3Rpb24","type":1,"version":1}'
DISCORD_PING_SIGNATURE = (
    "19f50ae9641e4156802066452a6a1f49188599ed6093c907e299ff213f8bc0b7"
    "dc6b0bd4d3d166e90516fdea25816fc50939fa36cc61146a4c9af3643e0c9d05"
)


# -- refusals and altered deliveries -----------------------------------------------------------------


def refused(provider: Provider, delivery: Delivery, now: float | None = NOW) -> str:
    with pytest.raises(VerificationError) as info:
        provider.verify(delivery, now=now)
    return info.value.code


def with_header(headers: dict[str, str], name: str, value: str | None) -> dict[str, str]:
    """``headers`` with ``name`` (matched case-insensitively) replaced, or removed for None."""
    out = {k: v for k, v in headers.items() if k.lower() != name.lower()}
    if value is not None:
        out[name] = value
    return out


def with_headers(delivery: Delivery, **changes: str | None) -> Delivery:
    """``delivery`` with headers replaced (name=value) or dropped (name=None); names use _ for -."""
    names = {k.replace("_", "-").lower(): v for k, v in changes.items()}
    headers = {k: v for k, v in delivery.headers.items() if k.lower() not in names}
    headers.update({k: v for k, v in names.items() if v is not None})
    return Delivery.of(delivery.body, headers, url=delivery.url)


def with_body(delivery: Delivery, body: bytes) -> Delivery:
    return Delivery.of(body, dict(delivery.headers.items()), url=delivery.url)

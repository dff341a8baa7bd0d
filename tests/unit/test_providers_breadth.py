"""The breadth providers (square … typeform): round trips, every refusal code, secret shapes,
describe(), handshakes, our own fixed vectors, and cross-checks against official SDKs.

SDK oracles, from the test extras (a missing one fails the test, it never skips):
  discord-interactions, sendgrid, paddle-python-sdk, squareup, standardwebhooks.

Fixed vectors below were computed from the documented algorithms with hmac/hashlib and
cryptography directly (not through our providers); Discord's come from the RFC 8032 §7.1
TEST 1 key pair.
"""

from __future__ import annotations

import base64
import importlib
import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery, Provider
from hookstream.ingest.providers.base import parse_payload

NOW = 1_700_000_000
URL = "https://hooks.example.com/webhooks/square"

# RFC 8032 §7.1 TEST 1 (the seed is signatures.json's discord-01 private_key_seed_hex).
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
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


def code_of(provider: Provider, delivery: Delivery, now: float = NOW) -> str:
    with pytest.raises(VerificationError) as info:
        provider.verify(delivery, now=now)
    return info.value.code


def with_headers(delivery: Delivery, **changes: str | None) -> Delivery:
    """``delivery`` with headers replaced (name=value) or dropped (name=None); names use _ for -."""
    names = {k.replace("_", "-").lower(): v for k, v in changes.items()}
    headers = {k: v for k, v in delivery.headers.items() if k.lower() not in names}
    headers.update({k: v for k, v in names.items() if v is not None})
    return Delivery.of(delivery.body, headers, url=delivery.url)


def with_body(delivery: Delivery, body: bytes) -> Delivery:
    return Delivery.of(body, dict(delivery.headers.items()), url=delivery.url)


# -- one row per provider ------------------------------------------------------------------
@dataclass
class Case:
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


CASES = [
    Case(
        "square",
        ["Ibxx_5AKakO-3qeNVR61Dw"],
        "MCmhFRxGX82xMwg5FsaoQA",
        ["", " Ibxx_5AKakO-3qeNVR61Dw\n"],
        "x-square-hmacsha256-signature",
        "not base64!",
        ("evt-1", "payment.updated", "res-1"),
        "payment.updated",
    ),
    Case(
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
    Case(
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
    Case(
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
    Case(
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
    Case(
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
    Case(
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
    Case(
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
    Case(
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
    Case(
        "intercom",
        ["intercom-client-secret"],
        "other-client-secret",
        ["", "intercom-client-secret "],
        "X-Hub-Signature",
        "sha256=6137804eb57450078a2421124afe4b23da85204d",
        ("evt-1", "conversation.user.created", "res-1"),
        "conversation.user.created",
    ),
    Case(
        "pagerduty",
        ["lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"],
        "94340749c7d479750a69044d17ef172220ca67b5d7de2b41018cf05344c0470f",
        ["", "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK\n"],
        "X-PagerDuty-Signature",
        "v1=nothex,v2=abcd",
        ("evt-1", "incident.triggered", "res-1"),
        "incident.triggered",
    ),
    Case(
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
IDS = [c.name + ("-signing" if c.secrets[0].startswith("whsec_") else "") for c in CASES]


def provider_for(case: Case, secrets: list[str] | None = None, tolerance: int | None = None) -> Provider:
    return PROVIDERS[case.name](secrets or case.secrets, tolerance=tolerance, options=case.options)


def sample_delivery(case: Case, provider: Provider | None = None) -> Delivery:
    provider = provider or provider_for(case)
    sample = provider.sample(
        case.sample_type, now=NOW, url=URL, event_id=case.event_id, resource_id=case.resource_id
    )
    return Delivery.of(sample.body, sample.headers, url=URL)


def test_every_breadth_provider_is_registered():
    assert {c.name for c in CASES} <= set(PROVIDERS)
    for case in CASES:
        cls = PROVIDERS[case.name]
        assert cls.summary and cls.secret_format and cls.sample_event_type


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sample_round_trip(case: Case):
    provider = provider_for(case)
    assert provider.verify(sample_delivery(case), now=NOW) == 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rotation_reports_the_matching_secret(case: Case):
    signer = provider_for(case)
    delivery = sample_delivery(case, signer)
    both = provider_for(case, [case.wrong_secret, *case.secrets])
    assert both.verify(delivery, now=NOW) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tampered_body(case: Case):
    provider = provider_for(case)
    delivery = sample_delivery(case)
    tampered = with_body(delivery, delivery.body.replace(b"res-1", b"res-2"))
    assert tampered.body != delivery.body
    if case.body_signed:
        assert code_of(provider, tampered) == VerificationError.MISMATCH
    else:
        # Documented limitation: Mailgun signs timestamp + token only; GitLab's plain token signs nothing.
        assert provider.verify(tampered, now=NOW) == 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_key(case: Case):
    delivery = sample_delivery(case)
    assert code_of(provider_for(case, [case.wrong_secret]), delivery) == VerificationError.MISMATCH


@pytest.mark.parametrize("case", [c for c in CASES if c.stale_tolerance], ids=lambda c: c.name)
def test_stale_and_too_new(case: Case):
    provider = provider_for(case, tolerance=case.stale_tolerance)
    delivery = sample_delivery(case)
    tol = case.stale_tolerance or 0
    assert provider.verify(delivery, now=NOW + tol) == 0
    assert code_of(provider, delivery, now=NOW + tol + 1) == VerificationError.STALE
    if case.future_refused:
        assert code_of(provider, delivery, now=NOW - tol - 1) == VerificationError.STALE
    else:
        assert provider.verify(delivery, now=NOW - 3600) == 0
    # tolerance_seconds = 0 turns the check off
    assert provider_for(case, tolerance=0).verify(delivery, now=NOW + 10 * 365 * 86400) == 0


@pytest.mark.parametrize("case", [c for c in CASES if c.signature_header], ids=lambda c: c.name)
def test_missing_signature_header(case: Case):
    delivery = with_headers(sample_delivery(case), **{case.signature_header: None})
    assert code_of(provider_for(case), delivery) == VerificationError.MISSING


@pytest.mark.parametrize("case", [c for c in CASES if c.malformed], ids=lambda c: c.name)
def test_malformed_signature_header(case: Case):
    delivery = with_headers(sample_delivery(case), **{case.signature_header: case.malformed})
    assert code_of(provider_for(case), delivery) == VerificationError.MALFORMED


@pytest.mark.parametrize(
    "case, bad", [(c, b) for c in CASES for b in c.bad_secrets], ids=lambda v: v if isinstance(v, str) else ""
)
def test_wrongly_shaped_secret_is_refused(case: Case, bad: str):
    with pytest.raises(ValueError, match=r"^secrets\[0\] "):
        PROVIDERS[case.name]([bad], options=case.options)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_describe_sample(case: Case):
    provider = provider_for(case)
    delivery = sample_delivery(case)
    got = provider.describe(delivery, parse_payload(delivery))
    event_id, event_type, ordering_key = case.expect
    assert got.event_id == event_id if event_id is not None else got.event_id
    assert (got.event_type, got.ordering_key) == (event_type, ordering_key)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sample_is_realistic_json(case: Case):
    delivery = sample_delivery(case)
    payload = json.loads(delivery.body)
    assert payload
    assert "json" in delivery.content_type


# -- secret-shape messages name the fix -----------------------------------------------------
def test_discord_bad_public_key_message():
    with pytest.raises(ValueError, match="32-byte hex Ed25519 public key: copy the PUBLIC KEY"):
        PROVIDERS["discord"](["d75a98"])


def test_sendgrid_bad_public_key_message():
    with pytest.raises(ValueError, match="Verification Key"):
        PROVIDERS["sendgrid"](["MFkw"])


def test_sendgrid_accepts_pem_armoured_key():
    pem = SENDGRID_PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    case = next(c for c in CASES if c.name == "sendgrid")
    assert PROVIDERS["sendgrid"]([pem.decode()]).verify(sample_delivery(case), now=NOW) == 0


def test_signing_key_option_is_validated():
    with pytest.raises(ValueError, match="signing_key"):
        PROVIDERS["discord"]([RFC8032_PUBLIC], options={"signing_key": "abcd"})
    with pytest.raises(ValueError, match="signing_key"):
        PROVIDERS["sendgrid"]([spki_b64(SENDGRID_PRIVATE)], options={"signing_key": "abcd"})


def test_public_key_providers_cannot_sign_without_a_private_key():
    for name, key in (("discord", RFC8032_PUBLIC), ("sendgrid", spki_b64(SENDGRID_PRIVATE))):
        with pytest.raises(NotImplementedError, match="signing_key"):
            PROVIDERS[name]([key]).sign(b"{}", timestamp=NOW)


# -- fuzz: whatever a sender puts in headers or body, only VerificationError escapes ----------
FUZZ_TOKENS = [
    "t=", "ts=", "h1=", "v1=", "v0=", "v1,", "sha1=", "sha256=", ",", ";", " ", "=", ":", ".", "-", "+", "/",
    "\t", "\x00", "\x7f", "\u00e9", "\u6f22", "\U0001f389", "\ufeff", "\u0663", "\u00b2", "0", str(NOW),
    "-1", "9" * 50, "9" * 5000, "1e9", "nan", "inf", "ab" * 32, "ab" * 64, "cd" * 20, "zz",
    base64.b64encode(bytes(32)).decode(), base64.b64encode(bytes(72)).decode(), "MEUCIQ", "[", "{", '"',
]  # fmt: skip


def fuzz_text(rng: random.Random, valid: str) -> str:
    mode = rng.randrange(4)
    if mode == 0:
        return "".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randrange(1, 8)))
    if mode == 1:
        return "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(0, 90)))
    chars = list(valid)
    for _ in range(rng.randrange(1, 4)):
        pos = rng.randrange(len(chars) + 1)
        op = rng.randrange(3)
        if op == 0:
            chars.insert(pos, rng.choice(FUZZ_TOKENS))
        elif op == 1 and chars:
            chars[min(pos, len(chars) - 1)] = chr(rng.randrange(0x20, 0x250))
        else:
            chars = chars[:pos]
    return "".join(chars)


def outcome(provider: Provider, delivery: Delivery) -> str:
    try:
        provider.verify(delivery, now=NOW)
    except VerificationError as exc:
        return exc.code
    return "accepted"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fuzzed_signatures_raise_only_verification_error(case: Case):
    rng = random.Random(f"breadth-{case.name}-{case.secrets[0][:6]}")
    provider = provider_for(case, [case.wrong_secret, *case.secrets], tolerance=300)
    valid = sample_delivery(case)
    seen = set()
    for _ in range(300):
        if case.name == "mailgun":  # the signature block is in the body
            payload = json.loads(valid.body)
            field_name = rng.choice(["timestamp", "token", "signature"])
            payload["signature"][field_name] = rng.choice(
                [fuzz_text(rng, payload["signature"][field_name]), None, 17, 1.5, [], {}]
            )
            delivery = with_body(valid, json.dumps(payload).encode())
        else:
            headers = dict(valid.headers.items())
            names = [n for n in headers if n.lower() != "content-type"]
            for name in rng.sample(names, rng.randrange(1, len(names) + 1)):
                headers[name] = fuzz_text(rng, headers[name])
            delivery = Delivery.of(valid.body, headers, url=valid.url)
        seen.add(outcome(provider, delivery))
    assert seen <= {"accepted", *VerificationError.CODES}
    assert len(seen) > 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fuzzed_bodies_raise_only_verification_error(case: Case):
    rng = random.Random(f"bodies-{case.name}")
    provider = provider_for(case)
    valid = sample_delivery(case)
    bodies = [b"", b"[" * 100_000, b"{" * 50_000, b"null", b"[]", b'"x"', b"\xff\xfe", b'{"signature": []}']
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))) for _ in range(60)]
    for body in bodies:
        for ctype in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data", ""):
            headers = {**dict(valid.headers.items()), "Content-Type": ctype}
            assert outcome(provider, Delivery.of(body, headers, url=URL)) in {
                "accepted",
                *VerificationError.CODES,
            }


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_describe_and_handshake_tolerate_any_payload(case: Case):
    provider = provider_for(case)
    delivery = sample_delivery(case)
    odd = [None, [], "x", 1, [1, "a", None], {"id": {"a": 1}}, {"type": "\u00b2", "id": "\u00b2"},
           {"event": "endpoint.url_validation"}, {"event_ts": "nan", "created_at": "\u00b2", "timestamp": "inf"},
           {"event-data": {"timestamp": "inf"}}, {"object_kind": None}]  # fmt: skip
    for payload in odd:
        assert isinstance(provider.describe(delivery, payload).event_type, str)
        provider.handshake(delivery, payload)


def test_linear_signed_but_unparseable_body_is_malformed_not_a_crash():
    provider = PROVIDERS["linear"](["SECRET"])
    for body in (b"[" * 100_000, b'{"webhookTimestamp": Infinity}', b'{"webhookTimestamp": NaN}', b"\xff"):
        delivery = Delivery.of(body, provider.sign(body, timestamp=NOW))
        assert code_of(provider, delivery) == VerificationError.MALFORMED


# -- fixed vectors (computed from the documented algorithms, see module docstring) ----------
LINEAR_BODY = (
    '{"action":"create","type":"Issue","createdAt":"2023-11-14T22:13:20.000Z","data":{"id":'
    '"9c5b3a4e-1f2d-4c6b-8a7e-5d4c3b2a1f0e","title":"Test issue"},"webhookTimestamp":1700000000000}'
)
ZOOM_BODY = (
    '{"event":"meeting.started","event_ts":1700000000000,"payload":{"account_id":"AAAAAABBBB",'
    '"object":{"id":"1234567890","topic":"My Meeting"}}}'
)
INTERCOM_BODY = (
    '{"type":"notification_event","id":"notif_ccd8a4d2-c3b8-4e5b-9c6a-1d2e3f4a5b6c","topic":'
    '"conversation.user.created","created_at":1700000000,"data":{"item":{"type":"conversation","id":"147"}}}'
)
TYPEFORM_BODY = (
    '{"event_id":"01HF2QJ4Z8","event_type":"form_response","form_response":{"form_id":"lT4Z3j",'
    '"token":"a3a12ec67a1365927098a606107fac15","submitted_at":"2023-11-14T22:13:20Z"}}'
)
MAILGUN_TOKEN = "a8ce0edb2dd8301dce9c93dc0e5d2ec6f1fc1dd4a2d3e7e41e"
MAILGUN_SIGNATURE = "e197c8c6f410ef737b403f91f339b0784ce90c9e785be47f85eb2c491734e8f3"
GITLAB_BODY = '{"object_kind":"push","project":{"path_with_namespace":"group/project"}}'
DISCORD_PING = '{"application_id":"775799577604948029","id":"1180000000000000000","token":"aW50ZXJhY3Rpb24","type":1,"version":1}'
DISCORD_PING_SIGNATURE = (
    "19f50ae9641e4156802066452a6a1f49188599ed6093c907e299ff213f8bc0b7"
    "dc6b0bd4d3d166e90516fdea25816fc50939fa36cc61146a4c9af3643e0c9d05"
)


def mailgun_body(signature: str = MAILGUN_SIGNATURE, **event_data: Any) -> str:
    return json.dumps(
        {
            "signature": {"timestamp": "1700000000", "token": MAILGUN_TOKEN, "signature": signature},
            "event-data": {"id": "CPgfbmQMTCKtHW6uIWtuVe", "event": "delivered", **event_data},
        }
    )


VECTORS = [
    # (id, provider, secret, body, headers, now, expected: "valid" | error code)
    ("linear-c1", "linear", "SECRET", LINEAR_BODY,
     {"Linear-Signature": "8f7500046c256b6631f56681df55d9aedcd190f35a5acb9f4b8224d8768b3bf9"}, NOW, "valid"),
    ("linear-c2-stale", "linear", "SECRET", LINEAR_BODY,
     {"Linear-Signature": "8f7500046c256b6631f56681df55d9aedcd190f35a5acb9f4b8224d8768b3bf9"}, NOW + 61,
     VerificationError.STALE),
    ("linear-c3-tampered", "linear", "SECRET", LINEAR_BODY.replace("Test issue", "Test issuE"),
     {"Linear-Signature": "8f7500046c256b6631f56681df55d9aedcd190f35a5acb9f4b8224d8768b3bf9"}, NOW,
     VerificationError.MISMATCH),
    ("zoom-c1", "zoom", "Sec3tT0kenExampleZoom123", ZOOM_BODY,
     {"x-zm-signature": "v0=30c27a039aca4b9a8894075f60e51f53988c237f96a61898508aca93d2ef7b15",
      "x-zm-request-timestamp": "1700000000"}, NOW, "valid"),
    ("zoom-c2-timestamp-changed", "zoom", "Sec3tT0kenExampleZoom123", ZOOM_BODY,
     {"x-zm-signature": "v0=30c27a039aca4b9a8894075f60e51f53988c237f96a61898508aca93d2ef7b15",
      "x-zm-request-timestamp": "1700000001"}, NOW, VerificationError.MISMATCH),
    ("intercom-c1", "intercom", "intercom-client-secret", INTERCOM_BODY,
     {"X-Hub-Signature": "sha1=6137804eb57450078a2421124afe4b23da85204d"}, None, "valid"),
    ("typeform-c1", "typeform", "abc123", TYPEFORM_BODY,
     {"Typeform-Signature": "sha256=tIZp5hw8Rg/BgcC9S0bo7JSWsHRKBRqr2tLigqqFYls="}, None, "valid"),
    ("typeform-c2-hex-is-not-base64", "typeform", "abc123", TYPEFORM_BODY,
     {"Typeform-Signature": "sha256=b4866" + "9" * 59}, None, VerificationError.MALFORMED),
    ("mailgun-c1", "mailgun", "mailgun-signing-key", mailgun_body(), {}, NOW, "valid"),
    # Policy vector: event-data is not signed, so changing it does not break the signature.
    ("mailgun-c2-event-data-unsigned", "mailgun", "mailgun-signing-key",
     mailgun_body(recipient="mallory@example.com"), {}, NOW, "valid"),
    ("mailgun-c3-wrong-signature", "mailgun", "mailgun-signing-key",
     mailgun_body(signature="0" * 64), {}, NOW, VerificationError.MISMATCH),
    ("mailgun-c4-stale", "mailgun", "mailgun-signing-key", mailgun_body(), {}, NOW + 301,
     VerificationError.STALE),
    ("gitlab-c1-token", "gitlab", "glsecret-token-1", GITLAB_BODY,
     {"X-Gitlab-Token": "glsecret-token-1", "X-Gitlab-Event": "Push Hook"}, None, "valid"),
    ("gitlab-c2-token-prefix", "gitlab", "glsecret-token-1", GITLAB_BODY,
     {"X-Gitlab-Token": "glsecret-token-", "X-Gitlab-Event": "Push Hook"}, None, VerificationError.MISMATCH),
    ("gitlab-c3-signing", "gitlab", "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=", GITLAB_BODY,
     {"webhook-id": "msg_gitlab_01", "webhook-timestamp": "1700000000",
      "webhook-signature": "v1,nh4mBo3UD/V3uFScOsP3YeuH6WWQmC00Acht81KmFiE=",
      "Idempotency-Key": "msg_gitlab_01"}, NOW, "valid"),
    ("gitlab-c4-signing-stale", "gitlab", "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=", GITLAB_BODY,
     {"webhook-id": "msg_gitlab_01", "webhook-timestamp": "1700000000",
      "webhook-signature": "v1,nh4mBo3UD/V3uFScOsP3YeuH6WWQmC00Acht81KmFiE="}, NOW + 301,
     VerificationError.STALE),
    ("gitlab-c5-signing-only-refuses-token", "gitlab", "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=",
     GITLAB_BODY, {"X-Gitlab-Token": "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="}, NOW,
     VerificationError.MISSING),
    ("discord-c1", "discord", RFC8032_PUBLIC, DISCORD_PING,
     {"X-Signature-Ed25519": DISCORD_PING_SIGNATURE, "X-Signature-Timestamp": "1700000000"}, NOW, "valid"),
    ("discord-c2-timestamp-changed", "discord", RFC8032_PUBLIC, DISCORD_PING,
     {"X-Signature-Ed25519": DISCORD_PING_SIGNATURE, "X-Signature-Timestamp": "1700000001"}, NOW,
     VerificationError.MISMATCH),
    ("discord-c3-other-key", "discord", OTHER_ED25519_PUBLIC, DISCORD_PING,
     {"X-Signature-Ed25519": DISCORD_PING_SIGNATURE, "X-Signature-Timestamp": "1700000000"}, NOW,
     VerificationError.MISMATCH),
]  # fmt: skip


@pytest.mark.parametrize("vector", VECTORS, ids=[v[0] for v in VECTORS])
def test_fixed_vector(vector):
    _, name, secret, body, headers, now, expected = vector
    provider = PROVIDERS[name]([secret])
    delivery = Delivery.of(body.encode(), {"Content-Type": "application/json", **headers})
    if expected == "valid":
        assert provider.verify(delivery, now=now) == 0
    else:
        assert code_of(provider, delivery, now=now) == expected


def test_rfc8032_seed_derives_the_documented_public_key():
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SEED))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == RFC8032_PUBLIC
    # RFC 8032 TEST 1 signs the empty message.
    assert key.sign(b"").hex().startswith("e5564300c360ac729086e2cc806e828a")


@pytest.mark.parametrize("ts", ["1600000000", "1700000000", "1799999999"])
@pytest.mark.parametrize(
    "body", [DISCORD_PING, '{"type":2,"id":"1","token":"t","data":{"name":"blep"}}', "é☃"]
)
def test_discord_vectors_derived_from_the_rfc8032_seed(ts: str, body: str):
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SEED))
    signature = key.sign(ts.encode() + body.encode()).hex()
    delivery = Delivery.of(body.encode(), {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts})
    assert PROVIDERS["discord"]([RFC8032_PUBLIC], tolerance=0).verify(delivery) == 0
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert (
        code_of(
            PROVIDERS["discord"]([RFC8032_PUBLIC], tolerance=0),
            with_headers(delivery, X_Signature_Ed25519=flipped),
        )
        == VerificationError.MISMATCH
    )


# -- provider specifics ---------------------------------------------------------------------
def test_square_signs_the_notification_url():
    case = next(c for c in CASES if c.name == "square")
    provider = provider_for(case)
    delivery = sample_delivery(case)
    moved = Delivery.of(delivery.body, dict(delivery.headers.items()), url=URL + "/")
    assert code_of(provider, moved) == VerificationError.MISMATCH
    unknown = Delivery.of(delivery.body, dict(delivery.headers.items()), url="")
    with pytest.raises(VerificationError, match="public_url") as info:
        provider.verify(unknown, now=NOW)
    assert info.value.code == VerificationError.MISMATCH
    assert PROVIDERS["square"].options == ("public_url",)


def test_paddle_skips_placeholder_and_unknown_entries():
    provider = provider_for(next(c for c in CASES if c.name == "paddle"))
    body = b'{"event_id":"evt_1"}'
    real = provider.sign(body, timestamp=NOW)["Paddle-Signature"]
    header = real.replace(";h1=", ";h1=dummy;h2=abc;h1=", 1)
    assert provider.verify(Delivery.of(body, {"Paddle-Signature": header}), now=NOW) == 0
    assert (
        code_of(provider, Delivery.of(body, {"Paddle-Signature": "h1=dummy"})) == VerificationError.MALFORMED
    )


def test_pagerduty_multiple_signatures_and_verbatim_secret():
    secret = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
    signer = PROVIDERS["pagerduty"]([secret, "second-secret"])
    body = b'{"event":{"id":"01","event_type":"incident.triggered","data":{"id":"PGR0VU2"}}}'
    header = signer.sign(body, timestamp=NOW)["X-PagerDuty-Signature"]
    assert header.count("v1=") == 2
    assert (
        PROVIDERS["pagerduty"](["second-secret"]).verify(Delivery.of(body, {"X-PagerDuty-Signature": header}))
        == 0
    )
    decoded = base64.b64decode(secret)
    assert signer.keys[0] == secret.encode() != decoded


def test_linear_needs_the_signed_timestamp():
    provider = PROVIDERS["linear"](["SECRET"])
    body = b'{"action":"create","type":"Issue"}'
    headers = provider.sign(body, timestamp=NOW)
    assert code_of(provider, Delivery.of(body, headers)) == VerificationError.MALFORMED
    # The unsigned Linear-Timestamp header is not trusted for freshness.
    headers["Linear-Timestamp"] = str(NOW * 1000)
    assert code_of(provider, Delivery.of(body, headers)) == VerificationError.MALFORMED
    assert PROVIDERS["linear"](["SECRET"], tolerance=0).verify(Delivery.of(body, headers)) == 0


def test_mailgun_form_post_and_missing_block():
    provider = PROVIDERS["mailgun"](["mailgun-signing-key"])
    form = f"timestamp=1700000000&token={MAILGUN_TOKEN}&signature={MAILGUN_SIGNATURE}&event=delivered"
    delivery = Delivery.of(form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert provider.verify(delivery, now=NOW) == 0
    got = provider.describe(delivery, parse_payload(delivery))
    assert (got.event_id, got.event_type) == (MAILGUN_TOKEN, "delivered")
    no_block = Delivery.of(b'{"event-data":{"id":"x"}}', {"Content-Type": "application/json"})
    assert code_of(provider, no_block) == VerificationError.MISSING
    bad = Delivery.of(mailgun_body(signature="zz").encode(), {"Content-Type": "application/json"})
    assert code_of(provider, bad) == VerificationError.MALFORMED
    with pytest.raises(NotImplementedError, match="sign_body"):
        provider.sign(b"{}", timestamp=NOW)


def test_mailgun_event_id_falls_back_to_token():
    provider = PROVIDERS["mailgun"](["mailgun-signing-key"])
    body = provider.sign_body(b'{"event-data":{"event":"opened"}}', timestamp=NOW, token="tok-1")
    delivery = Delivery.of(body, {"Content-Type": "application/json"})
    assert provider.verify(delivery, now=NOW) == 0
    assert provider.describe(delivery, parse_payload(delivery)).event_id == "tok-1"


def test_mailgun_documents_that_event_data_is_unsigned():
    cls = PROVIDERS["mailgun"]
    assert "NOT signed" in cls.summary
    assert "NOT signed" in (cls.__module__ and __import__(cls.__module__, fromlist=["_"]).__doc__)


def test_gitlab_token_and_signing_token_together():
    token, signing = "glsecret-token-1", "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="
    provider = PROVIDERS["gitlab"]([token, signing])
    body = GITLAB_BODY.encode()
    plain = Delivery.of(body, provider.sign(body, timestamp=NOW, key_index=0))
    signed = Delivery.of(body, provider.sign(body, timestamp=NOW, event_id="msg_1", key_index=1))
    assert provider.verify(plain, now=NOW) == 0
    assert provider.verify(signed, now=NOW) == 1
    # A signed delivery is judged by its signature alone, even if it also carries the token.
    zeros = base64.b64encode(bytes(32)).decode()
    forged = with_headers(signed, webhook_signature=f"v1,{zeros}", X_Gitlab_Token=token)
    assert code_of(provider, forged) == VerificationError.MISMATCH


def test_gitlab_describe_prefers_idempotency_key_and_object_kind():
    provider = PROVIDERS["gitlab"](["glsecret-token-1"])
    body = b'{"object_kind":"merge_request","object_attributes":{"action":"open"},"project":{"path_with_namespace":"g/p"}}'
    headers = {
        "X-Gitlab-Event": "Merge Request Hook",
        "X-Gitlab-Event-UUID": "uuid-1",
        "Idempotency-Key": "idem-1",
    }
    got = provider.describe(Delivery.of(body, headers), json.loads(body))
    assert (got.event_id, got.event_type, got.ordering_key) == ("idem-1", "merge_request.open", "g/p")
    headers.pop("Idempotency-Key")
    got = provider.describe(Delivery.of(b"{}", headers), {})
    assert (got.event_id, got.event_type, got.ordering_key) == ("uuid-1", "Merge Request Hook", "uuid-1")


def test_sendgrid_describe_batches():
    provider = PROVIDERS["sendgrid"]([spki_b64(SENDGRID_PRIVATE)])
    events = [
        {"event": "processed", "sg_event_id": "a", "sg_message_id": "m1", "timestamp": NOW},
        {"event": "delivered", "sg_event_id": "b", "sg_message_id": "m1", "timestamp": NOW + 1},
    ]
    body = json.dumps(events).encode() + b"\r\n"
    got = provider.describe(Delivery.of(body, {}), events)
    assert got.event_type == "delivered,processed"
    assert got.event_id.startswith("batch:") and got.ordering_key == "m1"
    assert got.created_at_ms == NOW * 1000
    assert provider.describe(Delivery.of(body, {}), events[:1]).event_id == "a"


# -- handshakes -----------------------------------------------------------------------------
def zoom_validation(secret: str) -> Delivery:
    provider = PROVIDERS["zoom"]([secret])
    body = json.dumps(
        {
            "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
            "event_ts": NOW * 1000,
            "event": "endpoint.url_validation",
        }
    ).encode()
    return Delivery.of(body, provider.sign(body, timestamp=NOW))


def test_zoom_url_validation_matches_the_documented_example():
    # PROVIDERS.md 3.10 COMPUTED example.
    expected = "3c2b10f362f0af541a70ce39ff8c29d36d675be3af5eb90288083abf690766e8"
    delivery = zoom_validation("Sec3tT0kenExampleZoom123")
    provider = PROVIDERS["zoom"](["Sec3tT0kenExampleZoom123"])
    assert provider.verify(delivery, now=NOW) == 0
    hs = provider.handshake(delivery, json.loads(delivery.body))
    assert hs is not None and hs.status == 200 and not hs.publish
    assert hs.body == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


def test_zoom_url_validation_uses_the_secret_that_verified():
    delivery = zoom_validation("Sec3tT0kenExampleZoom123")
    provider = PROVIDERS["zoom"](["OldZoomSecretToken00000", "Sec3tT0kenExampleZoom123"])
    assert provider.verify(delivery, now=NOW) == 1
    hs = provider.handshake(delivery, json.loads(delivery.body))
    assert hs.body["encryptedToken"].startswith("3c2b10f362f0af54")


def test_zoom_ordinary_event_has_no_handshake():
    case = next(c for c in CASES if c.name == "zoom")
    delivery = sample_delivery(case)
    assert PROVIDERS["zoom"](case.secrets).handshake(delivery, json.loads(delivery.body)) is None


def test_discord_ping_is_answered_with_pong():
    provider = PROVIDERS["discord"]([RFC8032_PUBLIC])
    delivery = Delivery.of(
        DISCORD_PING.encode(),
        {"X-Signature-Ed25519": DISCORD_PING_SIGNATURE, "X-Signature-Timestamp": "1700000000"},
    )
    assert provider.verify(delivery, now=NOW) == 0
    hs = provider.handshake(delivery, json.loads(DISCORD_PING))
    assert hs is not None and hs.body == {"type": 1} and hs.status == 200 and not hs.publish
    got = provider.describe(delivery, json.loads(DISCORD_PING))
    assert (got.event_id, got.event_type) == ("1180000000000000000", "PING")
    assert got.created_at_ms == (1180000000000000000 >> 22) + 1420070400000


def test_discord_other_handshakes():
    provider = PROVIDERS["discord"]([RFC8032_PUBLIC])
    d = Delivery.of(b"", {})
    command = provider.handshake(d, {"id": "1", "token": "t", "type": 2, "data": {"name": "blep"}})
    assert command.body == {"type": 5} and command.publish
    component = provider.handshake(d, {"id": "1", "token": "t", "type": 3})
    assert component.body == {"type": 6} and component.publish
    webhook_ping = provider.handshake(d, {"version": 1, "application_id": "1", "type": 0})
    assert (webhook_ping.status, webhook_ping.body, webhook_ping.publish) == (204, None, False)
    event = {
        "version": 1,
        "application_id": "1",
        "type": 1,
        "event": {
            "type": "APPLICATION_AUTHORIZED",
            "timestamp": "2024-10-18T14:42:53.064834",
            "data": {"user": {"id": "9"}},
        },
    }
    webhook_event = provider.handshake(d, event)
    assert (webhook_event.status, webhook_event.publish) == (204, True)
    got = provider.describe(Delivery.of(json.dumps(event).encode(), {}), event)
    assert (got.event_type, got.ordering_key) == ("APPLICATION_AUTHORIZED", "9")
    assert got.event_id.startswith("sha256:")


# -- official SDKs as oracles ---------------------------------------------------------------
def test_square_sdk_agrees():
    helper = importlib.import_module("square.utils.webhooks_helper")
    case = next(c for c in CASES if c.name == "square")
    delivery = sample_delivery(case)
    kwargs = {
        "request_body": delivery.body.decode(),
        "signature_header": delivery.headers["x-square-hmacsha256-signature"],
        "signature_key": case.secrets[0],
    }
    assert helper.verify_signature(notification_url=URL, **kwargs)
    assert not helper.verify_signature(notification_url=URL + "/", **kwargs)


def test_paddle_sdk_agrees():
    sig_module = importlib.import_module("paddle_billing.Notifications.PaddleSignature")
    from paddle_billing.Notifications.Secret import Secret

    case = next(c for c in CASES if c.name == "paddle")
    rotating = provider_for(case, [case.wrong_secret, *case.secrets])
    delivery = sample_delivery(case, rotating)
    header = delivery.headers["Paddle-Signature"]
    checker = sig_module.PaddleSignature()
    assert checker.verify(header, delivery.body.decode(), Secret(case.secrets[0]))
    assert not checker.verify(header, delivery.body.decode() + " ", Secret(case.secrets[0]))
    assert sig_module.PaddleSignature.parse(header)[0] == NOW


def test_sendgrid_sdk_agrees():
    eventwebhook = importlib.import_module("sendgrid.helpers.eventwebhook")
    case = next(c for c in CASES if c.name == "sendgrid")
    delivery = sample_delivery(case)
    sdk = eventwebhook.EventWebhook(case.secrets[0])
    signature = delivery.headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = delivery.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert sdk.verify_signature(delivery.body.decode(), signature, timestamp)
    assert not sdk.verify_signature(delivery.body.decode() + " ", signature, timestamp)


def test_discord_sdk_agrees():
    discord_interactions = importlib.import_module("discord_interactions")
    case = next(c for c in CASES if c.name == "discord")
    delivery = sample_delivery(case)
    signature = delivery.headers["X-Signature-Ed25519"]
    timestamp = delivery.headers["X-Signature-Timestamp"]
    assert discord_interactions.verify_key(delivery.body, signature, timestamp, RFC8032_PUBLIC)
    assert discord_interactions.verify_key(
        DISCORD_PING.encode(), DISCORD_PING_SIGNATURE, "1700000000", RFC8032_PUBLIC
    )
    assert not discord_interactions.verify_key(delivery.body + b" ", signature, timestamp, RFC8032_PUBLIC)


def test_standardwebhooks_sdk_agrees_with_gitlab_signing_token():
    standardwebhooks = importlib.import_module("standardwebhooks")

    secret = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="
    now = int(datetime.now(UTC).timestamp())  # the SDK reads the real clock
    sample = PROVIDERS["gitlab"]([secret]).sample("push", now=now, event_id="msg_gitlab_2")
    headers = {k.lower(): v for k, v in sample.headers.items()}
    standardwebhooks.Webhook(secret).verify(sample.body, headers)  # raises if it disagrees
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(sample.body + b" ", headers)
    # And the SDK's own signature verifies with ours.
    sdk_sig = standardwebhooks.Webhook(secret).sign(
        "msg_gitlab_3", datetime.fromtimestamp(now, UTC), GITLAB_BODY
    )
    delivery = Delivery.of(
        GITLAB_BODY.encode(),
        {"webhook-id": "msg_gitlab_3", "webhook-timestamp": str(now), "webhook-signature": sdk_sig},
    )
    assert PROVIDERS["gitlab"]([secret]).verify(delivery, now=now) == 0


# -- docs/providers.md stays true to the code -------------------------------------------------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"
DOC_ENV = {
    "DISCORD_PUBLIC_KEY": RFC8032_PUBLIC,
    "SENDGRID_VERIFICATION_KEY": spki_b64(SENDGRID_PRIVATE),
    "PADDLE_WEBHOOK_SECRET": "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "SVIX_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


README = DOCS.parents[1] / "README.md"


@pytest.mark.parametrize("doc", [DOCS, README], ids=["docs", "readme"])
def test_docs_list_every_provider(doc):
    text = doc.read_text(encoding="utf-8")
    if doc == README:
        text = text.split("\n## Providers\n", 1)[1].split("\n## ", 1)[0]
    table = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")}
    assert table == set(PROVIDERS)


@pytest.mark.parametrize("doc", [DOCS, README], ids=["docs", "readme"])
def test_docs_config_snippets_load(monkeypatch, doc):
    from hookstream.config import load_config

    text = doc.read_text(encoding="utf-8")
    snippets = [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]
    for name in {n for s in snippets for n in re.findall(r'"env:([A-Z_]+)"', s)}:
        monkeypatch.setenv(name, DOC_ENV.get(name, f"dev-only-{name.lower()}"))
    loaded = set()
    for snippet in snippets:
        if "[sources.NAME]" in snippet or "[sources." not in snippet:
            continue  # the generic shape, not a loadable example
        config = load_config(text=snippet)
        loaded |= {s.provider for s in config.sources.values()}
    assert loaded == set(PROVIDERS)

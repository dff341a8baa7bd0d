"""Signature vectors through our verifiers: valid ones verify, invalid ones are refused with their code.

The shared vectors in tests/vectors/signatures.json (published values, and published values with one
input changed); then, for providers that publish none, vectors computed here from the documented
algorithms with hmac/hashlib and cryptography directly (not through our providers), Discord's from
the RFC 8032 §7.1 TEST 1 key pair. The official SDKs' verdicts on the shared vectors are in
test_provider_oracles.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery
from tests.provider_cases import (
    DISCORD_PING,
    DISCORD_PING_SIGNATURE,
    GITLAB_BODY,
    NOW,
    OTHER_ED25519_PUBLIC,
    RFC8032_PUBLIC,
    RFC8032_SEED,
    mailgun_body,
    refused,
    with_headers,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signatures.json").read_text())
ALIASES = {"standard-webhooks": "standard"}


def provider_name(vector: dict) -> str:
    return ALIASES.get(vector["provider"], vector["provider"])


SUPPORTED = [v for v in VECTORS if provider_name(v) in PROVIDERS]


def build(vector: dict):
    name = provider_name(vector)
    secrets = vector.get("secrets") or [vector["secret"]]
    options = {}
    provider = PROVIDERS[name](secrets, options=options)
    url = vector.get("url") or ""
    delivery = Delivery.of(vector["body"].encode("utf-8"), vector["headers"], url=url)
    return provider, delivery


def test_every_provider_has_vectors_or_is_generic():
    # Providers with no vector in the shared file (PROVIDERS.md lists computed ones the file does not
    # carry yet) have their own in COMPUTED_VECTORS below.
    covered = {provider_name(v) for v in VECTORS} | {v[1] for v in COMPUTED_VECTORS}
    missing = set(PROVIDERS) - covered - {"stripe", "hmac"}
    assert not missing, f"providers without vectors: {missing}"


@pytest.mark.parametrize("vector", SUPPORTED, ids=[v["id"] for v in SUPPORTED])
def test_vector(vector):
    provider, delivery = build(vector)
    now = vector.get("now")
    if vector["expect"] == "valid":
        index = provider.verify(delivery, now=now)
        assert 0 <= index < len(provider.keys)
    else:
        with pytest.raises(VerificationError) as info:
            provider.verify(delivery, now=now)
        reason = vector.get("reason", "")
        if "stale" in reason or "too new" in reason or "stale" in vector["id"]:
            assert info.value.code == VerificationError.STALE
        else:
            assert info.value.code == VerificationError.MISMATCH, info.value.detail


# -- computed vectors --------------------------------------------------------------------------------


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

COMPUTED_VECTORS = [
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


@pytest.mark.parametrize("vector", COMPUTED_VECTORS, ids=[v[0] for v in COMPUTED_VECTORS])
def test_fixed_vector(vector):
    _, name, secret, body, headers, now, expected = vector
    provider = PROVIDERS[name]([secret])
    delivery = Delivery.of(body.encode(), {"Content-Type": "application/json", **headers})
    if expected == "valid":
        assert provider.verify(delivery, now=now) == 0
    else:
        assert refused(provider, delivery, now=now) == expected


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
        refused(
            PROVIDERS["discord"]([RFC8032_PUBLIC], tolerance=0),
            with_headers(delivery, X_Signature_Ed25519=flipped),
        )
        == VerificationError.MISMATCH
    )

"""Secrets and keys are checked when a provider is built: none, an empty one or one of the wrong
shape raises ValueError with a message that names the fix; encodings are the provider's own (a
Stripe whsec_ secret is used verbatim, a Standard Webhooks one is base64); options are validated;
public-key providers sign only with a private key.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from hookstream.ingest.providers import PROVIDERS
from hookstream.ingest.providers.hmac import GenericHmac
from hookstream.ingest.providers.standard import StandardWebhooks, Svix
from hookstream.ingest.providers.stripe import Stripe
from tests.provider_cases import (
    CASE_IDS,
    CASES,
    NOW,
    RFC8032_PUBLIC,
    SAMPLE_CASES,
    SENDGRID_PRIVATE,
    SampleCase,
    sample_delivery,
    spki_b64,
)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_secrets_or_an_empty_secret_raises(case):
    with pytest.raises(ValueError):
        case.cls([], options=case.options)
    with pytest.raises(ValueError):
        case.cls([case.secret, ""], options=case.options)


@pytest.mark.parametrize(
    "case, bad",
    [(c, b) for c in SAMPLE_CASES for b in c.bad_secrets],
    ids=[f"{c.name}:{b[:24]!r}" for c in SAMPLE_CASES for b in c.bad_secrets],
)
def test_wrongly_shaped_secret_is_refused(case: SampleCase, bad: str):
    with pytest.raises(ValueError, match=r"^secrets\[0\] "):
        PROVIDERS[case.name]([bad], options=case.options)


@pytest.mark.parametrize("cls", [StandardWebhooks, Svix])
@pytest.mark.parametrize(
    "secret", ["whsec_not base64!", "not*base64", "whsec_", "whsec_A", "whsec_\u00e9\u00e9\u00e9\u00e9"]
)
def test_standard_non_base64_secret_raises_at_construction(cls, secret):
    with pytest.raises(ValueError, match=r"secrets\[1\]"):
        cls(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", secret])


def test_stripe_uses_a_whsec_secret_verbatim():
    # Not base64 after the prefix, and still a valid Stripe secret: the whole string is the key.
    Stripe(["whsec_not base64!"])
    body = b'{"id": "evt_1"}'
    signed = Stripe(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).sign(body, timestamp=NOW)
    as_standard = StandardWebhooks(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).sign(
        body, timestamp=NOW, event_id="m"
    )
    assert (
        signed["Stripe-Signature"].split("v1=")[1]
        != base64.b64decode(as_standard["webhook-signature"][3:]).hex()
    )


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
    case = next(c for c in SAMPLE_CASES if c.name == "sendgrid")
    assert PROVIDERS["sendgrid"]([pem.decode()]).verify(sample_delivery(case), now=NOW) == 0


@pytest.mark.parametrize(
    "options", [{"algorithm": "md5"}, {"encoding": "base32"}], ids=["algorithm", "encoding"]
)
def test_hmac_invalid_options_raise(options):
    with pytest.raises(ValueError):
        GenericHmac(["s"], options=options)


def test_signing_key_option_is_validated():
    with pytest.raises(ValueError, match="signing_key"):
        PROVIDERS["discord"]([RFC8032_PUBLIC], options={"signing_key": "abcd"})
    with pytest.raises(ValueError, match="signing_key"):
        PROVIDERS["sendgrid"]([spki_b64(SENDGRID_PRIVATE)], options={"signing_key": "abcd"})


def test_public_key_providers_cannot_sign_without_a_private_key():
    for name, key in (("discord", RFC8032_PUBLIC), ("sendgrid", spki_b64(SENDGRID_PRIVATE))):
        with pytest.raises(NotImplementedError, match="signing_key"):
            PROVIDERS[name]([key]).sign(b"{}", timestamp=NOW)

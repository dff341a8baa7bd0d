"""What a provider's signature covers: a signed delivery verifies; a changed body, a wrong secret or
a changed signed URL is a mismatch; with several secrets, verify() reports the index that matched.
Then each scheme's own rules: Twilio's URL and port quirk, GitHub's legacy header, Shopify's Events
header, Square's notification URL, Paddle's and PagerDuty's several signatures, GitLab's two
mechanisms, Mailgun's signature block in the body.
"""

from __future__ import annotations

import base64

import pytest

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery
from hookstream.ingest.providers.base import parse_payload
from hookstream.ingest.providers.standard import StandardWebhooks, Svix
from hookstream.ingest.providers.stripe import Stripe
from hookstream.ingest.providers.twilio import Twilio
from tests.provider_cases import (
    CASE_IDS,
    CASES,
    FORM_BODY,
    GITLAB_BODY,
    HEX20,
    JSON_BODY,
    MAILGUN_SIGNATURE,
    MAILGUN_TOKEN,
    NOW,
    SAMPLE_CASES,
    SAMPLE_IDS,
    SAMPLE_URL,
    TWILIO_URL,
    SampleCase,
    mailgun_body,
    provider_for,
    refused,
    sample_delivery,
    with_body,
    with_headers,
)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_valid(case):
    assert case.provider().verify(case.signed(), now=NOW) == 0


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_sample_round_trip(case: SampleCase):
    provider = provider_for(case)
    assert provider.verify(sample_delivery(case), now=NOW) == 0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_header_names_are_case_insensitive(case):
    headers = {k.upper(): v for k, v in case.headers().items()}
    assert case.provider().verify(case.delivery(headers), now=NOW) == 0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tampered_body(case):
    tampered = (
        case.body.replace(b"caf", b"cab") if case.body is JSON_BODY else case.body.replace(b"SM1", b"SM2")
    )
    assert tampered != case.body
    assert (
        refused(case.provider(), case.delivery(case.headers(), body=tampered)) == VerificationError.MISMATCH
    )
    appended = case.body + b"\n"
    assert (
        refused(case.provider(), case.delivery(case.headers(), body=appended)) == VerificationError.MISMATCH
    )


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_tampered_sample_body(case: SampleCase):
    provider = provider_for(case)
    delivery = sample_delivery(case)
    tampered = with_body(delivery, delivery.body.replace(b"res-1", b"res-2"))
    assert tampered.body != delivery.body
    if case.body_signed:
        assert refused(provider, tampered) == VerificationError.MISMATCH
    else:
        # Documented limitation: Mailgun signs timestamp + token only; GitLab's plain token signs nothing.
        assert provider.verify(tampered, now=NOW) == 0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_wrong_secret(case):
    delivery = case.signed(secrets=[case.wrong_secret])
    assert refused(case.provider(), delivery) == VerificationError.MISMATCH


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_wrong_key(case: SampleCase):
    delivery = sample_delivery(case)
    assert refused(provider_for(case, [case.wrong_secret]), delivery) == VerificationError.MISMATCH


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rotation_second_secret_matches_index_1(case):
    if case.cls in (Stripe, StandardWebhooks, Svix):
        # These schemes carry one signature per active secret; sign as a sender using only the new one.
        delivery = case.signed(secrets=[case.secret])
    else:
        delivery = case.signed(secrets=[case.wrong_secret, case.secret], key_index=1)
    assert case.provider([case.wrong_secret, case.secret]).verify(delivery, now=NOW) == 1
    assert case.provider([case.secret, case.wrong_secret]).verify(delivery, now=NOW) == 0


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_rotation_reports_the_matching_secret(case: SampleCase):
    signer = provider_for(case)
    delivery = sample_delivery(case, signer)
    both = provider_for(case, [case.wrong_secret, *case.secrets])
    assert both.verify(delivery, now=NOW) == 1


# -- each scheme's own rules -------------------------------------------------------------------------


def test_twilio_url_is_signed():
    case = next(c for c in CASES if c.id == "twilio")
    other = case.delivery(case.headers(), url=TWILIO_URL.replace("https:", "http:"))
    assert refused(case.provider(), other) == VerificationError.MISMATCH
    assert refused(case.provider(), case.delivery(case.headers(), url="")) == VerificationError.MISMATCH


@pytest.mark.parametrize(
    ("signed_url", "request_url", "accepted"),
    [
        ("https://example.com:443/sms", "https://example.com/sms", True),
        ("https://example.com/sms", "https://example.com:443/sms", True),
        ("http://example.com:80/sms", "http://example.com/sms", True),
        ("http://example.com/sms", "http://example.com:80/sms", True),
        ("https://example.com/sms?x=1", "https://example.com:8443/sms?x=1", True),
        ("https://example.com:8443/sms", "https://example.com:8443/sms", True),
        ("https://example.com:8443/sms", "https://example.com/sms", False),
        ("https://example.com:8443/sms", "https://example.com:9443/sms", False),
        ("https://Example.com:443/sms", "https://Example.com/sms", True),
    ],
)
def test_twilio_port_quirk(signed_url, request_url, accepted):
    p = Twilio(["12345"])
    delivery = Delivery.of(FORM_BODY, p.sign(FORM_BODY, timestamp=NOW, url=signed_url), url=request_url)
    if accepted:
        assert p.verify(delivery) == 0
    else:
        assert refused(p, delivery) == VerificationError.MISMATCH


def test_github_legacy_sha1_alone_is_missing_signature():
    case = next(c for c in CASES if c.id == "github")
    headers = {"X-Hub-Signature": "sha1=" + HEX20, "Content-Type": "application/json"}
    assert refused(case.provider(), case.delivery(headers)) == VerificationError.MISSING


def test_shopify_events_style_header():
    case = next(c for c in CASES if c.id == "shopify")
    value = case.headers()["X-Shopify-Hmac-Sha256"]
    assert case.provider().verify(case.delivery({"shopify-hmac-sha256": value}), now=NOW) == 0


def test_square_signs_the_notification_url():
    case = next(c for c in SAMPLE_CASES if c.name == "square")
    provider = provider_for(case)
    delivery = sample_delivery(case)
    moved = Delivery.of(delivery.body, dict(delivery.headers.items()), url=SAMPLE_URL + "/")
    assert refused(provider, moved) == VerificationError.MISMATCH
    unknown = Delivery.of(delivery.body, dict(delivery.headers.items()), url="")
    with pytest.raises(VerificationError, match="public_url") as info:
        provider.verify(unknown, now=NOW)
    assert info.value.code == VerificationError.MISMATCH
    assert PROVIDERS["square"].options == ("public_url",)


def test_paddle_skips_placeholder_and_unknown_entries():
    provider = provider_for(next(c for c in SAMPLE_CASES if c.name == "paddle"))
    body = b'{"event_id":"evt_1"}'
    real = provider.sign(body, timestamp=NOW)["Paddle-Signature"]
    header = real.replace(";h1=", ";h1=dummy;h2=abc;h1=", 1)
    assert provider.verify(Delivery.of(body, {"Paddle-Signature": header}), now=NOW) == 0
    assert (
        refused(provider, Delivery.of(body, {"Paddle-Signature": "h1=dummy"})) == VerificationError.MALFORMED
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
    assert refused(provider, forged) == VerificationError.MISMATCH


def test_mailgun_form_post_and_missing_block():
    provider = PROVIDERS["mailgun"](["mailgun-signing-key"])
    form = f"timestamp=1700000000&token={MAILGUN_TOKEN}&signature={MAILGUN_SIGNATURE}&event=delivered"
    delivery = Delivery.of(form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert provider.verify(delivery, now=NOW) == 0
    got = provider.describe(delivery, parse_payload(delivery))
    assert (got.event_id, got.event_type) == (MAILGUN_TOKEN, "delivered")
    no_block = Delivery.of(b'{"event-data":{"id":"x"}}', {"Content-Type": "application/json"})
    assert refused(provider, no_block) == VerificationError.MISSING
    bad = Delivery.of(mailgun_body(signature="zz").encode(), {"Content-Type": "application/json"})
    assert refused(provider, bad) == VerificationError.MALFORMED
    with pytest.raises(NotImplementedError, match="sign_body"):
        provider.sign(b"{}", timestamp=NOW)

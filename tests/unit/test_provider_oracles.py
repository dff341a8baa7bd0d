"""The providers' official SDKs as oracles for our verifiers.

Where the SDK can sign, in both directions: (a) what our ``sign()`` produces verifies with the SDK;
(b) what the SDK signs verifies with ours. Each property runs over a handful of seeded random bodies:
ASCII, non-ASCII, control characters, a BOM, JSON-looking text. The SDKs decode the body as UTF-8, so
bodies are valid UTF-8 throughout. Where it can only verify (squareup, paddle-python-sdk, sendgrid,
discord-interactions), our signed sample must verify with it and a changed one must not. Every SDK
is in the test extras: a missing one fails its tests, it never skips them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
import slack_sdk.signature
import standardwebhooks.webhooks
import stripe
import svix.webhooks
from twilio.request_validator import RequestValidator

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery
from hookstream.ingest.providers.slack import Slack
from hookstream.ingest.providers.standard import StandardWebhooks, Svix
from hookstream.ingest.providers.stripe import Stripe
from hookstream.ingest.providers.twilio import Twilio
from tests.provider_cases import (
    DISCORD_PING,
    DISCORD_PING_SIGNATURE,
    GITLAB_BODY,
    NOW,
    RFC8032_PUBLIC,
    SAMPLE_CASES,
    SAMPLE_URL,
    provider_for,
    sample_delivery,
)

STRIPE_OLD = "whsec_test_secret"
STRIPE_NEW = "whsec_4p8Q9mZ1rT2vW6yX0aB3cD5eF7gH9jK"
SLACK_OLD = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_NEW = "e2a0c0c81b3c4d9b8f6a7e5d4c3b2a19"
TWILIO_OLD = "12345"
TWILIO_NEW = "d4f0e1b2c3a495867788990aabbccdde"
SW_OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_NEW = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()

TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"

ALPHABET = (
    'abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 {}[]":,.=&+%/\\\r\n\t'
    "éüßçñ ĀŁŒ ΩЖЯ 漢字かな 한국 שלום العربية 🎉🔥👍🏽 \u00a0\u200b\u2028\u2029\ufeff\x00\x01\x1b\x7f"
)


def random_text(rng: random.Random, max_len: int = 120) -> str:
    """Valid text that exercises encoding: multi-byte, astral, control and BOM characters."""
    if rng.random() < 0.3:
        # Arbitrary code points (no surrogates, which UTF-8 cannot encode).
        points = [rng.choice([rng.randrange(0, 0xD800), rng.randrange(0xE000, 0x110000)]) for _ in range(40)]
        return "".join(map(chr, points))
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, max_len)))


def random_bodies(seed: str, count: int = 8) -> list[bytes]:
    rng = random.Random(seed)
    bodies = [
        b"",
        json.dumps({"id": "evt_1", "text": "caf\u00e9 \u2603 \U0001f389"}, ensure_ascii=False).encode(),
        '{"escaped":"\\u001b[31m\\u2665","raw":"\u2665\u001b"}'.encode(),
    ]
    bodies += [random_text(rng).encode("utf-8") for _ in range(count)]
    return bodies


BODIES = random_bodies("oracles")
BODY_IDS = [f"body{i}" for i in range(len(BODIES))]


def verifies(provider, delivery: Delivery, now: float | None = None) -> bool:
    """True if ours accepts; False on a VerificationError (any other exception fails the test)."""
    try:
        provider.verify(delivery, now=now)
    except VerificationError:
        return False
    return True


class FixedClock(slack_sdk.signature.Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


# -- Stripe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_stripe_our_header_verifies_with_sdk(body):
    header = Stripe([STRIPE_OLD]).sign(body, timestamp=NOW)["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(body, header, STRIPE_OLD, tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, STRIPE_NEW, tolerance=None)


@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_stripe_sdk_header_verifies_with_ours(body):
    text = body.decode("utf-8")
    header = stripe.WebhookSignature.generate_signature_header(text, STRIPE_OLD, timestamp=NOW)
    # Also built by hand, the way stripe-python's own tests do.
    by_hand = f"t={NOW},v1=" + stripe.WebhookSignature._compute_signature(f"{NOW}.{text}", STRIPE_OLD)
    assert header == by_hand
    assert Stripe([STRIPE_OLD]).verify(Delivery.of(body, {"Stripe-Signature": header}), now=NOW) == 0


def test_stripe_construct_event_accepts_our_sample_now():
    now = int(time.time())
    provider = Stripe([STRIPE_OLD])
    sample = provider.sample("payment_intent.succeeded", now=now, event_id="evt_oracle")
    event = stripe.Webhook.construct_event(sample.body, sample.headers["Stripe-Signature"], STRIPE_OLD)
    assert event.id == "evt_oracle"
    assert event.type == "payment_intent.succeeded"
    assert provider.verify(Delivery.of(sample.body, sample.headers), now=now) == 0


def test_stripe_rotation_second_secret_matches_index_1():
    body = BODIES[1]
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_NEW, timestamp=NOW)
    assert (
        Stripe([STRIPE_OLD, STRIPE_NEW]).verify(Delivery.of(body, {"Stripe-Signature": header}), now=NOW) == 1
    )


@pytest.mark.parametrize("body", BODIES[:4], ids=BODY_IDS[:4])
def test_stripe_two_v1_header_verifies_with_only_the_new_secret(body):
    # During a roll Stripe sends one v1 per active secret; ours signs the same way with both configured.
    header = Stripe([STRIPE_OLD, STRIPE_NEW]).sign(body, timestamp=NOW)["Stripe-Signature"]
    assert header.count("v1=") == 2
    assert stripe.WebhookSignature.verify_header(body, header, STRIPE_NEW, tolerance=None)
    assert stripe.WebhookSignature.verify_header(body, header, STRIPE_OLD, tolerance=None)
    delivery = Delivery.of(body, {"Stripe-Signature": header})
    assert Stripe([STRIPE_NEW]).verify(delivery, now=NOW) == 0
    assert Stripe([STRIPE_OLD]).verify(delivery, now=NOW) == 0
    # The same shape built from the SDK's own signatures.
    text = body.decode()
    sdk_header = ",".join(
        [f"t={NOW}"]
        + [
            f"v1={stripe.WebhookSignature._compute_signature(f'{NOW}.{text}', s)}"
            for s in (STRIPE_OLD, STRIPE_NEW)
        ]
        + ["v0=" + "0" * 64]
    )
    assert Stripe([STRIPE_NEW]).verify(Delivery.of(body, {"Stripe-Signature": sdk_header}), now=NOW) == 0


def test_stripe_tolerance_agrees_with_sdk_past_only():
    body = BODIES[1]
    now = int(time.time())
    provider = Stripe([STRIPE_OLD])
    for ts, sdk_accepts in [(now - 400, False), (now - 100, True), (now + 3600, True)]:
        header = provider.sign(body, timestamp=ts)["Stripe-Signature"]
        delivery = Delivery.of(body, {"Stripe-Signature": header})
        if sdk_accepts:
            assert stripe.WebhookSignature.verify_header(body, header, STRIPE_OLD, tolerance=300)
            assert provider.verify(delivery, now=now) == 0
        else:
            with pytest.raises(stripe.SignatureVerificationError):
                stripe.WebhookSignature.verify_header(body, header, STRIPE_OLD, tolerance=300)
            with pytest.raises(VerificationError) as info:
                provider.verify(delivery, now=now)
            assert info.value.code == VerificationError.STALE


def test_stripe_secret_is_used_verbatim_not_base64_decoded():
    # A whsec_ secret that is valid base64 after the prefix: Stripe still keys with the whole string.
    body = BODIES[1]
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SW_OLD, timestamp=NOW)
    assert Stripe([SW_OLD]).verify(Delivery.of(body, {"Stripe-Signature": header}), now=NOW) == 0


# -- Slack -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_slack_our_headers_verify_with_sdk(body):
    headers = Slack([SLACK_OLD]).sign(body, timestamp=NOW)
    assert slack_sdk.signature.SignatureVerifier(SLACK_OLD, clock=FixedClock(NOW)).is_valid_request(
        body, headers
    )
    assert not slack_sdk.signature.SignatureVerifier(SLACK_NEW, clock=FixedClock(NOW)).is_valid_request(
        body, headers
    )


@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_slack_sdk_signature_verifies_with_ours(body):
    sdk = slack_sdk.signature.SignatureVerifier(SLACK_OLD, clock=FixedClock(NOW))
    signature = sdk.generate_signature(timestamp=str(NOW), body=body)
    headers = {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(NOW)}
    assert Slack([SLACK_OLD]).verify(Delivery.of(body, headers), now=NOW) == 0


def test_slack_signs_the_timestamp_header_verbatim():
    # slack_sdk signs the header text as sent; a re-rendered int would differ for "0…" or "+…".
    body = BODIES[1]
    sdk = slack_sdk.signature.SignatureVerifier(SLACK_OLD, clock=FixedClock(NOW))
    for ts_text in (f"0{NOW}", f"+{NOW}"):
        headers = {
            "X-Slack-Signature": sdk.generate_signature(timestamp=ts_text, body=body),
            "X-Slack-Request-Timestamp": ts_text,
        }
        assert sdk.is_valid_request(body, headers)
        assert Slack([SLACK_OLD]).verify(Delivery.of(body, headers), now=NOW) == 0


def test_slack_rotation_second_secret_matches_index_1():
    body = BODIES[2]
    sdk = slack_sdk.signature.SignatureVerifier(SLACK_NEW, clock=FixedClock(NOW))
    headers = {
        "X-Slack-Signature": sdk.generate_signature(timestamp=str(NOW), body=body),
        "X-Slack-Request-Timestamp": str(NOW),
    }
    assert Slack([SLACK_OLD, SLACK_NEW]).verify(Delivery.of(body, headers), now=NOW) == 1
    ours = Slack([SLACK_OLD, SLACK_NEW]).sign(body, timestamp=NOW, key_index=1)
    assert ours["X-Slack-Signature"] == headers["X-Slack-Signature"]


@pytest.mark.parametrize("offset", [-301, -300, 0, 300, 301])
def test_slack_tolerance_agrees_with_sdk(offset):
    body = BODIES[1]
    headers = Slack([SLACK_OLD]).sign(body, timestamp=NOW + offset)
    sdk_ok = slack_sdk.signature.SignatureVerifier(SLACK_OLD, clock=FixedClock(NOW)).is_valid_request(
        body, headers
    )
    ours_ok = verifies(Slack([SLACK_OLD]), Delivery.of(body, headers), now=NOW)
    assert ours_ok == sdk_ok == (abs(offset) <= 300)


# -- Twilio ------------------------------------------------------------------------------------


class MultiParams(dict):
    """Repeated form fields, the way Django's QueryDict hands them to the SDK (``getlist``)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def random_params(rng: random.Random) -> dict[str, list[str]]:
    names = ["From", "To", "Body", "MessageSid", "AccountSid", "MediaUrl0", "Caller", "Ünïcode", "emoji🎉"]
    params: dict[str, list[str]] = {}
    for name in rng.sample(names, rng.randrange(1, len(names))):
        count = 1 if rng.random() < 0.8 else rng.randrange(2, 4)
        values = [random_text(rng, 40).replace("\x00", "") for _ in range(count)]
        if count > 1 and rng.random() < 0.5:
            values.append(values[0])  # a repeated value: twilio-python sorts and de-duplicates
        params[name] = values
    return params


TWILIO_PARAMS = [random_params(random.Random(f"twilio-{i}")) for i in range(8)]


@pytest.mark.parametrize("params", TWILIO_PARAMS, ids=[f"params{i}" for i in range(len(TWILIO_PARAMS))])
def test_twilio_our_form_signature_verifies_with_sdk(params):
    body = urlencode(params, doseq=True).encode()
    headers = Twilio([TWILIO_OLD]).sign(body, timestamp=NOW, url=TWILIO_URL)
    signature = headers["X-Twilio-Signature"]
    assert RequestValidator(TWILIO_OLD).validate(TWILIO_URL, MultiParams(params), signature)
    assert not RequestValidator(TWILIO_NEW).validate(TWILIO_URL, MultiParams(params), signature)


@pytest.mark.parametrize("params", TWILIO_PARAMS, ids=[f"params{i}" for i in range(len(TWILIO_PARAMS))])
def test_twilio_sdk_form_signature_verifies_with_ours(params):
    body = urlencode(params, doseq=True).encode()
    signature = RequestValidator(TWILIO_OLD).compute_signature(TWILIO_URL, MultiParams(params))
    delivery = Delivery.of(
        body,
        {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        url=TWILIO_URL,
    )
    assert Twilio([TWILIO_OLD]).verify(delivery) == 0


def json_url(body: bytes, base: str = "https://mycompany.com/myapp.php?foo=1") -> str:
    return f"{base}&bodySHA256={hashlib.sha256(body).hexdigest()}"


@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_twilio_json_body_our_signature_verifies_with_sdk(body):
    url = json_url(body)
    headers = Twilio([TWILIO_OLD]).sign(body, timestamp=NOW, url=url)
    assert headers["Content-Type"] == "application/json"
    assert RequestValidator(TWILIO_OLD).validate(url, body.decode("utf-8"), headers["X-Twilio-Signature"])
    # The body is bound through bodySHA256: another body under the same URL fails in both.
    assert not RequestValidator(TWILIO_OLD).validate(url, body.decode() + " ", headers["X-Twilio-Signature"])


@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_twilio_json_body_sdk_signature_verifies_with_ours(body):
    url = json_url(body)
    signature = RequestValidator(TWILIO_OLD).compute_signature(url, {})
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/json"}
    assert Twilio([TWILIO_OLD]).verify(Delivery.of(body, headers, url=url)) == 0
    assert not verifies(Twilio([TWILIO_OLD]), Delivery.of(body + b" ", headers, url=url))


def test_twilio_rotation_second_token_matches_index_1():
    params = TWILIO_PARAMS[0]
    body = urlencode(params, doseq=True).encode()
    signature = RequestValidator(TWILIO_NEW).compute_signature(TWILIO_URL, MultiParams(params))
    delivery = Delivery.of(
        body,
        {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        url=TWILIO_URL,
    )
    assert Twilio([TWILIO_OLD, TWILIO_NEW]).verify(delivery) == 1


@pytest.mark.parametrize(
    ("signed_url", "request_url"),
    [
        ("https://mycompany.com:443/myapp.php?foo=1", "https://mycompany.com/myapp.php?foo=1"),
        ("https://mycompany.com/myapp.php?foo=1", "https://mycompany.com:443/myapp.php?foo=1"),
        ("http://mycompany.com:80/myapp.php", "http://mycompany.com/myapp.php"),
        ("https://mycompany.com/myapp.php", "https://mycompany.com:8443/myapp.php"),
        ("https://mycompany.com:8443/myapp.php", "https://mycompany.com:8443/myapp.php"),
        ("https://MyCompany.com:443/myapp.php", "https://MyCompany.com/myapp.php"),
        ("https://MyCompany.com/myapp.php", "https://MyCompany.com:8443/myapp.php"),
        # Signed with a non-default port, requested without one: neither adds :8443.
        ("https://mycompany.com:8443/myapp.php", "https://mycompany.com/myapp.php"),
    ],
)
def test_twilio_port_quirk_agrees_with_sdk(signed_url, request_url):
    params = {"From": ["+14158675309"], "Body": ["h\u00e9llo"]}
    body = urlencode(params, doseq=True).encode()
    signature = RequestValidator(TWILIO_OLD).compute_signature(signed_url, MultiParams(params))
    sdk_ok = RequestValidator(TWILIO_OLD).validate(request_url, MultiParams(params), signature)
    delivery = Delivery.of(
        body,
        {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        url=request_url,
    )
    ours_ok = verifies(Twilio([TWILIO_OLD]), delivery)
    assert ours_ok == sdk_ok
    assert ours_ok == (":8443" not in signed_url or ":8443" in request_url)


# -- Standard Webhooks and Svix ------------------------------------------------------------------


def _sdk_sign(sdk_class, secret: str, msg_id: str, ts: int, body: bytes) -> str:
    return sdk_class(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode("utf-8"))


SW_FLAVOURS = [
    pytest.param(StandardWebhooks, standardwebhooks.webhooks.Webhook, "webhook", id="standardwebhooks"),
    pytest.param(Svix, svix.webhooks.Webhook, "svix", id="svix"),
]


@pytest.mark.parametrize(("ours", "sdk", "prefix"), SW_FLAVOURS)
@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_standard_our_headers_verify_with_sdk(ours, sdk, prefix, body):
    now = int(time.time())  # the SDKs read the wall clock
    headers = ours([SW_OLD]).sign(body, timestamp=now, event_id="msg_p5jXN8AQM9LWM0D4loKWxJek")
    assert f"{prefix}-signature" in headers
    if sdk is standardwebhooks.webhooks.Webhook:
        sdk(SW_OLD).verify(body, headers, json_parse=False)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            sdk(SW_NEW).verify(body, headers, json_parse=False)
    else:
        sdk(SW_OLD).verify(body, headers)
        with pytest.raises(svix.webhooks.WebhookVerificationError):
            sdk(SW_NEW).verify(body, headers)


@pytest.mark.parametrize(("ours", "sdk", "prefix"), SW_FLAVOURS)
@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_standard_sdk_signature_verifies_with_ours(ours, sdk, prefix, body):
    now = int(time.time())
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    headers = {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(now),
        f"{prefix}-signature": _sdk_sign(sdk, SW_OLD, msg_id, now, body),
    }
    assert ours([SW_OLD]).verify(Delivery.of(body, headers), now=now) == 0


@pytest.mark.parametrize(("ours", "sdk", "prefix"), SW_FLAVOURS)
def test_standard_published_vector_is_what_both_sign(ours, sdk, prefix):
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert _sdk_sign(sdk, SW_OLD, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    headers = ours([SW_OLD]).sign(body, timestamp=1614265330, event_id="msg_p5jXN8AQM9LWM0D4loKWxJek")
    assert headers[f"{prefix}-signature"] == expected


@pytest.mark.parametrize(("ours", "sdk", "prefix"), SW_FLAVOURS)
def test_standard_rotation_second_secret_matches_index_1(ours, sdk, prefix):
    now = int(time.time())
    body = BODIES[1]
    headers = {
        f"{prefix}-id": "msg_rotation",
        f"{prefix}-timestamp": str(now),
        f"{prefix}-signature": _sdk_sign(sdk, SW_NEW, "msg_rotation", now, body),
    }
    assert ours([SW_OLD, SW_NEW]).verify(Delivery.of(body, headers), now=now) == 1


@pytest.mark.parametrize(("ours", "sdk", "prefix"), SW_FLAVOURS)
def test_standard_several_signatures_verify_with_either_secret(ours, sdk, prefix):
    # Ours signs with every configured secret, space-separated, as a sender mid-rotation does.
    now = int(time.time())
    body = BODIES[2]
    headers = ours([SW_OLD, SW_NEW]).sign(body, timestamp=now, event_id="msg_both")
    assert len(headers[f"{prefix}-signature"].split()) == 2
    for secret in (SW_OLD, SW_NEW):
        if sdk is standardwebhooks.webhooks.Webhook:
            sdk(secret).verify(body, headers, json_parse=False)
        else:
            sdk(secret).verify(body, headers)
    delivery = Delivery.of(body, headers)
    assert ours([SW_NEW]).verify(delivery, now=now) == 0
    # Unknown versions are skipped, as in the SDKs.
    sig = _sdk_sign(sdk, SW_OLD, "msg_both", now, body)
    mixed = {**headers, f"{prefix}-signature": "v1a,AAAA v2,BBBB " + sig}
    assert ours([SW_OLD]).verify(Delivery.of(body, mixed), now=now) == 0


@pytest.mark.parametrize(("ours", "sdk", "prefix"), SW_FLAVOURS)
def test_standard_unpadded_secret_accepted_like_the_sdk(ours, sdk, prefix):
    now = int(time.time())
    body = BODIES[1]
    unpadded = "whsec_" + base64.b64encode(b"0123456789abcdefghijklmnop").decode().rstrip("=")
    assert not unpadded.endswith("=") and len(unpadded[6:]) % 4
    headers = {
        f"{prefix}-id": "msg_unpadded",
        f"{prefix}-timestamp": str(now),
        f"{prefix}-signature": _sdk_sign(sdk, unpadded, "msg_unpadded", now, body),
    }
    assert ours([unpadded]).verify(Delivery.of(body, headers), now=now) == 0
    # And without the whsec_ prefix.
    assert ours([unpadded[6:]]).verify(Delivery.of(body, headers), now=now) == 0


# -- the shared vectors, judged by the SDKs ------------------------------------------------------

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signatures.json").read_text())
OURS = {"slack": Slack, "twilio": Twilio, "standard-webhooks": StandardWebhooks, "svix": Svix}
SDK_VECTORS = [v for v in VECTORS if v["provider"] in OURS]


class FrozenDatetime(datetime):
    """``datetime`` whose ``now()`` reads a fixed instant, for the Standard Webhooks SDK's clock."""

    frozen: float = 0.0

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return datetime.fromtimestamp(cls.frozen, tz=tz)


def sdk_accepts(vector: dict, monkeypatch: pytest.MonkeyPatch) -> bool:
    body, headers, secret = vector["body"], vector["headers"], vector["secret"]
    provider = vector["provider"]
    if provider == "slack":
        return slack_sdk.signature.SignatureVerifier(
            secret, clock=FixedClock(vector["now"])
        ).is_valid_request(body, headers)
    if provider == "twilio":
        if vector["params"]:
            params = MultiParams({k: v if isinstance(v, list) else [v] for k, v in vector["params"].items()})
        else:
            params = body  # JSON body: the SDK checks it against bodySHA256
        return RequestValidator(secret).validate(vector["url"], params, headers["X-Twilio-Signature"])
    monkeypatch.setattr(FrozenDatetime, "frozen", float(vector["now"]))
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", FrozenDatetime)
    try:
        svix.webhooks.Webhook(secret).verify(body, headers)  # reads svix-* and webhook-* alike
    except standardwebhooks.webhooks.WebhookVerificationError:
        return False
    return True


@pytest.mark.parametrize("vector", SDK_VECTORS, ids=[v["id"] for v in SDK_VECTORS])
def test_shared_vector_verdict_agrees_with_sdk(vector, monkeypatch):
    expected = vector["expect"] == "valid"
    assert sdk_accepts(vector, monkeypatch) == expected
    ours = OURS[vector["provider"]]([vector["secret"]])
    delivery = Delivery.of(vector["body"].encode(), vector["headers"], url=vector.get("url") or "")
    assert verifies(ours, delivery, now=vector["now"]) == expected


# -- SDKs that only verify, and Standard Webhooks for GitLab's signing token -------------------------


def test_square_sdk_agrees():
    helper = importlib.import_module("square.utils.webhooks_helper")
    case = next(c for c in SAMPLE_CASES if c.name == "square")
    delivery = sample_delivery(case)
    kwargs = {
        "request_body": delivery.body.decode(),
        "signature_header": delivery.headers["x-square-hmacsha256-signature"],
        "signature_key": case.secrets[0],
    }
    assert helper.verify_signature(notification_url=SAMPLE_URL, **kwargs)
    assert not helper.verify_signature(notification_url=SAMPLE_URL + "/", **kwargs)


def test_paddle_sdk_agrees():
    sig_module = importlib.import_module("paddle_billing.Notifications.PaddleSignature")
    from paddle_billing.Notifications.Secret import Secret

    case = next(c for c in SAMPLE_CASES if c.name == "paddle")
    rotating = provider_for(case, [case.wrong_secret, *case.secrets])
    delivery = sample_delivery(case, rotating)
    header = delivery.headers["Paddle-Signature"]
    checker = sig_module.PaddleSignature()
    assert checker.verify(header, delivery.body.decode(), Secret(case.secrets[0]))
    assert not checker.verify(header, delivery.body.decode() + " ", Secret(case.secrets[0]))
    assert sig_module.PaddleSignature.parse(header)[0] == NOW


def test_sendgrid_sdk_agrees():
    eventwebhook = importlib.import_module("sendgrid.helpers.eventwebhook")
    case = next(c for c in SAMPLE_CASES if c.name == "sendgrid")
    delivery = sample_delivery(case)
    sdk = eventwebhook.EventWebhook(case.secrets[0])
    signature = delivery.headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = delivery.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert sdk.verify_signature(delivery.body.decode(), signature, timestamp)
    assert not sdk.verify_signature(delivery.body.decode() + " ", signature, timestamp)


def test_discord_sdk_agrees():
    discord_interactions = importlib.import_module("discord_interactions")
    case = next(c for c in SAMPLE_CASES if c.name == "discord")
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

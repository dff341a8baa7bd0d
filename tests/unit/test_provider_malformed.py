"""Input a sender controls, refused with the right reason and never a crash: malformed, missing and
empty headers, and seeded fuzz over headers, bodies, content types and Twilio's URL, proving that
nothing but VerificationError escapes verify(), and nothing at all escapes describe() or handshake().
"""

from __future__ import annotations

import base64
import json
import random

import pytest

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery, Provider
from tests.provider_cases import (
    CASE_IDS,
    CASES,
    HEX20,
    HEX32,
    NOW,
    SAMPLE_CASES,
    SAMPLE_IDS,
    SAMPLE_URL,
    TWILIO_URL,
    SampleCase,
    b64,
    provider_for,
    refused,
    sample_delivery,
    with_body,
    with_header,
    with_headers,
)

MALFORMED = [(c, v) for c in CASES for v in c.malformed]


@pytest.mark.parametrize(("case", "value"), MALFORMED, ids=[f"{c.id}:{v[:24]}" for c, v in MALFORMED])
def test_malformed_signature_header(case, value):
    headers = with_header(case.headers(), case.signature_header, value)
    assert refused(case.provider(), case.delivery(headers)) == VerificationError.MALFORMED


@pytest.mark.parametrize("case", [c for c in SAMPLE_CASES if c.malformed], ids=lambda c: c.name)
def test_malformed_sample_signature_header(case: SampleCase):
    delivery = with_headers(sample_delivery(case), **{case.signature_header: case.malformed})
    assert refused(provider_for(case), delivery) == VerificationError.MALFORMED


MALFORMED_TS = [(c, v) for c in CASES for v in c.malformed_timestamps]


@pytest.mark.parametrize(("case", "value"), MALFORMED_TS, ids=[f"{c.id}:{v[:16]}" for c, v in MALFORMED_TS])
def test_non_integer_timestamp_header(case, value):
    headers = with_header(case.headers(), case.timestamp_header, value)
    assert refused(case.provider(), case.delivery(headers)) == VerificationError.MALFORMED


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("value", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_missing_header(case, value):
    for name in case.fuzzed_headers():
        headers = with_header(case.headers(), name, value)
        assert refused(case.provider(), case.delivery(headers)) == VerificationError.MISSING, name


@pytest.mark.parametrize("case", [c for c in SAMPLE_CASES if c.signature_header], ids=lambda c: c.name)
def test_missing_signature_header(case: SampleCase):
    delivery = with_headers(sample_delivery(case), **{case.signature_header: None})
    assert refused(provider_for(case), delivery) == VerificationError.MISSING


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_headers_at_all(case):
    assert refused(case.provider(), case.delivery({})) == VerificationError.MISSING


def test_linear_signed_but_unparseable_body_is_malformed_not_a_crash():
    provider = PROVIDERS["linear"](["SECRET"])
    for body in (b"[" * 100_000, b'{"webhookTimestamp": Infinity}', b'{"webhookTimestamp": NaN}', b"\xff"):
        delivery = Delivery.of(body, provider.sign(body, timestamp=NOW))
        assert refused(provider, delivery) == VerificationError.MALFORMED


# -- fuzz: only VerificationError may escape ---------------------------------------------------------


def outcome(provider: Provider, delivery: Delivery) -> str:
    try:
        provider.verify(delivery, now=NOW)
    except VerificationError as exc:
        return exc.code
    return "accepted"


TOKENS = [
    "t=", "v1=", "v0=", "v1,", "v1a,", "v2,", "sha256=", "sha512=", "sha1=", ",", ";", " ", "  ", "=", "==",
    ":", ".", "-", "+", "/", "_", "\t", "\x00", "\x7f", "\u00e9", "\u6f22", "\U0001f389", "\ufeff", "\u00a0",
    "\u2028", "\u0663", "\uff11", "0", "9", str(NOW), "-1", "9" * 50, "9" * 5000, "1e9", "nan", "inf",
    HEX32, HEX32[:10], HEX20, b64(32), b64(20), b64(64), "zz", "%00", "\\x", "[", "]", "{", "}", '"',
]  # fmt: skip


def fuzz_value(rng: random.Random, valid: str) -> str:
    mode = rng.randrange(5)
    if mode == 0:
        return "".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 9)))
    if mode == 1:
        return "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(0, 90)))
    if mode == 2:
        points = [rng.choice([rng.randrange(0, 0xD800), rng.randrange(0xE000, 0x110000)]) for _ in range(30)]
        return "".join(map(chr, points))
    # Mutations of the valid value: the shapes closest to being accepted.
    chars = list(valid)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(chars) + 1)
        if op == 0:
            chars.insert(pos, rng.choice(TOKENS))
        elif op == 1 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op == 2 and chars:
            chars[min(pos, len(chars) - 1)] = chr(rng.randrange(0x20, 0x250))
        elif op == 3:
            chars = chars[:pos]
        else:
            chars = chars + chars[pos:]
    return "".join(chars)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fuzzed_headers_raise_only_verification_error(case):
    rng = random.Random(f"fuzz-{case.id}")
    provider = case.provider([case.secret, case.wrong_secret])
    valid = case.headers()
    seen = set()
    for _ in range(300):
        headers = dict(valid)
        for name in rng.sample(case.fuzzed_headers(), rng.randrange(1, len(case.fuzzed_headers()) + 1)):
            original = next((v for k, v in valid.items() if k.lower() == name.lower()), "")
            headers = with_header(headers, name, fuzz_value(rng, original))
        seen.add(outcome(provider, case.delivery(headers)))
    assert seen <= {"accepted", *VerificationError.CODES}
    assert VerificationError.MALFORMED in seen  # the fuzz reaches the parser's refusals


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fuzzed_bodies_and_content_types_raise_only_verification_error(case):
    rng = random.Random(f"bodies-{case.id}")
    provider = case.provider()
    for _ in range(100):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        headers = with_header(
            case.headers(),
            "Content-Type",
            rng.choice(
                ["application/x-www-form-urlencoded", "application/json", "", "text/plain; charset=latin-1"]
            ),
        )
        assert outcome(provider, case.delivery(headers, body=body)) in VerificationError.CODES


def test_twilio_fuzzed_urls_raise_only_verification_error():
    # Behind a trusted proxy the URL's host comes from X-Forwarded-Host, which the sender can set.
    case = next(c for c in CASES if c.id == "twilio")
    provider = case.provider()
    urls = [
        "https://mycompany.com:abc/twilio",
        "https://mycompany.com:99999/twilio",
        "https://[::1/twilio",
        "https://[::1]:8443/twilio?bodySHA256=zz",
        "https://user:pw@mycompany.com/twilio",
        "https://mycompany.com:/twilio",
        "mycompany.com/twilio",
        "://",
        "",
    ]
    rng = random.Random("twilio-urls")
    urls += [fuzz_value(rng, TWILIO_URL) for _ in range(300)]
    for url in urls:
        assert outcome(provider, case.delivery(case.headers(), url=url)) in VerificationError.CODES, url


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


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_fuzzed_signatures_raise_only_verification_error(case: SampleCase):
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


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_fuzzed_bodies_raise_only_verification_error(case: SampleCase):
    rng = random.Random(f"bodies-{case.name}")
    provider = provider_for(case)
    valid = sample_delivery(case)
    bodies = [b"", b"[" * 100_000, b"{" * 50_000, b"null", b"[]", b'"x"', b"\xff\xfe", b'{"signature": []}']
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))) for _ in range(60)]
    for body in bodies:
        for ctype in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data", ""):
            headers = {**dict(valid.headers.items()), "Content-Type": ctype}
            assert outcome(provider, Delivery.of(body, headers, url=SAMPLE_URL)) in {
                "accepted",
                *VerificationError.CODES,
            }


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_describe_and_handshake_tolerate_any_payload(case: SampleCase):
    provider = provider_for(case)
    delivery = sample_delivery(case)
    odd = [None, [], "x", 1, [1, "a", None], {"id": {"a": 1}}, {"type": "\u00b2", "id": "\u00b2"},
           {"event": "endpoint.url_validation"}, {"event_ts": "nan", "created_at": "\u00b2", "timestamp": "inf"},
           {"event-data": {"timestamp": "inf"}}, {"object_kind": None}]  # fmt: skip
    for payload in odd:
        assert isinstance(provider.describe(delivery, payload).event_type, str)
        provider.handshake(delivery, payload)

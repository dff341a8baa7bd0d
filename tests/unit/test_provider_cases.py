"""Each provider's verifier through the same cases, each refusal with its exact reason code.

valid, tampered body, wrong secret, rotation, stale timestamps (where the scheme has one),
malformed and missing headers, and a seeded fuzz proving that nothing but VerificationError
escapes for any header a sender can choose. Then describe(), handshakes and secret parsing.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from hookstream.errors import VerificationError
from hookstream.ingest.providers.base import Delivery, EventDescription, Provider, parse_payload
from hookstream.ingest.providers.github import GitHub
from hookstream.ingest.providers.hmac import GenericHmac
from hookstream.ingest.providers.shopify import Shopify
from hookstream.ingest.providers.slack import Slack
from hookstream.ingest.providers.standard import StandardWebhooks, Svix
from hookstream.ingest.providers.stripe import Stripe
from hookstream.ingest.providers.twilio import Twilio

NOW = 1_700_000_000
TWILIO_URL = "https://mycompany.com/twilio/sms?foo=1&bar=2"

HEX32 = "ab" * 32  # hex of a 32-byte digest, the right shape for HMAC-SHA256
HEX20 = "cd" * 20  # hex of a SHA-1-sized digest


def b64(size: int, fill: int = 7) -> str:
    return base64.b64encode(bytes([fill]) * size).decode()


JSON_BODY = json.dumps({"id": "evt_1", "type": "thing.happened", "note": "caf\u00e9 \u2603"}).encode()
FORM_BODY = urlencode(
    {"MessageSid": "SM1", "From": "+14158675309", "Body": "h\u00e9llo & bye", "Empty": ""}
).encode()


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


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_valid(case):
    assert case.provider().verify(case.signed(), now=NOW) == 0


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


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_wrong_secret(case):
    delivery = case.signed(secrets=[case.wrong_secret])
    assert refused(case.provider(), delivery) == VerificationError.MISMATCH


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rotation_second_secret_matches_index_1(case):
    if case.cls in (Stripe, StandardWebhooks, Svix):
        # These schemes carry one signature per active secret; sign as a sender using only the new one.
        delivery = case.signed(secrets=[case.secret])
    else:
        delivery = case.signed(secrets=[case.wrong_secret, case.secret], key_index=1)
    assert case.provider([case.wrong_secret, case.secret]).verify(delivery, now=NOW) == 1
    assert case.provider([case.secret, case.wrong_secret]).verify(delivery, now=NOW) == 0


def test_twilio_url_is_signed():
    case = next(c for c in CASES if c.id == "twilio")
    other = case.delivery(case.headers(), url=TWILIO_URL.replace("https:", "http:"))
    assert refused(case.provider(), other) == VerificationError.MISMATCH
    assert refused(case.provider(), case.delivery(case.headers(), url="")) == VerificationError.MISMATCH


def test_github_legacy_sha1_alone_is_missing_signature():
    case = next(c for c in CASES if c.id == "github")
    headers = {"X-Hub-Signature": "sha1=" + HEX20, "Content-Type": "application/json"}
    assert refused(case.provider(), case.delivery(headers)) == VerificationError.MISSING


def test_shopify_events_style_header():
    case = next(c for c in CASES if c.id == "shopify")
    value = case.headers()["X-Shopify-Hmac-Sha256"]
    assert case.provider().verify(case.delivery({"shopify-hmac-sha256": value}), now=NOW) == 0


# -- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TIMESTAMPED, ids=[c.id for c in TIMESTAMPED])
def test_timestamp_window(case):
    tolerance = case.cls.default_tolerance
    assert tolerance == 300
    p = case.provider()
    assert p.verify(case.signed(ts=NOW - tolerance), now=NOW) == 0
    assert p.verify(case.signed(ts=NOW + tolerance), now=NOW) == 0
    assert refused(p, case.signed(ts=NOW - tolerance - 1)) == VerificationError.STALE
    assert refused(p, case.signed(ts=NOW - 86_400 * 30)) == VerificationError.STALE
    if case.freshness == "past":
        # As in Stripe's SDK: only too-old timestamps are refused.
        assert p.verify(case.signed(ts=NOW + tolerance + 1), now=NOW) == 0
        assert p.verify(case.signed(ts=NOW + 86_400 * 30), now=NOW) == 0
    else:
        assert refused(p, case.signed(ts=NOW + tolerance + 1)) == VerificationError.STALE
        assert refused(p, case.signed(ts=NOW + 86_400 * 30)) == VerificationError.STALE


@pytest.mark.parametrize("case", TIMESTAMPED, ids=[c.id for c in TIMESTAMPED])
def test_custom_tolerance_and_zero_disables(case):
    narrow = case.provider(tolerance=10)
    assert narrow.verify(case.signed(ts=NOW - 10), now=NOW) == 0
    assert refused(narrow, case.signed(ts=NOW - 11)) == VerificationError.STALE
    off = case.provider(tolerance=0)
    assert off.verify(case.signed(ts=NOW - 10**7), now=NOW) == 0
    assert off.verify(case.signed(ts=NOW + 10**7), now=NOW) == 0


@pytest.mark.parametrize("case", TIMESTAMPED, ids=[c.id for c in TIMESTAMPED])
@pytest.mark.parametrize("ts", [10**400, -(10**400)], ids=["huge", "huge-negative"])
def test_absurd_signed_timestamp_is_judged_not_a_crash(case, ts):
    # Too large for a float: set against a float clock (as ingest's is) it must not raise OverflowError.
    now = NOW + 0.25
    if ts > 0 and case.freshness == "past":
        assert case.provider().verify(case.signed(ts=ts), now=now) == 0
    else:
        assert refused(case.provider(), case.signed(ts=ts), now=now) == VerificationError.STALE
    assert case.provider(tolerance=0).verify(case.signed(ts=ts), now=now) == 0


@pytest.mark.parametrize("case", TIMESTAMPED, ids=[c.id for c in TIMESTAMPED])
def test_stale_and_wrong_secret_reports_the_mismatch(case):
    # The signature is judged first: an unauthenticated request learns nothing about our clock.
    delivery = case.signed(ts=NOW - 10_000, secrets=[case.wrong_secret])
    assert refused(case.provider(), delivery) == VerificationError.MISMATCH


@pytest.mark.parametrize("case", TIMESTAMPED, ids=[c.id for c in TIMESTAMPED])
def test_timestamp_is_signed(case):
    headers = case.headers()
    if case.timestamp_header:
        headers = with_header(headers, case.timestamp_header, str(NOW + 1))
    else:
        headers = with_header(
            headers, case.signature_header, headers["Stripe-Signature"].replace(str(NOW), str(NOW + 1))
        )
    assert refused(case.provider(), case.delivery(headers)) == VerificationError.MISMATCH


@pytest.mark.parametrize("case", UNTIMESTAMPED, ids=[c.id for c in UNTIMESTAMPED])
def test_no_freshness_check_without_a_timestamp(case):
    assert case.cls.default_tolerance is None
    delivery = case.signed()
    for now in (0, NOW, NOW + 86_400 * 3650, None):
        assert case.provider().verify(delivery, now=now) == 0


# -- malformed and missing headers ----------------------------------------------------------------


MALFORMED = [(c, v) for c in CASES for v in c.malformed]


@pytest.mark.parametrize(("case", "value"), MALFORMED, ids=[f"{c.id}:{v[:24]}" for c, v in MALFORMED])
def test_malformed_signature_header(case, value):
    headers = with_header(case.headers(), case.signature_header, value)
    assert refused(case.provider(), case.delivery(headers)) == VerificationError.MALFORMED


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


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_headers_at_all(case):
    assert refused(case.provider(), case.delivery({})) == VerificationError.MISSING


# -- fuzz: only VerificationError may escape --------------------------------------------------------

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


def outcome(provider: Provider, delivery: Delivery) -> str:
    try:
        provider.verify(delivery, now=NOW)
    except VerificationError as exc:
        return exc.code
    return "accepted"


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


# -- Twilio's port quirk ------------------------------------------------------------------------------


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


# -- describe() on each provider's sample ---------------------------------------------------------------


def describe_sample(provider: Provider, event_type: str, **kwargs: Any) -> EventDescription:
    sample = provider.sample(event_type, now=NOW, **kwargs)
    delivery = Delivery.of(sample.body, sample.headers, url=kwargs.get("url", ""))
    assert provider.verify(delivery, now=NOW) == 0  # samples are signed as the provider would
    return provider.describe(delivery, parse_payload(delivery))


def test_describe_stripe():
    p = Stripe(["whsec_test_secret"])
    d = describe_sample(p, "payment_intent.succeeded", event_id="evt_1")
    assert d == EventDescription(
        "evt_1", "payment_intent.succeeded", "pi_3MtwBwLkdIwHu7ix28a3tqPa", NOW * 1000
    )
    d = describe_sample(p, "payment_intent.created", event_id="evt_2", resource_id="pi_other")
    assert (d.event_type, d.ordering_key) == ("payment_intent.created", "pi_other")


def test_describe_github():
    p = GitHub(["s"])
    d = describe_sample(p, "push", event_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert d == EventDescription("72d3162e-cc78-11e3-81ab-4c9367dc0958", "push", "octocat/Hello-World", None)
    d = describe_sample(p, "pull_request.opened", event_id="d-2", resource_id="acme/widgets")
    assert d == EventDescription("d-2", "pull_request.opened", "acme/widgets", None)
    # No repository (e.g. an organization event): the delivery id orders it.
    body = b'{"action": "member_added", "organization": {"login": "acme"}}'
    delivery = Delivery.of(body, {"X-GitHub-Event": "organization", "X-GitHub-Delivery": "d-3"})
    assert p.describe(delivery, json.loads(body)) == EventDescription(
        "d-3", "organization.member_added", "d-3"
    )


def test_describe_shopify():
    p = Shopify(["s"])
    d = describe_sample(p, "orders/create", event_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert d == EventDescription(
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "orders/create",
        "example.myshopify.com/820982911946154508",
        None,
    )
    d = describe_sample(p, "orders/updated", event_id="w-2", resource_id="450789469")
    assert (d.event_type, d.ordering_key) == ("orders/updated", "example.myshopify.com/450789469")


def test_describe_slack():
    p = Slack(["s"])
    d = describe_sample(p, "message", event_id="Ev08MFMKH6")
    assert d == EventDescription("Ev08MFMKH6", "message", "T123ABC456/C123ABC456", NOW * 1000)
    d = describe_sample(p, "reaction_added", event_id="Ev2", resource_id="C999")
    assert (d.event_type, d.ordering_key) == ("reaction_added", "T123ABC456/C999")


def test_describe_slack_slash_command_form():
    body = b"team_id=T1DC2JH3J&channel_id=G8PSS9T3V&command=%2Fwebhook-collect&trigger_id=398738663015.47"
    p = Slack(["s"])
    headers = p.sign(body, timestamp=NOW)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    delivery = Delivery.of(body, headers)
    assert p.verify(delivery, now=NOW) == 0
    d = p.describe(delivery, parse_payload(delivery))
    assert d == EventDescription("398738663015.47", "/webhook-collect", "T1DC2JH3J/G8PSS9T3V")


def test_describe_twilio():
    p = Twilio(["12345"])
    d = describe_sample(p, "message.received", url=TWILIO_URL, event_id="idem-1")
    assert d == EventDescription("idem-1", "message.received", "SM1f0e8ae6ade43cb3c0ce4525424e404f", None)
    d = describe_sample(p, "message.delivered", url=TWILIO_URL, event_id="idem-2", resource_id="SM123")
    assert d == EventDescription("idem-2", "message.delivered", "SM123", None)


@pytest.mark.parametrize(("cls", "prefix"), [(StandardWebhooks, "webhook"), (Svix, "svix")])
def test_describe_standard(cls, prefix):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sample = cls([secret]).sample("invoice.paid", now=NOW, event_id="msg_1")
    assert sample.headers[f"{prefix}-id"] == "msg_1"
    d = describe_sample(cls([secret]), "invoice.paid", event_id="msg_1")
    assert d == EventDescription("msg_1", "invoice.paid", "msg_1", None)
    pointed = cls([secret], options={"ordering_key_pointer": "/data/id"})
    d = describe_sample(pointed, "invoice.paid", event_id="msg_2", resource_id="inv_9")
    assert d == EventDescription("msg_2", "invoice.paid", "inv_9", None)
    # A pointer that resolves to nothing falls back to the message id.
    missing = cls([secret], options={"ordering_key_pointer": "/data/customer"})
    assert describe_sample(missing, "invoice.paid", event_id="msg_3").ordering_key == "msg_3"


def test_describe_hmac():
    d = describe_sample(GenericHmac(["s"]), "example.created", event_id="evt_h")
    assert d == EventDescription("evt_h", "example.created", "evt_h", None)
    pointed = GenericHmac(["s"], options={"ordering_key_pointer": "/data/id"})
    d = describe_sample(pointed, "example.created", event_id="evt_h2", resource_id="obj_7")
    assert d == EventDescription("evt_h2", "example.created", "obj_7", None)


# -- handshakes -----------------------------------------------------------------------------------------


def test_slack_url_verification_returns_the_challenge():
    body = json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    p = Slack(["s"])
    delivery = Delivery.of(body, p.sign(body, timestamp=NOW))
    assert p.verify(delivery, now=NOW) == 0
    handshake = p.handshake(delivery, parse_payload(delivery))
    assert handshake is not None
    assert handshake.body == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert (handshake.status, handshake.publish) == (200, False)
    # An ordinary event is no handshake.
    sample = p.sample("message", now=NOW)
    ordinary = Delivery.of(sample.body, sample.headers)
    assert p.handshake(ordinary, parse_payload(ordinary)) is None


# -- secrets ----------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_secrets_or_an_empty_secret_raises(case):
    with pytest.raises(ValueError):
        case.cls([], options=case.options)
    with pytest.raises(ValueError):
        case.cls([case.secret, ""], options=case.options)


@pytest.mark.parametrize(
    "options", [{"algorithm": "md5"}, {"encoding": "base32"}], ids=["algorithm", "encoding"]
)
def test_hmac_invalid_options_raise(options):
    with pytest.raises(ValueError):
        GenericHmac(["s"], options=options)

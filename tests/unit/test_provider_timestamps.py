"""The replay window, for every scheme with a timestamp: its edges in both directions (Stripe and
Paddle refuse only the past, as their SDKs do), a custom tolerance, 0 turning the check off,
absurd values, the signature judged before the clock, the timestamp covered by the signature; and
no freshness check at all where the scheme has no timestamp.
"""

from __future__ import annotations

import pytest

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery
from tests.provider_cases import (
    NOW,
    SAMPLE_CASES,
    TIMESTAMPED,
    UNTIMESTAMPED,
    SampleCase,
    provider_for,
    refused,
    sample_delivery,
    with_header,
)


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


@pytest.mark.parametrize("case", [c for c in SAMPLE_CASES if c.stale_tolerance], ids=lambda c: c.name)
def test_stale_and_too_new(case: SampleCase):
    provider = provider_for(case, tolerance=case.stale_tolerance)
    delivery = sample_delivery(case)
    tol = case.stale_tolerance or 0
    assert provider.verify(delivery, now=NOW + tol) == 0
    assert refused(provider, delivery, now=NOW + tol + 1) == VerificationError.STALE
    if case.future_refused:
        assert refused(provider, delivery, now=NOW - tol - 1) == VerificationError.STALE
    else:
        assert provider.verify(delivery, now=NOW - 3600) == 0
    # tolerance_seconds = 0 turns the check off
    assert provider_for(case, tolerance=0).verify(delivery, now=NOW + 10 * 365 * 86400) == 0


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


def test_linear_needs_the_signed_timestamp():
    provider = PROVIDERS["linear"](["SECRET"])
    body = b'{"action":"create","type":"Issue"}'
    headers = provider.sign(body, timestamp=NOW)
    assert refused(provider, Delivery.of(body, headers)) == VerificationError.MALFORMED
    # The unsigned Linear-Timestamp header is not trusted for freshness.
    headers["Linear-Timestamp"] = str(NOW * 1000)
    assert refused(provider, Delivery.of(body, headers)) == VerificationError.MALFORMED
    assert PROVIDERS["linear"](["SECRET"], tolerance=0).verify(Delivery.of(body, headers)) == 0


@pytest.mark.parametrize("case", UNTIMESTAMPED, ids=[c.id for c in UNTIMESTAMPED])
def test_no_freshness_check_without_a_timestamp(case):
    assert case.cls.default_tolerance is None
    delivery = case.signed()
    for now in (0, NOW, NOW + 86_400 * 3650, None):
        assert case.provider().verify(delivery, now=now) == 0

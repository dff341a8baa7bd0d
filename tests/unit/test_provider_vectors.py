"""Every shared signature vector through our verifiers: valid ones verify, invalid ones are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookstream.errors import VerificationError
from hookstream.ingest.providers import PROVIDERS, Delivery

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


# Providers with no vector in the shared file (PROVIDERS.md lists computed ones the file does not
# carry yet); their own vectors, computed from the documented algorithm, are in
# test_providers_breadth.py. Drop a name here once signatures.json covers it.
VECTORS_ELSEWHERE = {"discord", "gitlab", "intercom", "linear", "mailgun", "typeform", "zoom"}


def test_every_provider_has_vectors_or_is_generic():
    covered = {provider_name(v) for v in VECTORS}
    missing = set(PROVIDERS) - covered - {"stripe", "hmac"} - VECTORS_ELSEWHERE
    assert not missing, f"providers without shared vectors: {missing}"


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

"""describe(): the event id, event type, ordering key and created-at each provider's delivery yields,
with their fallbacks and the ``ordering_key_pointer`` option; and every sample is realistic JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookstream.ingest.providers import PROVIDERS, Delivery, EventDescription, Provider
from hookstream.ingest.providers.base import parse_payload
from hookstream.ingest.providers.github import GitHub
from hookstream.ingest.providers.hmac import GenericHmac
from hookstream.ingest.providers.shopify import Shopify
from hookstream.ingest.providers.slack import Slack
from hookstream.ingest.providers.standard import StandardWebhooks, Svix
from hookstream.ingest.providers.stripe import Stripe
from hookstream.ingest.providers.twilio import Twilio
from tests.provider_cases import (
    NOW,
    SAMPLE_CASES,
    SAMPLE_IDS,
    SENDGRID_PRIVATE,
    TWILIO_URL,
    SampleCase,
    provider_for,
    sample_delivery,
    spki_b64,
)


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


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_describe_sample(case: SampleCase):
    provider = provider_for(case)
    delivery = sample_delivery(case)
    got = provider.describe(delivery, parse_payload(delivery))
    event_id, event_type, ordering_key = case.expect
    assert got.event_id == event_id if event_id is not None else got.event_id
    assert (got.event_type, got.ordering_key) == (event_type, ordering_key)


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=SAMPLE_IDS)
def test_sample_is_realistic_json(case: SampleCase):
    delivery = sample_delivery(case)
    payload = json.loads(delivery.body)
    assert payload
    assert "json" in delivery.content_type


def test_mailgun_event_id_falls_back_to_token():
    provider = PROVIDERS["mailgun"](["mailgun-signing-key"])
    body = provider.sign_body(b'{"event-data":{"event":"opened"}}', timestamp=NOW, token="tok-1")
    delivery = Delivery.of(body, {"Content-Type": "application/json"})
    assert provider.verify(delivery, now=NOW) == 0
    assert provider.describe(delivery, parse_payload(delivery)).event_id == "tok-1"


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

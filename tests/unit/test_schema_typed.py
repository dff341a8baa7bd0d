"""Typed views: schema-checked, unknown fields tolerated, missing required fields named."""

from __future__ import annotations

import json
import time

import pytest
from fastavro.validation import validate

from hookstream.ingest.providers import provider_class
from hookstream.schemas.typed_events import (
    TYPED_VIEWS,
    TypedEventError,
    TypedRecord,
    decode_typed,
    load_typed_schema,
    typed_view,
)


def sample(provider: str, event_type: str) -> dict:
    signer = provider_class(provider)(["whsec_dGVzdA==" if provider == "stripe" else "secret"])
    return json.loads(signer.sample(event_type, now=int(time.time()), resource_id="").body)


@pytest.mark.parametrize(
    ("provider", "event_type", "schema"),
    [
        ("stripe", "payment_intent.succeeded", "stripe_payment_intent"),
        ("stripe", "payment_intent.payment_failed", "stripe_payment_intent"),
        ("stripe", "customer.subscription.updated", "stripe_subscription"),
        ("github", "push", "github_push"),
        ("github", "pull_request.opened", "github_pull_request"),
        ("github", "pull_request", "github_pull_request"),
        ("shopify", "orders/create", "shopify_order"),
        ("shopify", "orders/paid", "shopify_order"),
        ("shopify", "orders/delete", "shopify_order_deleted"),
    ],
)
def test_views_cover_the_promised_events(provider, event_type, schema):
    assert typed_view(provider, event_type).schema_name == schema


def test_events_without_a_view_have_no_typed_form():
    assert typed_view("stripe", "charge.succeeded") is None
    assert typed_view("github", "issues.opened") is None
    assert decode_typed("slack", "message", {"x": 1}) is None


def test_every_schema_parses():
    for view in TYPED_VIEWS:
        assert load_typed_schema(view.schema_name)["type"] == "record"


@pytest.mark.parametrize(
    ("provider", "event_type"),
    [("stripe", "payment_intent.succeeded"), ("github", "push"), ("shopify", "orders/create")],
)
def test_what_the_providers_send_decodes_and_is_a_valid_datum(provider, event_type):
    payload = sample(provider, event_type)
    typed = decode_typed(provider, event_type, payload)
    assert isinstance(typed, TypedRecord)
    assert validate(typed.to_dict(), load_typed_schema(typed_view(provider, event_type).schema_name))


def test_a_payment_intent_reads_like_the_payload_with_defaults_filled_in():
    payload = sample("stripe", "payment_intent.succeeded")
    payload["data"]["object"]["brand_new_field"] = {"deep": [1, 2]}  # unknown: ignored
    payload["data"]["object"].pop("metadata")
    typed = decode_typed("stripe", "payment_intent.succeeded", payload)
    intent = typed.data.object
    assert (intent.amount, intent.currency, intent.customer, intent.status) == (
        2000,
        "usd",
        "cus_NffrFeUfNV2Hib",
        "succeeded",
    )
    assert intent.metadata == {} and intent.description is None
    assert typed["data"]["object"]["amount"] == 2000 and "amount" in intent
    assert "brand_new_field" not in intent
    with pytest.raises(AttributeError, match="StripePaymentIntent has no field 'brand_new_field'"):
        intent.brand_new_field  # noqa: B018
    with pytest.raises(AttributeError, match="read-only"):
        intent.amount = 1


def test_a_subscription_with_a_field_named_items_is_reachable_by_attribute():
    payload = {
        "id": "evt_1",
        "type": "customer.subscription.updated",
        "created": 1700000000,
        "data": {
            "object": {
                "id": "sub_1",
                "customer": "cus_1",
                "status": "active",
                "items": {
                    "object": "list",
                    "data": [{"id": "si_1", "quantity": 2, "price": {"id": "price_1", "unit_amount": 900}}],
                },
            }
        },
    }
    sub = decode_typed("stripe", "customer.subscription.updated", payload).data.object
    assert sub.items.data[0].price.unit_amount == 900 and sub.items.data[0].quantity == 2
    assert sub.cancel_at_period_end is False and sub.current_period_end is None


def test_a_pull_request_decodes_with_shared_named_types():
    payload = {
        "action": "opened",
        "number": 7,
        "pull_request": {
            "id": 1,
            "number": 7,
            "title": "Fix",
            "state": "open",
            "user": {"login": "octocat", "id": 1},
            "head": {"ref": "fix", "sha": "abc"},
            "base": {"ref": "main", "sha": "def"},
        },
        "repository": {"id": 9, "full_name": "acme/api"},
        "sender": {"login": "octocat", "id": 1},
    }
    pr = decode_typed("github", "pull_request.opened", payload)
    assert (
        pr.pull_request.base.ref == "main" and pr.sender.login == "octocat" and pr.pull_request.merged is None
    )


@pytest.mark.parametrize(
    ("provider", "event_type", "mutate", "message"),
    [
        (
            "stripe",
            "payment_intent.succeeded",
            lambda p: p["data"]["object"].pop("amount"),
            "stripe payment_intent: missing required field data.object.amount",
        ),
        (
            "stripe",
            "payment_intent.succeeded",
            lambda p: p.pop("data"),
            "stripe payment_intent: missing required field data",
        ),
        (
            "stripe",
            "payment_intent.succeeded",
            lambda p: p["data"]["object"].update(amount=None),
            "stripe payment_intent: field data.object.amount is null but required",
        ),
        (
            "stripe",
            "payment_intent.succeeded",
            lambda p: p["data"]["object"].update(amount=True),
            "stripe payment_intent: field data.object.amount must be an integer, got bool true",
        ),
        (
            "stripe",
            "payment_intent.succeeded",
            lambda p: p["data"].update(object=[]),
            "stripe payment_intent: field data.object must be an object, got list []",
        ),
        (
            "github",
            "push",
            lambda p: p["repository"].pop("full_name"),
            "github push: missing required field repository.full_name",
        ),
        (
            "github",
            "push",
            lambda p: p.update(commits=[{"id": "a"}]),
            "github push: missing required field commits[0].message",
        ),
        (
            "shopify",
            "orders/create",
            lambda p: p["line_items"][0].update(quantity="1"),
            'shopify orders: field line_items[0].quantity must be an integer, got str "1"',
        ),
        (
            "shopify",
            "orders/create",
            lambda p: p.pop("total_price"),
            "shopify orders: missing required field total_price",
        ),
    ],
)
def test_a_payload_that_does_not_fit_names_the_view_and_the_field(provider, event_type, mutate, message):
    payload = sample(provider, event_type)
    mutate(payload)
    with pytest.raises(TypedEventError) as exc:
        decode_typed(provider, event_type, payload)
    assert str(exc.value) == message


def test_a_payload_that_is_not_an_object_is_refused_clearly():
    with pytest.raises(TypedEventError, match=r"field \(payload\) must be an object, got list"):
        decode_typed("github", "push", [1, 2])

"""Event patterns: SOURCE:TYPE with * wildcards, "*" for everything."""

from __future__ import annotations

import pytest

from hookstream.config import parse_config
from hookstream.consumers.patterns import EventFilter, PatternError, check_consumer_name, parse_pattern
from hookstream.errors import ConfigError
from hookstream.stage_rules import stage_rules


@pytest.mark.parametrize(
    ("pattern", "source", "event_type", "expected"),
    [
        ("*", "stripe", "payment_intent.succeeded", True),
        ("stripe:payment_intent.succeeded", "stripe", "payment_intent.succeeded", True),
        ("stripe:payment_intent.succeeded", "stripe", "payment_intent.created", False),
        ("stripe:payment_intent.*", "stripe", "payment_intent.payment_failed", True),
        ("stripe:payment_intent.*", "stripe", "payment_intent", False),
        ("stripe:payment_intent.*", "stripe-eu", "payment_intent.succeeded", False),
        ("stripe:customer.*", "stripe", "customer.subscription.updated", True),
        ("shopify:orders/*", "shopify", "orders/create", True),
        ("shopify:orders/*", "shopify", "products/create", False),
        ("*:push", "github", "push", True),
        ("*:push", "gitlab", "push.hook", False),
        ("git*:*", "github", "pull_request.opened", True),
        ("github:*.opened", "github", "pull_request.opened", True),
        ("stripe:invoice.paid", "stripe", "invoice_paid", False),  # '.' is literal, not a regex dot
        ("a+b:(x)", "a+b", "(x)", True),
    ],
)
def test_patterns_match_source_and_type_with_wildcards(pattern, source, event_type, expected):
    assert parse_pattern(pattern).matches(source, event_type) is expected


@pytest.mark.parametrize("bad", ["stripe", ":push", "stripe:", "", "  "])
def test_a_pattern_without_both_sides_says_how_to_write_one(bad):
    with pytest.raises(PatternError, match=r"write SOURCE:TYPE"):
        parse_pattern(bad)


def test_a_filter_matches_when_any_pattern_does():
    wanted = EventFilter.of(["stripe:payment_intent.*", "github:push"])
    assert wanted.matches("github", "push")
    assert wanted.matches("stripe", "payment_intent.canceled")
    assert not wanted.matches("github", "pull_request.opened")
    with pytest.raises(PatternError, match="no event patterns"):
        EventFilter.of([])


def test_consumer_names_must_fit_kafka_topic_names():
    check_consumer_name("fulfil-orders_v2.eu")
    with pytest.raises(ValueError, match="may only use letters"):
        check_consumer_name("fulfil orders")


def test_the_config_checks_patterns_and_names_with_file_and_key():
    with pytest.raises(
        ConfigError, match=r"<config>: consumers.audit.events\[1\]: 'stripe' is not an event pattern"
    ):
        parse_config({"consumers": {"audit": {"events": ["*", "stripe"]}}}, rules=stage_rules())
    with pytest.raises(ConfigError, match=r"consumers.bad name: consumer name 'bad name' may only use"):
        parse_config({"consumers": {"bad name": {}}}, rules=stage_rules())
    config = parse_config(
        {"consumers": {"audit": {"typed": True, "drain_timeout_seconds": 5, "action": "jsonl", "path": "x"}}}
    )
    audit = config.consumers["audit"]
    assert (audit.typed, audit.drain_timeout_seconds, audit.options) == (True, 5.0, {"path": "x"})
    with pytest.raises(ConfigError, match="drain_timeout_seconds: must be greater than 0"):
        parse_config({"consumers": {"audit": {"drain_timeout_seconds": 0}}})
    with pytest.raises(ConfigError, match="typed: expected true or false"):
        parse_config({"consumers": {"audit": {"typed": "yes"}}})

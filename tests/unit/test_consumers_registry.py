"""Where consumers come from: the config or @consumer, each name once, unknown names explained."""

from __future__ import annotations

import sys
import uuid

import pytest

from hookstream.config import parse_config
from hookstream.consumers import ConsumerError, Consumers, UnknownConsumer, resolve_consumers
from hookstream.consumers.actions import FunctionAction, JsonlAction

CONFIG = {"consumers": {"audit": {"action": "jsonl", "path": "events.jsonl"}, "quiet": {"action": "log"}}}


def test_config_and_python_consumers_resolve_to_specs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = Consumers()

    @registry.consumer("fulfil-orders", events=["stripe:payment_intent.succeeded"], concurrency=2)
    async def fulfil(event):
        pass

    config = parse_config(CONFIG, path=tmp_path / "etc" / "hookstream.toml", base_dir=tmp_path / "etc")
    audit, orders = resolve_consumers(config, ["audit", "fulfil-orders", "audit"], consumers=registry)
    assert audit.name == "audit" and audit.origin.startswith("config ")
    action = audit.make_action()
    # Data paths are relative to the working directory, not to the (maybe read-only) config folder.
    assert isinstance(action, JsonlAction) and action.path == tmp_path / "events.jsonl"
    assert orders.settings.concurrency == 2 and orders.settings.typed
    assert orders.filter.matches("stripe", "payment_intent.succeeded")
    assert not orders.filter.matches("stripe", "payment_intent.created")
    assert isinstance(orders.make_action(), FunctionAction)
    assert orders.settings.action.endswith(
        ":test_config_and_python_consumers_resolve_to_specs.<locals>.fulfil"
    )


def test_an_unknown_name_is_one_line_naming_the_known_ones():
    registry = Consumers()
    registry.consumer("declared")(lambda event: None)
    with pytest.raises(UnknownConsumer) as exc:
        resolve_consumers(parse_config(CONFIG), ["audti"], consumers=registry)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("no consumer named 'audti' in <config> (known: audit, declared, quiet)")
    assert "[consumers.audti]" in message and "--module" in message


def test_a_name_declared_in_both_places_is_refused():
    registry = Consumers()
    registry.consumer("audit")(lambda event: None)
    with pytest.raises(
        ConsumerError, match=r"'audit' is declared both in <config> \(\[consumers.audit\]\) and in"
    ):
        resolve_consumers(parse_config(CONFIG), ["audit"], consumers=registry)


def test_modules_are_imported_to_find_declarations(tmp_path, monkeypatch):
    from hookstream.consumers import registry

    name = f"handlers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from hookstream.consumers import consumer\n\n"
        '@consumer("from-module", events=["github:push"])\n'
        "async def on_push(event):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        [spec] = resolve_consumers(parse_config({}), ["from-module"], modules=[name])
        assert spec.settings.events == ("github:push",) and spec.origin == f"module {name}"
    finally:
        registry.clear()
        sys.modules.pop(name, None)
    with pytest.raises(ConsumerError, match="--module no_such_module_xyz: cannot import it"):
        resolve_consumers(parse_config({}), ["x"], modules=["no_such_module_xyz"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": ["stripe"]}, "is not an event pattern"),
        ({"start": "beginning"}, 'start must be "earliest" or "latest"'),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
    ],
)
def test_the_decorator_checks_its_arguments(kwargs, message):
    with pytest.raises(ConsumerError, match=message):
        Consumers().consumer("x", **kwargs)
    with pytest.raises(ConsumerError, match="may only use letters"):
        Consumers().consumer("x y")


def test_consumer_protections_are_checked_when_declared():
    consumers = Consumers()
    with pytest.raises(ConsumerError, match=r"@consumer\('x'\): filter.body.type: unknown operator '\$like'"):
        consumers.consumer("x", filter={"body": {"type": {"$like": "a"}}})
    with pytest.raises(ConsumerError, match=r"@consumer\('x'\): rate_limit: '9' is not a rate limit"):
        consumers.consumer("x", rate_limit="9")
    with pytest.raises(ConsumerError, match=r"@consumer\('x'\): breaker.failures: must be at least 1"):
        consumers.consumer("x", breaker={"failures": 0})
    with pytest.raises(ConsumerError, match=r"@consumer\('x'\): transform: cannot import nowhere_at_all"):
        consumers.consumer("x", transform="nowhere_at_all:f")


def test_consumer_protections_reach_the_spec():
    consumers = Consumers()

    def shrink(event):
        return None

    @consumers.consumer("x", filter={"source": "stripe"}, rate_limit="10/s", breaker=True, transform=shrink)
    async def handle(event):
        pass

    [spec] = resolve_consumers(parse_config({}), ["x"], consumers=consumers)
    assert spec.transform is shrink and spec.payload_filter.matches({"source": "stripe"})
    assert spec.settings.rate_limit == "10/s" and spec.settings.breaker.failures == 5

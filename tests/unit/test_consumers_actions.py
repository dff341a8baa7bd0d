"""Built-in actions: idempotent on redelivery, deliberately not on replay; option checking."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from hookstream.config import ConsumerConfig
from hookstream.consumers.actions import (
    ActionSetup,
    HttpAction,
    JsonlAction,
    SqliteAction,
    TransientHTTPError,
    build_action,
)
from hookstream.consumers.errors import PermanentError
from hookstream.consumers.events import Event
from hookstream.errors import ConfigError
from hookstream.sample_events import make_raw_event
from hookstream.schemas.typed_events import decode_typed
from tests.payloads import stripe_payment_intent

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def setup_for(action: str, base_dir: Path | None = None, **options) -> ActionSetup:
    consumer = ConsumerConfig(name="audit", action=action, options=options)
    return ActionSetup(consumer=consumer, where="hookstream.toml: consumers.audit", base_dir=base_dir)


def event(n: int = 1, *, replay: bool = False, typed: bool = False) -> Event:
    payload = stripe_payment_intent(f"evt_{n}", "pi_1", amount=100 * n)
    raw = make_raw_event(payload, event_id=f"evt_{n}", ordering_key="pi_1")
    view = decode_typed("stripe", raw.event_type, payload) if typed else None
    return Event(
        raw=raw,
        payload=payload,
        typed=view,
        consumer="audit",
        topic="t",
        partition=0,
        offset=n,
        replay=replay,
    )


async def test_jsonl_writes_each_event_once_even_across_restarts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths are relative to the working directory
    path = tmp_path / "out" / "events.jsonl"
    action = build_action(setup_for("jsonl", tmp_path / "config-dir", path="out/events.jsonl"))
    assert isinstance(action, JsonlAction) and action.path == path
    await action.open()
    await action(event(1))
    await action(event(2, typed=True))
    await action(event(1))  # a redelivery
    await action.close()

    again = JsonlAction(setup_for("jsonl"), str(path))
    await again.open()  # rebuilds the written ids from the file
    await again(event(2))
    await again(event(3))
    await again(event(2, replay=True))  # replay bypasses idempotency on purpose
    await again.close()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["event_id"], line["replay"]) for line in lines] == [
        ("evt_1", False),
        ("evt_2", False),
        ("evt_3", False),
        ("evt_2", True),
    ]
    first = lines[0]
    for key in ("event_id", "source", "provider", "event_type", "ordering_key", "received_at", "payload"):
        assert key in first
    assert first["payload"]["data"]["object"]["amount"] == 100 and first["source"] == "stripe"
    assert lines[1]["typed"]["data"]["object"]["amount"] == 200 and "typed" not in first


async def test_jsonl_drops_a_line_cut_short_by_a_crash(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event_id": "evt_1"}\n{"event_id": "evt_2", "payl')
    action = JsonlAction(setup_for("jsonl"), str(path))
    await action.open()
    await action(event(1))  # already there: skipped
    await action(event(2))  # its line was never finished: written now
    await action.close()
    assert [json.loads(line)["event_id"] for line in path.read_text().splitlines()] == ["evt_1", "evt_2"]


async def test_jsonl_lines_written_concurrently_share_fsyncs_and_all_land(tmp_path):
    import asyncio

    action = JsonlAction(setup_for("jsonl"), str(tmp_path / "e.jsonl"))
    await action.open()
    await asyncio.gather(*(action(event(n)) for n in range(200)))
    await action.close()
    ids = [json.loads(line)["event_id"] for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(f"evt_{n}" for n in range(200))


async def test_sqlite_upserts_by_event_id(tmp_path):
    action = build_action(setup_for("sqlite", path=str(tmp_path / "state.db"), table="events"))
    assert isinstance(action, SqliteAction)
    await action.open()
    for e in (event(1), event(2), event(1), event(1, replay=True)):
        await action(e)
    await action.close()
    rows = (
        sqlite3.connect(tmp_path / "state.db")
        .execute(
            "SELECT event_id, event_type, json_extract(payload, '$.data.object.amount'), body FROM events ORDER BY event_id"
        )
        .fetchall()
    )
    assert [r[:3] for r in rows] == [
        ("evt_1", "payment_intent.succeeded", 100),
        ("evt_2", "payment_intent.succeeded", 200),
    ]
    assert rows[0][3] == event(1).body


def http_action(handler, **options) -> HttpAction:
    action = build_action(setup_for("http", url="https://internal.example/hooks", secret=SECRET, **options))
    assert isinstance(action, HttpAction)
    action._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return action


async def test_http_forwards_the_raw_body_signed_with_standard_webhooks():
    received = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    action = http_action(handler)
    e = event(7)
    await action(e)
    [request] = received
    assert request.content == e.body and request.url == "https://internal.example/hooks"
    assert request.headers["webhook-id"] == "evt_7"
    assert request.headers["hookstream-event-type"] == "payment_intent.succeeded"
    # The official library verifies it, with the same secret.
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == e.payload


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientHTTPError),
        (503, TransientHTTPError),
        (408, TransientHTTPError),
        (429, TransientHTTPError),
        (400, PermanentError),
        (404, PermanentError),
        (410, PermanentError),
        (301, PermanentError),
    ],
)
async def test_http_retries_5xx_408_429_and_dead_letters_other_statuses(status, error):
    action = http_action(lambda request: httpx.Response(status, text="nope"))
    with pytest.raises(error, match=f"answered {status}"):
        await action(event())


async def test_http_timeouts_and_connection_errors_are_retried():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientHTTPError, match="timed out"):
        await http_action(timeout)(event())
    with pytest.raises(TransientHTTPError, match="refused"):
        await http_action(refused)(event())


def test_http_secrets_come_from_the_environment_or_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FORWARD_SECRET", SECRET)
    build_action(setup_for("http", url="http://x/", secret="env:FORWARD_SECRET"))
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    build_action(setup_for("http", tmp_path, url="http://x/", secret="file:secret.txt"))
    with pytest.raises(ConfigError, match="consumers.audit.secret: environment variable NOPE is not set"):
        build_action(setup_for("http", url="http://x/", secret="env:NOPE"))
    with pytest.raises(ConfigError, match="consumers.audit.secret: is not a Standard Webhooks secret"):
        build_action(setup_for("http", url="http://x/", secret="whsec_!!!"))


@pytest.mark.parametrize(
    ("action", "options", "message"),
    [
        ("jsonl", {}, r"consumers.audit.path: the jsonl action needs path = \.\.\."),
        (
            "jsonl",
            {"path": "x", "pth": "y"},
            r"consumers.audit.pth: unknown option for the jsonl action \(its options: path\)",
        ),
        ("jsonl", {"path": 3}, r"consumers.audit.path: expected a string, got 3"),
        (
            "sqlite",
            {"path": "x", "table": "drop table"},
            r"consumers.audit.table: 'drop table' is not a table name",
        ),
        ("http", {"url": "ftp://x", "secret": SECRET}, r"consumers.audit.url: must start with http"),
        (
            "kafka",
            {},
            r"consumers.audit.action: unknown action 'kafka'; one of http, jsonl, log, postgres, sqlite",
        ),
        ("nosuchmodule_xyz:handle", {}, r"consumers.audit.action: cannot import nosuchmodule_xyz"),
        ("json:nothing_here", {}, r"consumers.audit.action: json has no attribute 'nothing_here'"),
        (
            "json:dumps",
            {"path": "x"},
            r"consumers.audit.path: unknown key; a 'json:dumps' action takes no options",
        ),
    ],
)
def test_action_options_are_checked_with_file_key_and_fix(action, options, message):
    with pytest.raises(ConfigError, match=message):
        build_action(setup_for(action, **options))


async def test_a_module_function_action_calls_sync_and_async_functions():
    from hookstream.consumers.actions import FunctionAction

    seen = []

    async def async_handler(e):
        seen.append(("async", e.id))

    action = FunctionAction(async_handler, "x")
    await action(event(1))
    await FunctionAction(lambda e: seen.append(("sync", e.id)), "y")(event(2))
    assert seen == [("async", "evt_1"), ("sync", "evt_2")]
    assert replace(event(1), attempt=2).attempt == 2


def test_retry_after_is_read_as_seconds_or_an_http_date():
    from hookstream.consumers.actions import retry_after_seconds

    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now=1767225600) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:00 GMT", now=1767225660) == 0  # in the past
    assert retry_after_seconds("999999") == 3600  # an hour at most
    for unreadable in (None, "", "soon", "-5", "Thu, 01 Jan 2026 00:00:00"):
        assert retry_after_seconds(unreadable) is None

"""The console's JSON answers against a real broker: the Events list (filters, scan counts,
cursors), an event's detail, the Consumers page with lag and dead letters, the actions (CSRF,
logged), and the live tail's SSE stream."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from hookstream.console.auth import COOKIE
from hookstream.sample_events import make_raw_event, produce_raw
from tests.integration import console_handlers
from tests.integration.console_support import console_config, running_console
from tests.integration.support import create_topic, produce_events, running_consumers, wait_until

pytestmark = pytest.mark.kafka
JSON = {"accept": "application/json"}
TOKEN = "console-test-token-" + uuid.uuid4().hex


async def events_in_raw(bootstrap: str, config, events) -> None:
    await create_topic(bootstrap, config.kafka.raw_topic, 3)
    await produce_raw(bootstrap, config.kafka.raw_topic, [(e, None) for e in events])


async def test_events_newest_first_filtered_paged_and_detailed(kafka_bootstrap):
    config = console_config(kafka_bootstrap, console={"page_size": 20})
    events = [
        make_raw_event({"id": f"evt_{i}", "amount": i}, event_id=f"evt_{i}", ordering_key=f"pi_{i % 7}")
        for i in range(45)
    ]
    events.append(
        make_raw_event(
            {"id": "evt_gh"},
            event_id="evt_gh",
            source="github",
            event_type="push",
            ordering_key="acme/api",
            headers={"x-hub-signature-256": "sha256=deadbeef", "x-trace": "needle-in-a-header"},
        )
    )
    events.append(make_raw_event(None, event_id="evt_bin", body=b"\xff\xfe\x00raw"))
    await events_in_raw(kafka_bootstrap, config, events)
    async with running_console(config) as url, httpx.AsyncClient(base_url=url, headers=JSON) as client:
        first = (await client.get("/events")).json()
        assert len(first["events"]) == 20 and first["total"] == 47 and first["scanned"] <= 47
        stamps = [(e["timestamp_ms"]) for e in first["events"]]
        assert stamps == sorted(stamps, reverse=True)
        seen = [e["event_id"] for e in first["events"]]
        cursor = first["next"]
        while cursor:
            page = (await client.get("/events", params={"before": cursor})).json()
            seen += [e["event_id"] for e in page["events"]]
            cursor = page["next"]
        assert sorted(seen) == sorted(e.event_id for e in events)  # every event once, none twice

        async def ids(**params) -> list[str]:
            answer = await client.get("/events", params=params)
            assert answer.status_code == 200, answer.text
            return sorted(e["event_id"] for e in answer.json()["events"])

        assert await ids(source="github") == ["evt_gh"]
        assert await ids(type="push*") == ["evt_gh"]
        assert await ids(event_id="evt_7") == ["evt_7"]
        assert await ids(ordering_key="pi_3") == sorted(f"evt_{i}" for i in range(45) if i % 7 == 3)
        assert await ids(q="needle-in-a") == ["evt_gh"]  # header values are searched
        assert await ids(q='"amount": 44') == ["evt_44"]  # and bodies
        assert await ids(since="2999-01-01T00:00") == []

        bad = await client.get("/events", params={"since": "yesterday"})
        assert (
            bad.status_code == 400 and bad.json()["error"] == "bad_query" and "since" in bad.json()["detail"]
        )
        assert (await client.get("/events", params={"before": "x"})).status_code == 400

        [gh] = (await client.get("/events", params={"event_id": "evt_gh"})).json()["events"]
        detail = (await client.get(f"/events/{gh['partition']}/{gh['offset']}")).json()
        assert detail["kafka"]["partition"] == gh["partition"] and detail["kafka"]["key"] == "evt_gh"
        headers = {h["name"]: h["value"] for h in detail["headers"]}
        assert "deadbeef" not in headers["x-hub-signature-256"] and headers["x-trace"] == "needle-in-a-header"
        assert detail["body"]["text"] == '{"id": "evt_gh"}' and '"id": "evt_gh"' in detail["body"]["json"]

        [binary] = (await client.get("/events", params={"event_id": "evt_bin"})).json()["events"]
        detail = (await client.get(f"/events/{binary['partition']}/{binary['offset']}")).json()
        assert detail["body"]["hex"] == "ff fe 00 72 61 77" and "text" not in detail["body"]
        raw = await client.get(f"/events/{binary['partition']}/{binary['offset']}/raw")
        assert raw.content == b"\xff\xfe\x00raw"  # byte-exact

        missing = await client.get("/events/0/100000")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        html = await client.get(f"/events/{gh['partition']}/{gh['offset']}", headers={"accept": "text/html"})
        assert html.headers["content-type"].startswith("text/html") and "deadbeef" not in html.text


async def test_a_token_guards_every_page_and_the_cookie_never_holds_it(kafka_bootstrap):
    config = console_config(kafka_bootstrap, console={"token": TOKEN})
    await create_topic(kafka_bootstrap, config.kafka.raw_topic, 3)
    async with running_console(config) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/", "/events", "/consumers", "/tail", "/tail/stream", "/events/0/0"):
            refused = await client.get(path, headers=JSON)
            assert refused.status_code == 401 and refused.json()["error"] == "unauthorized", path
        assert (
            await client.get("/events", headers={**JSON, "authorization": "Bearer nope"})
        ).status_code == 401
        page = await client.get("/events")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        ok = await client.get("/events", headers={**JSON, "authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        wrong = await client.post("/login", data={"token": "guess", "next": "/events"})
        assert wrong.status_code == 401 and COOKIE not in wrong.cookies
        signed = await client.post("/login", data={"token": TOKEN, "next": "//evil.example/"})
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # never an open redirect
        assert TOKEN not in signed.headers["set-cookie"]
        assert (await client.get("/events", headers=JSON)).status_code == 200  # the cookie suffices


async def test_consumers_page_lag_dead_letters_and_csrf_guarded_logged_redrive(kafka_bootstrap, caplog):
    name = f"billing-{uuid.uuid4().hex[:6]}"
    config = console_config(
        kafka_bootstrap,
        console={"token": TOKEN, "actions": True},
        consumers={name: {"action": "tests.integration.console_handlers:handle", "max_attempts": 1}},
    )
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 2)
    bad = make_raw_event({"id": "evt_bad"}, event_id=f"evt_bad_{name}", ordering_key="pi_9")
    good = make_raw_event({"id": "evt_good"}, event_id=f"evt_good_{name}", ordering_key="pi_8")
    console_handlers.FAILING.add(bad.event_id)
    await produce_events(kafka_bootstrap, config.kafka.events_topic, [good, bad])
    async with running_consumers(config, [name]):
        await wait_until(lambda: good.event_id in console_handlers.HANDLED, 30, "the good event")
        await asyncio.sleep(0.5)
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with running_console(config) as url, httpx.AsyncClient(base_url=url, headers=JSON) as client:
        await wait_until(
            lambda: _dlq_depth(client, name, auth), 30, "the dead letter to show on the Consumers page"
        )
        state = (await client.get(f"/consumers/{name}", headers=auth)).json()
        assert state["lag"] == 0 and {p["partition"] for p in state["partitions"]} == {0, 1}
        [letter] = state["dead_letters"]
        assert letter["event_id"] == bad.event_id and letter["error"] == f"upstream refused {bad.event_id}"
        assert letter["attempts"] == 1 and letter["original"].startswith(config.kafka.events_topic)

        # A cookie-authenticated form without the CSRF token is refused; with it, acts.
        await client.post("/login", data={"token": TOKEN})
        refused = await client.post(f"/consumers/{name}/redrive", data={})
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        csrf = request_csrf(await client.get(f"/consumers/{name}", headers={"accept": "text/html"}))
        dry = await client.post(f"/consumers/{name}/redrive", data={"csrf": csrf, "dry_run": "1"})
        assert dry.json() == {"consumer": name, "dry_run": True, "pending": 1}
        console_handlers.FAILING.discard(bad.event_id)
        with caplog.at_level("INFO", logger="hookstream.console"):
            done = await client.post(f"/consumers/{name}/redrive", data={"csrf": csrf})
        assert done.status_code == 200 and done.json()["handled"] == 1, done.text
        assert bad.event_id in console_handlers.HANDLED
        assert done.json()["who"].startswith("cookie from 127.0.0.1")
        logged = [r for r in caplog.records if r.getMessage() == "console action"]
        assert logged and logged[0].action == "redrive" and logged[0].consumer == name
        assert all(TOKEN not in r.getMessage() + str(r.__dict__) for r in caplog.records)
        assert (await client.get(f"/consumers/{name}", headers=auth)).json()["dlq_depth"] == 0


def request_csrf(page: httpx.Response) -> str:
    marker = 'name="csrf" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


async def _dlq_depth(client: httpx.AsyncClient, name: str, auth: dict[str, str]) -> bool:
    return (await client.get(f"/consumers/{name}", headers=auth)).json()["dlq_depth"] == 1


async def test_actions_are_refused_when_off(kafka_bootstrap):
    config = console_config(kafka_bootstrap, consumers={"audit": {"action": "log"}})
    async with running_console(config) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/consumers/audit/redrive", data={})
        assert answer.status_code == 403 and "actions are off" in answer.json()["detail"]
        page = await client.get("/consumers/audit")
        assert "/redrive" not in page.text


async def test_live_tail_streams_new_matching_events(kafka_bootstrap):
    config = console_config(kafka_bootstrap)
    await create_topic(kafka_bootstrap, config.kafka.raw_topic, 3)
    async with running_console(config) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/tail/stream", params={"source": "stripe"}) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: ready"
            started = time.monotonic()
            await produce_raw(
                kafka_bootstrap,
                config.kafka.raw_topic,
                [(make_raw_event({}, source="github", event_id="evt_other"), None)]
                + [(make_raw_event({}, event_id="evt_live"), None)],
            )
            received = []
            async for line in lines:
                received.append(line)
                if "evt_live" in line:
                    break
            assert time.monotonic() - started < 2
            assert "event: event" in received and not any("evt_other" in line for line in received)


async def test_an_events_state_per_consumer_and_replaying_it_to_one_consumer(kafka_bootstrap):
    name = f"ledger-{uuid.uuid4().hex[:6]}"
    config = console_config(
        kafka_bootstrap,
        console={"token": TOKEN, "actions": True},
        consumers={name: {"action": "tests.integration.console_handlers:handle", "max_attempts": 1}},
    )
    event = make_raw_event({"id": "evt_r"}, event_id=f"evt_replay_{name}", ordering_key="pi_r")
    await events_in_raw(kafka_bootstrap, config, [event])
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 2)
    await produce_events(kafka_bootstrap, config.kafka.events_topic, [event])
    auth = {**JSON, "authorization": f"Bearer {TOKEN}"}
    async with (
        running_console(config) as url,
        httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as client,
    ):
        [row] = (await client.get("/events", params={"event_id": event.event_id})).json()["events"]
        permalink = f"/events/{row['partition']}/{row['offset']}"
        [before] = (await client.get(permalink)).json()["delivery"]["consumers"]
        assert before["state"] == "pending" and not before["replayed"]
        async with running_consumers(config, [name]):
            await wait_until(lambda: event.event_id in console_handlers.HANDLED, 30, "the event handled")
            busy = await client.post(f"/consumers/{name}/replay", data={"event_id": event.event_id})
            assert busy.status_code == 409 and "is running" in busy.json()["detail"]
        detail = (await client.get(permalink)).json()
        assert detail["delivery"]["events_position"] is not None
        assert detail["delivery"]["consumers"][0]["state"] == "handled"
        assert f"replay --config F {name} --event-id {event.event_id}" in detail["replay_command"][name]

        replayed = await client.post(f"/consumers/{name}/replay", data={"event_id": event.event_id})
        assert replayed.status_code == 200 and replayed.json()["handled"] == 1, replayed.text
        assert console_handlers.HANDLED.count(event.event_id) == 2
        assert (await client.get(permalink)).json()["delivery"]["consumers"][0]["replayed"] is True
        unknown = await client.post(f"/consumers/{name}/replay", data={"event_id": "evt_nowhere"})
        assert unknown.status_code == 404 and "evt_nowhere" in unknown.json()["detail"]

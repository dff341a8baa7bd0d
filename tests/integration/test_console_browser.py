"""The console in a real browser (Debian's Chromium through Playwright) against a real broker:
provider-controlled text never runs as script, the Events list leads to an event's body, the
live tail shows a new event within 2 s and counts what arrives while paused, a redrive from the
DLQ page reaches the consumer, and no page logs a browser error.

With ``HOOKSTREAM_SCREENSHOTS=DIR`` the run saves the README's screenshots there.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from hookstream.sample_events import make_raw_event, produce_raw
from tests.integration import console_handlers
from tests.integration.console_support import chromium, console_config, running_console
from tests.integration.support import create_topic, produce_events, running_consumers, wait_until

pytestmark = pytest.mark.kafka
TOKEN = "browser-test-token-" + uuid.uuid4().hex

XSS_SOURCE = "<img src=x onerror=\"window.__xss='source'\">"
XSS_TYPE = "<script>window.__xss='type'</script>"
XSS_HEADER = "<svg onload=\"window.__xss='header'\"></svg>"
XSS_BODY = "</pre><script>window.__xss='body'</script><img src=x onerror=\"window.__xss='body-img'\">"
XSS_ID = "evt_<b onmouseover=\"window.__xss='id'\">bold</b>"


def watch(page, problems: list[str]) -> None:
    """Collect every browser error and dialog on ``page`` (a script of an event's text would open one)."""
    page.on(
        "console",
        lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))


async def no_script_ran(page) -> None:
    assert await page.evaluate("window.__xss") is None
    # The payloads' elements were never created: they show as text only.
    assert await page.locator("main img, main svg:not(.chart), main b, main script").count() == 0


async def test_provider_text_shows_as_text_and_never_runs(kafka_bootstrap):
    config = console_config(kafka_bootstrap)
    await create_topic(kafka_bootstrap, config.kafka.raw_topic, 3)
    body = ('{"note": "' + XSS_BODY.replace('"', '\\"') + '"}').encode()
    event = make_raw_event(
        None,
        event_id=XSS_ID,
        source=XSS_SOURCE,
        event_type=XSS_TYPE,
        headers={"x-note": XSS_HEADER},
        body=body,
    )
    await produce_raw(kafka_bootstrap, config.kafka.raw_topic, [(event, None)])
    problems: list[str] = []
    async with running_console(config) as url, chromium() as browser:
        page = await browser.new_page()
        watch(page, problems)
        await page.goto(f"{url}/")
        await page.get_by_text(XSS_TYPE).first.wait_for()
        await no_script_ran(page)

        await page.goto(f"{url}/events")
        row = page.locator("#events tbody tr").first
        assert await row.locator("td").nth(1).inner_text() == XSS_SOURCE
        assert await row.locator("td").nth(2).inner_text() == XSS_TYPE
        assert await row.locator("td").nth(3).inner_text() == XSS_ID
        await no_script_ran(page)

        await page.goto(f"{url}/events?q=" + "%3Cscript%3E")  # the filter's value is echoed back escaped
        assert await page.locator("input[name=q]").input_value() == "<script>"
        await no_script_ran(page)

        await page.goto(f"{url}/events")
        await page.locator("#events tbody tr a").first.click()
        await page.locator("#body-text").wait_for()
        assert await page.locator("#source").inner_text() == XSS_SOURCE
        assert await page.locator("#event-type").inner_text() == XSS_TYPE
        assert XSS_HEADER in await page.locator("#headers").inner_text()
        assert await page.locator("#body-text").inner_text() == body.decode()
        assert "</pre><script>window.__xss='body'</script>" in await page.locator("#body-json").inner_text()
        await no_script_ran(page)

        await page.goto(f"{url}/tail")
        await page.locator("#tail-status", has_text="Live").wait_for()
        await produce_raw(kafka_bootstrap, config.kafka.raw_topic, [(event, None)])
        await page.locator("#tail tr").first.wait_for()
        assert await page.locator("#tail tr td").nth(2).inner_text() == XSS_TYPE
        await no_script_ran(page)
    assert problems == []


async def test_events_search_detail_and_live_tail(kafka_bootstrap):
    config = console_config(kafka_bootstrap)
    await create_topic(kafka_bootstrap, config.kafka.raw_topic, 3)
    events = [
        make_raw_event({"id": f"evt_{i}", "customer": f"cus_{i}"}, event_id=f"evt_{i}") for i in range(30)
    ]
    await produce_raw(kafka_bootstrap, config.kafka.raw_topic, [(e, None) for e in events])
    problems: list[str] = []
    shots = os.environ.get("HOOKSTREAM_SCREENSHOTS")
    async with running_console(config) as url, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        watch(page, problems)
        await page.goto(f"{url}/events")
        assert await page.locator("#events tbody tr").count() == 30
        assert "Scanned" in await page.locator("#scan").inner_text()
        await page.fill("input[name=q]", "cus_17")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**/events?**q=cus_17**")
        assert await page.locator("#events tbody tr").count() == 1
        if shots:
            await page.screenshot(path=str(Path(shots) / "console-events.png"), full_page=True)
        await page.locator("#events tbody tr a").first.click()
        await page.wait_for_url("**/events/*/*")
        assert '"customer": "cus_17"' in await page.locator("#body-json").inner_text()
        if shots:
            await page.screenshot(path=str(Path(shots) / "console-event.png"), full_page=True)

        await page.goto(f"{url}/tail")
        await page.locator("#tail-status", has_text="Live").wait_for()
        started = time.monotonic()
        await produce_raw(
            kafka_bootstrap, config.kafka.raw_topic, [(make_raw_event({}, event_id="evt_new"), None)]
        )
        await page.locator("#tail tr", has_text="evt_new").wait_for(timeout=2000)
        assert time.monotonic() - started < 2

        await page.click("#pause")
        await produce_raw(
            kafka_bootstrap, config.kafka.raw_topic, [(make_raw_event({}, event_id="evt_held"), None)]
        )
        await page.locator("#paused-count", has_text="1 arrived while paused").wait_for(timeout=5000)
        assert await page.locator("#tail tr", has_text="evt_held").count() == 0
        await page.click("#pause")
        assert await page.locator("#paused-count").inner_text() == ""

        for path in ("/", "/consumers", "/refused", "/login"):
            await page.goto(f"{url}{path}")
            await page.wait_for_load_state("networkidle")
    assert problems == []


async def test_sign_in_then_redrive_from_the_dlq_page_reaches_the_consumer(kafka_bootstrap):
    name = f"fulfil-{uuid.uuid4().hex[:6]}"
    config = console_config(
        kafka_bootstrap,
        console={"token": TOKEN, "actions": True},
        consumers={name: {"action": "tests.integration.console_handlers:handle", "max_attempts": 1}},
    )
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 2)
    bad = make_raw_event({"id": "evt_x"}, event_id=f"evt_redrive_{name}", ordering_key="pi_5")
    console_handlers.FAILING.add(bad.event_id)
    await produce_events(kafka_bootstrap, config.kafka.events_topic, [bad])
    async with running_consumers(config, [name]):
        await wait_until(lambda: _dead_lettered(config, name), 30, "the dead letter")
    problems: list[str] = []
    async with running_console(config) as url, chromium() as browser:
        page = await browser.new_page()
        watch(page, problems)
        await page.goto(f"{url}/consumers/{name}")
        await page.wait_for_url("**/login?**")
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"**/consumers/{name}")
        assert bad.event_id in await page.locator("#dead-letters").inner_text()
        assert f"upstream refused {bad.event_id}" in await page.locator("#dead-letters").inner_text()

        console_handlers.FAILING.discard(bad.event_id)
        await page.click("#redrive-button")
        await page.locator("#redrive-count", has_text="1 pending dead letter(s) would be redriven").wait_for()
        await page.click("#redrive-button")  # confirm
        await page.locator("#action-log", has_text="1 handled").wait_for()
        assert "No pending dead letters" in await page.locator("#dead-letters").inner_text()
        assert bad.event_id in console_handlers.HANDLED
        assert "cookie from 127.0.0.1" in await page.locator("#action-log").inner_text()
    assert problems == []


async def _dead_lettered(config, name: str) -> bool:
    from hookstream.consumers.redrive import list_dead_letters

    return len(await list_dead_letters(config.kafka, name)) == 1

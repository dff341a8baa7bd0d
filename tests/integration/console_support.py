"""Helpers for the console's tests: a config with unique topics and a ``[console]`` table, the
console served by uvicorn on a free port, and Debian's Chromium for Playwright."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookstream.config import Config, parse_config
from hookstream.console.app import create_app
from hookstream.kafka.local_broker import free_port
from hookstream.stage_rules import stage_rules
from tests.integration.support import serving

CHROMIUM = "/usr/bin/chromium"
NO_CHROMIUM = (
    f"no Chromium at {CHROMIUM}: run `make install` (it installs Debian's chromium package) "
    "or `apt-get install chromium`; the console's browser tests never skip"
)


def console_config(
    bootstrap: str,
    *,
    console: dict[str, Any] | None = None,
    consumers: dict[str, Any] | None = None,
    partitions: int = 3,
) -> Config:
    suffix = uuid.uuid4().hex[:8]
    data = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "raw_topic": f"test.console-raw.{suffix}",
            "events_topic": f"test.console-events.{suffix}",
            "partitions": partitions,
        },
        "sources": {"stripe": {"provider": "stripe", "secrets": ["whsec_test"]}},
        "consumers": consumers or {},
        "console": console or {},
    }
    return parse_config(data, rules=stage_rules())


@contextlib.asynccontextmanager
async def running_console(config: Config) -> AsyncIterator[str]:
    """The console app under uvicorn on a free port; yields its base URL."""
    async with serving(create_app(config), free_port()) as url:
        yield url


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(NO_CHROMIUM, pytrace=False)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium for Playwright; the test fails (never skips) when there is none."""
    from playwright.async_api import async_playwright

    require_chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"] if os.geteuid() == 0 else []
        )
        try:
            yield browser
        finally:
            await browser.close()

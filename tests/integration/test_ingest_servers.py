"""The ingest app under the ASGI servers it is run with, each started as its own process from the
``app_from_env`` factory the way the README shows, against the real broker: the server detects
the app by itself, lifespan starts and stops the producer, and the answers are ingest's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from hookstream.ingest.providers import provider_class
from hookstream.schemas.envelope import decode_raw_event
from hookstream.schemas.progress import decode_progress, is_progress

from .support import free_port, read_topic

pytestmark = pytest.mark.kafka

FACTORY = "hookstream.ingest.server:app_from_env"
SERVERS: dict[str, Callable[[int], list[str]]] = {
    "uvicorn": lambda port: [
        "uvicorn", "--factory", FACTORY, "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
    ],
    "hypercorn": lambda port: ["hypercorn", f"{FACTORY}()", "--bind", f"127.0.0.1:{port}"],
    "granian": lambda port: [
        "granian", "--interface", "asgi", "--factory", FACTORY, "--host", "127.0.0.1", "--port", str(port),
    ],
}  # fmt: skip
"""Each server's command line, with no option that tells it what kind of app it is given."""

SECRET = "server-secret"


@asynccontextmanager
async def served(argv: list[str], port: int, config: Path, log: Path) -> AsyncIterator[Process]:
    """The server, once it answers ``/readyz`` with 200 (lifespan has connected the producer);
    stopped with SIGTERM on the way out, as a process manager stops it."""
    with log.open("wb") as out:
        child = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", *argv],
            env=os.environ | {"HOOKSTREAM_CONFIG": str(config)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(300):
                if child.returncode is not None:
                    pytest.fail(f"{argv[0]} exited with {child.returncode}:\n{await _read(log)}")
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"{argv[0]} was not ready within 30 s:\n{await _read(log)}")
        yield child
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 30)
            except TimeoutError:
                child.kill()
                await child.wait()
                pytest.fail(f"{argv[0]} did not stop within 30 s of SIGTERM:\n{await _read(log)}")


async def _read(log: Path) -> str:
    return await asyncio.to_thread(log.read_text)


@pytest.mark.parametrize("server", SERVERS)
async def test_each_server_serves_ingest_with_its_lifespan(server, kafka_bootstrap, unique, tmp_path):
    raw_topic = f"test.raw.{unique}"
    config = tmp_path / "hookstream.toml"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\nraw_topic = "{raw_topic}"\npartitions = 2\n'
        f'[sources.gh]\nprovider = "github"\nsecrets = ["{SECRET}"]\n'
    )
    port = free_port()
    body = b'{"ref":"refs/heads/main","repository":{"full_name":"acme/api"}}'
    good = provider_class("github")([SECRET]).sign(body, timestamp=0)
    forged = provider_class("github")(["not-the-secret"]).sign(body, timestamp=0)
    log = tmp_path / f"{server}.log"
    async with served(SERVERS[server](port), port, config, log) as child:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            r = await client.post(
                "/webhooks/gh",
                content=body,
                headers=good | {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"{unique}-good"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["event_id"] == f"{unique}-good"
            r = await client.post(
                "/webhooks/gh",
                content=body,
                headers=forged | {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"{unique}-forged"},
            )
            assert r.status_code == 401, r.text
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"] == "signature_mismatch"
    output = await _read(log)
    # uvicorn re-raises the signal once shut down; hypercorn and granian exit 0.
    assert child.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output

    records = await read_topic(kafka_bootstrap, raw_topic, markers=True)
    events = [decode_raw_event(r.value) for r in records if not is_progress(r.headers)]
    assert [(e.event_id, e.body) for e in events] == [(f"{unique}-good", body)]
    # The producer said goodbye on every partition: lifespan's shutdown ran and was flushed.
    leaving = {
        r.partition for r in records if is_progress(r.headers) and decode_progress(r.value).before_ms is None
    }
    assert leaving == {0, 1}, output

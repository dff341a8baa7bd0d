"""The README's run command, end to end: ``hookstream dev`` (ingest + streams + a consumer) on the
test broker, a signed event sent twice with ``hookstream send``, the example jsonl consumer's
file holding it once, and Ctrl-C stopping everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from .support import free_port

pytestmark = pytest.mark.kafka


def _config(tmp: Path, bootstrap: str) -> tuple[Path, int, int]:
    """The config, the streams worker's web port (its metrics) and the console's port."""
    suffix = uuid.uuid4().hex[:8]
    path = tmp / "dev.toml"
    web_port = free_port()
    console_port = free_port()
    path.write_text(
        f"""
[kafka]
bootstrap_servers = "{bootstrap}"
raw_topic = "dev.raw.{suffix}"
events_topic = "dev.events.{suffix}"
partitions = 4

[ingest]
host = "127.0.0.1"
port = {free_port()}

[sources.stripe]
provider = "stripe"
secrets = ["whsec_dev_only_stripe_secret"]

[streams]
app_id = "dev-streams-{suffix}"
data_dir = "{tmp / "streams"}"
web_port = {web_port}
max_wait_ms = 500
watermark_lag_ms = 200

[consumers.audit-{suffix}]
events = ["*"]
action = "jsonl"
path = "{tmp / "events.jsonl"}"

[console]
port = {console_port}
"""
    )
    return path, web_port, console_port


def _streams_metric(web_port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{web_port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(f"{name} "))


def _cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookstream.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_dev_runs_the_pipeline_and_ctrl_c_stops_it(kafka_bootstrap, tmp_path):
    config, web_port, console_port = _config(tmp_path, kafka_bootstrap)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        dev = subprocess.Popen(
            [sys.executable, "-m", "hookstream.cli", "dev", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        event_id = f"evt_{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + 120
        while True:  # ingest answers once it is up; until then send fails
            sent = _cli(
                "send", "--config", str(config), "stripe", "--event-id", event_id, "--repeat", "2", env=env
            )
            if sent.returncode == 0:
                break
            assert dev.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"send never succeeded: {sent.stderr}\n{log_path.read_text()}"
            time.sleep(1)
        assert sent.stdout.count("200 ") == 2, sent.stdout

        out = tmp_path / "events.jsonl"
        deadline = time.monotonic() + 120
        while not (out.exists() and event_id in out.read_text()):
            assert dev.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"no event in {out}:\n{log_path.read_text()[-4000:]}"
            time.sleep(0.5)
        # The second copy reached dedupe and was dropped there (the worker's own counters).
        while _streams_metric(web_port, "hookstream_streams_duplicate_events_total") < 1:
            assert time.monotonic() < deadline, f"no duplicate counted:\n{log_path.read_text()[-4000:]}"
            time.sleep(0.5)
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["event_id"] for line in lines] == [event_id]
        assert lines[0]["event_type"] == "payment_intent.succeeded" and lines[0]["late"] is False
        console = f"http://127.0.0.1:{console_port}/"
        assert f"[      dev] console: {console}" in log_path.read_text()
        found = httpx.get(
            f"{console}events", params={"event_id": event_id}, headers={"accept": "application/json"}
        )
        assert [e["event_id"] for e in found.json()["events"]] == [event_id] * 2  # raw: both deliveries

        dev.send_signal(signal.SIGINT)
        assert dev.wait(90) == 0
        text = log_path.read_text()
        assert "[      dev] stopped" in text
        for part in ("ingest", "streams", "consumers", "console"):
            assert f"[{part:>9}]" in text, part
    finally:
        if dev.poll() is None:  # a failed assertion: still stop the children through dev
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(90)
            except subprocess.TimeoutExpired:
                dev.kill()
                dev.wait()

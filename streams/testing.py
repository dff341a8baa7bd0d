"""Helpers for tests and benchmarks: a streams worker in a child process, and raw events to feed it.

The worker runs as ``python -m hookstream.streams`` in its own process group, so a test can stop
it the polite way (SIGTERM: commit and leave the group) or the hard way (SIGKILL: nothing runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from hookstream.consumers.testing import make_raw_event
from hookstream.schemas.envelope import RawEvent, encode_raw_event, event_headers, ms_to_datetime


def raw_event(
    event_id: str,
    ordering_key: str,
    received_ms: int,
    *,
    created_ms: int | None = None,
    body: bytes = b"{}",
    source: str = "test",
) -> RawEvent:
    """A RawEvent as ingest would publish it, received at ``received_ms``."""
    return make_raw_event(
        None,
        event_id=event_id,
        source=source,
        provider="standard",
        event_type="test.event",
        ordering_key=ordering_key,
        received_at=ms_to_datetime(received_ms),
        created_at=ms_to_datetime(created_ms) if created_ms is not None else None,
        body=body,
    )


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def produce_raw(
    bootstrap: str, topic: str, events: Iterable[tuple[RawEvent, int | None]], *, linger_ms: int = 0
) -> None:
    """Publish ``(event, partition)`` pairs to the raw topic, keyed by event id, in order, acked.

    ``partition=None`` lets the default partitioner place it by key, as ingest does.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms)
    await producer.start()
    try:
        futures = []
        for event, partition in events:
            futures.append(
                await producer.send(
                    topic,
                    encode_raw_event(event),
                    key=event.event_id.encode(),
                    partition=partition,
                    headers=event_headers(event),
                )
            )
        for future in futures:
            await future
    finally:
        await producer.stop()


def streams_config_toml(
    bootstrap: str,
    *,
    raw_topic: str,
    events_topic: str,
    partitions: int,
    app_id: str,
    data_dir: Path,
    web_port: int,
    **streams: Any,
) -> str:
    lines = [
        "[kafka]",
        f'bootstrap_servers = "{bootstrap}"',
        f'raw_topic = "{raw_topic}"',
        f'events_topic = "{events_topic}"',
        f"partitions = {partitions}",
        "[streams]",
        f'app_id = "{app_id}"',
        f'data_dir = "{data_dir}"',
        f"web_port = {web_port}",
    ]
    for key, value in streams.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


@dataclass
class WorkerProcess:
    """``python -m hookstream.streams --config F`` in a child process; output appended to ``log_path``."""

    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self._log_mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hookstream.streams", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def output(self) -> str:
        """What this run wrote so far."""
        with self.log_path.open("rb") as f:
            f.seek(self._log_mark)
            return f.read().decode("utf-8", "replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"streams worker exited {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise TimeoutError(f"streams worker did not print {text!r} in {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: faust commits what it acknowledged and leaves the group."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the whole process group: no commit, no flush, no goodbye."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

"""``hookstream dev``: the whole pipeline on one machine for a local try-out.

Runs each part as its own child process (local broker, ingest, streams, consumers, console), prefixes
their output with the part's name, and stops all of them on Ctrl-C or when any one exits.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from hookstream.config import Config
from hookstream.errors import HookstreamError

READY_LINE = "Kafka ready: bootstrap servers "


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hookstream.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def _local_port(bootstrap: str) -> int | None:
    """The port when ``bootstrap`` is one local address (then dev runs the broker itself)."""
    first = bootstrap.split(",")[0].strip()
    split = urlsplit(f"//{first}")
    if len(bootstrap.split(",")) == 1 and split.hostname in ("127.0.0.1", "localhost") and split.port:
        return split.port
    return None


def run_dev(config: Config, config_path: str, parts: list[str], emit: Callable[[str], None]) -> int:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    children: dict[str, subprocess.Popen[bytes]] = {}
    selector = selectors.DefaultSelector()
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        child = _spawn(args, env)
        children[name] = child
        assert child.stdout is not None
        os.set_blocking(child.stdout.fileno(), False)
        selector.register(child.stdout, selectors.EVENT_READ, name)
        return child

    buffers: dict[str, bytes] = {}

    def pump(timeout: float) -> list[tuple[str, str]]:
        lines = []
        for key, _ in selector.select(timeout):
            name = key.data
            chunk = key.fileobj.read()  # type: ignore[union-attr]
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            data = buffers.get(name, b"") + chunk
            *complete, rest = data.split(b"\n")
            buffers[name] = rest
            for raw in complete:
                line = raw.decode("utf-8", "replace")
                emit(f"[{name:>9}] {line}")
                lines.append((name, line))
        return lines

    try:
        port = _local_port(config.kafka.bootstrap_servers)
        if port is not None and "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
            data_dir = Path(config.streams.data_dir).parent / "kafka"
            start("kafka", ["kafka", "--port", str(port), "--data-dir", str(data_dir)])
            deadline = time.monotonic() + 600
            while not any(line.startswith(READY_LINE) for _, line in pump(0.5)):
                if stopping:
                    return 130
                if children["kafka"].poll() is not None:
                    pump(0.2)
                    raise HookstreamError("the local Kafka broker did not start (see its lines above)")
                if time.monotonic() > deadline:
                    raise HookstreamError("the local Kafka broker did not become ready in 10 minutes")
        else:
            emit(f"[      dev] using the Kafka cluster at {config.kafka.bootstrap_servers}")
        if "ingest" in parts:
            start("ingest", ["ingest", "--config", config_path])
        if "streams" in parts:
            start("streams", ["streams", "--config", config_path])
        if "consumers" in parts and config.consumers:
            start("consumers", ["consume", "--config", config_path, *config.consumers])
        if "console" in parts:
            start("console", ["console", "--config", config_path])
            emit(f"[      dev] console: http://{config.console.host}:{config.console.port}/")
        emit(
            f"[      dev] running: {', '.join(children)}. Send an event from another terminal, e.g.\n"
            f"[      dev]   hookstream send --config {config_path} {next(iter(config.sources), 'SOURCE')}\n"
            "[      dev] Ctrl-C stops everything."
        )
        while not stopping:
            pump(0.5)
            exited = [n for n, c in children.items() if c.poll() is not None]
            if exited:
                pump(0.2)
                emit(
                    f"[      dev] {', '.join(exited)} exited (code {children[exited[0]].returncode}); stopping the rest"
                )
                return 1
        return 0
    finally:
        emit("[      dev] stopping…")
        for name in reversed(list(children)):
            child = children[name]
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(45)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            pump(0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emit("[      dev] stopped")

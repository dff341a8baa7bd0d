"""A streams worker in a child process, and the config it runs with: what the benchmarks
(``hookstream bench``) and the integration tests drive a worker with.

The worker runs as ``python -m hookstream.streams`` in its own process group, so a test can stop
it the polite way (SIGTERM: commit and leave the group) or the hard way (SIGKILL: nothing runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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

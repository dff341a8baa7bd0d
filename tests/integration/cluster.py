"""A real 3-node local Kafka cluster for the cluster tests, run the way a user runs one:
``hookstream kafka --brokers 3`` in a child process, its nodes killed, paused and restarted
(``--node``) by the pids it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hookstream.kafka.local_broker import HOST

NODE_LINE = re.compile(r"^node (\d+): port (\d+), pid (\d+)$")
START_TIMEOUT_S = 180


class ClusterError(RuntimeError):
    pass


class ClusterProcess:
    """``hookstream kafka --brokers N --port P --data-dir D`` and the ``--node`` restarts of its nodes."""

    def __init__(self, brokers: int, port: int, data_dir: Path | None = None) -> None:
        self.brokers = brokers
        self.port = port
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="hookstream-test-cluster-"))
        self.pids: dict[int, int] = {}
        self._processes: list[subprocess.Popen[str]] = []
        self.bootstrap_servers = ",".join(f"{HOST}:{port + i}" for i in range(brokers))

    def _command(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-c",
            "from hookstream.cli import main; main()",
            "kafka",
            "--brokers",
            str(self.brokers),
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *extra,
        ]

    def _run(self, *extra: str, until: str) -> None:
        log = (self.data_dir / f"cli-{len(self._processes)}.log").open("w")
        env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
        process = subprocess.Popen(
            self._command(*extra), stdout=subprocess.PIPE, stderr=log, text=True, env=env, bufsize=1
        )
        self._processes.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        assert process.stdout is not None
        for line in process.stdout:
            if match := NODE_LINE.match(line.strip()):
                self.pids[int(match[1])] = int(match[3])
            if line.startswith(until):
                return
            if time.monotonic() > deadline:
                break
        process.kill()
        raise ClusterError(
            f"`{' '.join(self._command(*extra)[3:])}` did not print {until!r}; its log:\n"
            + Path(log.name).read_text()[-3000:]
        )

    def start(self) -> ClusterProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run(until="cluster ready: bootstrap ")
        return self

    def alive(self, node: int) -> bool:
        pid = self.pids.get(node)
        if pid is None:
            return False
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ", 1)[1][0] != "Z"
        except OSError:
            return False

    def kill(self, node: int) -> None:
        """kill -9 the node's JVM, as a crash would; returns once it is gone."""
        os.kill(self.pids[node], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.alive(node) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pause(self, node: int) -> None:
        os.kill(self.pids[node], signal.SIGSTOP)

    def resume(self, node: int) -> None:
        os.kill(self.pids[node], signal.SIGCONT)

    def restart(self, node: int) -> None:
        """``hookstream kafka --brokers N --node <node>`` on the node's data; returns once it serves."""
        if not self.alive(node):
            self._run("--node", str(node), until=f"node {node} ready: bootstrap ")

    def ensure_whole(self) -> None:
        for node in range(1, self.brokers + 1):
            if self.alive(node):
                self.resume(node)
            else:
                self.restart(node)

    def close(self) -> None:
        for node in self.pids:
            if self.alive(node):
                self.resume(node)
        for process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        for node in self.pids:  # a node whose command was killed gets SIGTERM from the kernel too
            if self.alive(node):
                os.kill(self.pids[node], signal.SIGKILL)

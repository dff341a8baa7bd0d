"""A real multi-node Apache Kafka cluster on this machine: N combined KRaft broker + controller
nodes on 127.0.0.1 (``hookstream kafka --brokers N``, the cluster tests, ``bench soak``).

Node ``i`` (1..N) serves clients on ``port + i - 1`` and keeps everything under
``data_dir/node-<i>`` (its ``LocalKafka``). The quorum is static: every node is a voter, known by
a controller port chosen free on the first start and kept in ``data_dir/cluster.properties``
with the cluster id, so that any node can be killed and started again alone, on its own data,
by another process (``hookstream kafka --brokers N --node i``).

Internal topics get ``min(3, N)`` replicas and a min ISR one lower (``replication``), the defaults
hookstream's own topics get too.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.local_broker import HOST, LocalKafka, Progress, free_port, new_cluster_id, port_is_free
from hookstream.kafka.replication import default_min_insync, default_replication_factor

__all__ = ["LocalCluster", "serve_cluster"]

CLUSTER_FILE = "cluster.properties"
NODE_HEAP = "384m"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports on 127.0.0.1 that nothing listens on right now."""
    for _ in range(200):
        first = free_port()
        if first + count > 65535:
            continue
        if all(port_is_free(first + i) for i in range(count)):
            return first
    raise KafkaLayerError(f"found no {count} consecutive free ports on {HOST}; pass --port")


class LocalCluster:
    """``brokers`` local nodes: ``start()`` (all), ``start_node(i)``, ``kill(i)``, ``close()``.

    ``port=None`` picks consecutive free ports on the first start. ``data_dir=None`` means a
    temporary dir that ``close()`` deletes. A ``data_dir`` that holds a cluster already must be
    started with the same ``brokers`` and ``port``: its quorum and clients know those.
    """

    def __init__(
        self,
        brokers: int,
        port: int | None = None,
        data_dir: Path | None = None,
        progress: Progress = _to_stderr,
        heap: str = NODE_HEAP,
    ) -> None:
        if brokers < 2:
            raise KafkaLayerError("a local cluster has 2 or more brokers; use LocalKafka for one")
        self.brokers = brokers
        self._owns_data_dir = data_dir is None
        self.data_dir = (
            Path(data_dir).expanduser().resolve()
            if data_dir is not None
            else Path(tempfile.mkdtemp(prefix="hookstream-cluster-"))
        )
        self._progress = progress
        self.port, cluster_id, controller_ports = self._load_or_choose(port)
        self.replication_factor = default_replication_factor(brokers)
        self.min_insync_replicas = default_min_insync(self.replication_factor)
        voters = dict(zip(range(1, brokers + 1), controller_ports, strict=True))
        self.nodes = {
            node: LocalKafka(
                port=self.port + node - 1,
                data_dir=self.data_dir / f"node-{node}",
                progress=progress,
                heap=heap,
                node_id=node,
                voters=voters,
                cluster_id=cluster_id,
                replication_factor=self.replication_factor,
                min_insync_replicas=self.min_insync_replicas,
            )
            for node in voters
        }

    # -- state

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:P,127.0.0.1:P+1,…``: every node, so a client finds the cluster whichever is down."""
        return ",".join(f"{HOST}:{self.port + i}" for i in range(self.brokers))

    def node(self, node_id: int) -> LocalKafka:
        if node_id not in self.nodes:
            raise KafkaLayerError(f"no node {node_id}: the cluster's nodes are 1 to {self.brokers}")
        return self.nodes[node_id]

    # -- lifecycle

    def start(self, timeout: float = 180.0) -> str:
        """Start every node that is not running; returns the bootstrap servers once all serve."""
        started = time.monotonic()
        waiting = [n for n in self.nodes.values() if not n.running]
        try:
            for node in waiting:
                node.launch()
            deadline = started + timeout
            for node in waiting:
                node.await_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            for node in waiting:
                node.kill()
            raise
        self._progress(f"cluster of {self.brokers} ready in {time.monotonic() - started:.1f}s")
        return self.bootstrap_servers

    def start_node(self, node_id: int, timeout: float = 120.0) -> LocalKafka:
        """Start one node on its data (the others, or a majority of them, must be running)."""
        node = self.node(node_id)
        node.start(timeout)
        return node

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would."""
        self.node(node_id).kill()

    def stop_node(self, node_id: int) -> None:
        self.node(node_id).stop()

    def pause(self, node_id: int) -> None:
        """SIGSTOP one node: it holds its connections but answers nothing (a long GC, a frozen VM)."""
        self._signal(node_id, signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        self._signal(node_id, signal.SIGCONT)

    def _signal(self, node_id: int, sig: signal.Signals) -> None:
        pid = self.node(node_id).pid
        if pid is None:
            raise KafkaLayerError(f"node {node_id} is not running")
        os.kill(pid, sig)

    def stop(self) -> None:
        """Stop every node cleanly (the data stays)."""
        for node in self.nodes.values():
            if node.pid is not None:
                os.kill(node.pid, signal.SIGCONT)  # a paused node could not shut down
        threads = [threading.Thread(target=node.stop) for node in self.nodes.values()]
        for thread in threads:  # together: a node shutting down alone waits for a quorum that left
            thread.start()
        for thread in threads:
            thread.join()

    def close(self) -> None:
        self.stop()
        for node in self.nodes.values():
            node.close()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the cluster file

    def _load_or_choose(self, port: int | None) -> tuple[int, str, list[int]]:
        path = self.data_dir / CLUSTER_FILE
        if path.exists():
            saved = dict(
                line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#"
            )
            brokers, saved_port = int(saved["brokers"]), int(saved["port"])
            if brokers != self.brokers or (port is not None and port != saved_port):
                raise KafkaLayerError(
                    f"{self.data_dir} holds a cluster of {brokers} brokers on port {saved_port}: "
                    f"pass --brokers {brokers} --port {saved_port}, or another --data-dir"
                )
            return saved_port, saved["cluster.id"], [int(p) for p in saved["controller.ports"].split(",")]
        port = port if port is not None else _consecutive_free_ports(self.brokers)
        if port + self.brokers - 1 > 65535:
            raise KafkaLayerError(
                f"ports {port}..{port + self.brokers - 1} do not all exist; choose a lower --port"
            )
        client_ports = set(range(port, port + self.brokers))
        controller_ports: list[int] = []
        while len(controller_ports) < self.brokers:
            candidate = free_port()
            if candidate not in client_ports and candidate not in controller_ports:
                controller_ports.append(candidate)
        cluster_id = new_cluster_id()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Written by hookstream.kafka.local_cluster: what every node of this cluster must agree on.\n"
            f"cluster.id={cluster_id}\nbrokers={self.brokers}\nport={port}\n"
            f"controller.ports={','.join(map(str, controller_ports))}\n"
        )
        return port, cluster_id, controller_ports


# --- Foreground, for the CLI ----------------------------------------------------------------------


def serve_cluster(
    brokers: int,
    port: int,
    data_dir: Path | None,
    node_id: int | None = None,
    progress: Progress = _to_stderr,
) -> int:
    """Run the cluster (or, with ``node_id``, that one node) in the foreground until SIGINT/SIGTERM.

    Prints ``node <id>: port <port>, pid <pid>`` for each node started, then ``cluster ready:
    bootstrap 127.0.0.1:P,…`` on stdout. A node that dies is named on stderr with the end of its
    log, and the others keep serving (it can be started again with ``node_id``); the command
    ends with 1 once none is left. Returns 0 after a clean stop, 130 if interrupted while starting.
    """
    if node_id is not None and data_dir is None:
        raise KafkaLayerError("--node restarts a node on its data: pass the cluster's --data-dir too")
    cluster = LocalCluster(brokers, port=port, data_dir=data_dir, progress=progress)
    if node_id is not None:
        cluster.node(node_id)  # an unknown id is an error before anything starts
    ready = threading.Event()
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if not ready.is_set():
            raise KeyboardInterrupt
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            if node_id is None:
                cluster.start()
                mine = list(cluster.nodes.values())
            else:
                mine = [cluster.start_node(node_id)]
        except KeyboardInterrupt:
            progress("interrupted while starting the cluster")
            return 130
        ready.set()
        for node in mine:
            print(f"node {node.node_id}: port {node.port}, pid {node.pid}", flush=True)
        if node_id is None:
            print(f"cluster ready: bootstrap {cluster.bootstrap_servers}", flush=True)
        else:
            print(f"node {node_id} ready: bootstrap {cluster.bootstrap_servers}", flush=True)
        alive = {node.node_id: node for node in mine}
        while not stopping.wait(0.5):
            for nid, node in list(alive.items()):
                if not node.running:
                    del alive[nid]
                    progress(
                        f"node {nid} (port {node.port}) exited unexpectedly; "
                        f"last lines of {node.log_path}:\n{node.log_tail()}"
                    )
            if not alive:
                raise KafkaLayerError(
                    f"every node this command started has exited; logs under {cluster.data_dir}"
                )
        progress("stopping the cluster…" if node_id is None else f"stopping node {node_id}…")
        cluster.stop()
        progress("stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if node_id is None:
            cluster.close()
        else:
            cluster.node(node_id).close()

"""A real single-node Apache Kafka broker on this machine, without Docker.

Used by ``hookstream kafka`` and by the test fixtures. The broker's jars come from Maven Central
once (``pom.xml`` beside this module, resolved with Maven into a per-user cache); after that,
starting a broker needs only Java 17+ and no network. The broker is a combined KRaft broker +
controller listening on 127.0.0.1, with every internal topic at replication factor 1.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from hookstream.kafka.errors import KafkaLayerError

__all__ = [
    "KAFKA_VERSION",
    "LocalKafka",
    "cache_dir",
    "find_java",
    "new_cluster_id",
    "resolve_jars",
    "serve",
    "server_properties",
]

KAFKA_VERSION = "4.1.1"
HOST = "127.0.0.1"

POM = Path(__file__).parent / "pom.xml"
READY_MESSAGE = "Kafka Server started"  # logged by KafkaRaftServer once the broker is unfenced
_COMPLETE_MARKER = ".hookstream-complete"  # written into libs/ only after a whole, successful copy
_MIN_JAVA = 17
_LOG_TAIL_LINES = 20

Progress = Callable[[str], None]


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Where downloaded jars live: ``$HOOKSTREAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/hookstream``, else ``~/.cache/hookstream``."""
    if explicit := os.environ.get("HOOKSTREAM_CACHE_DIR"):
        return Path(explicit).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "hookstream"
    return Path.home() / ".cache" / "hookstream"


# --- Java and Maven -------------------------------------------------------------------------------


def find_java() -> str:
    """The ``java`` to run: ``$JAVA_HOME/bin/java`` if set, else the one on PATH; must be Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise KafkaLayerError(
            f"Java {_MIN_JAVA}+ not found on PATH: install a JDK (apt-get install openjdk-17-jre-headless, "
            "brew install openjdk@17) or set JAVA_HOME"
        )
    major = _java_major_version(java)
    if major is not None and major < _MIN_JAVA:
        raise KafkaLayerError(
            f"Apache Kafka {KAFKA_VERSION} needs Java {_MIN_JAVA}+, but {java} is Java {major}: "
            "install a newer JDK (apt-get install openjdk-17-jre-headless) or point JAVA_HOME at one"
        )
    return java


@functools.cache
def _java_major_version(java: str) -> int | None:
    """The major version ``java -version`` reports (8 for "1.8.0_392"), or None if unreadable."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    first, second = int(match[1]), int(match[2] or 0)
    return second if first == 1 else first


def _find_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaLayerError(
            f"Maven (mvn) not found on PATH: it fetches Apache Kafka {KAFKA_VERSION}'s jars from Maven Central "
            "once; install it (apt-get install maven, brew install maven)"
        )
    return mvn


# --- Jars -----------------------------------------------------------------------------------------


def _libs_dir() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def _complete(libs: Path) -> bool:
    return (libs / _COMPLETE_MARKER).is_file()


def resolve_jars(progress: Progress = _to_stderr) -> Path:
    """The folder holding every runtime jar of the broker, fetched with Maven on first use only.

    Offline and instant once cached. Concurrent callers (several processes) serialise on a lock
    file; the jars are copied into a temporary folder and renamed into place, so a reader never
    sees a half-filled folder.
    """
    libs = _libs_dir()
    if _complete(libs):
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _complete(libs):  # another process finished while we waited
            return libs
        java = find_java()
        mvn = _find_mvn()
        progress(
            f"resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central with Maven (first run only)…"
        )
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix="libs.tmp-", dir=libs.parent))
        try:
            _copy_dependencies(mvn, java, staging)
            jars = sorted(staging.glob("*.jar"))
            if not any(j.name.startswith(f"kafka_2.13-{KAFKA_VERSION}") for j in jars):
                raise KafkaLayerError(
                    f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {staging}"
                )
            (staging / _COMPLETE_MARKER).write_text(f"{KAFKA_VERSION}\n{len(jars)} jars\n")
            if libs.exists():  # left over from an interrupted, pre-marker copy
                shutil.rmtree(libs)
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        progress(f"resolved {len(jars)} jars into {libs} in {time.monotonic() - started:.1f}s")
        return libs


def _copy_dependencies(mvn: str, java: str, output: Path) -> None:
    env = dict(os.environ)
    # Maven runs on JAVA_HOME if set; point it at the java we checked when it is not.
    env.setdefault("JAVA_HOME", str(Path(os.path.realpath(java)).parent.parent))
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired as exc:
        raise KafkaLayerError("Maven did not finish resolving Kafka's jars within 30 minutes") from exc
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines
        detail = "\n".join(errors[-10:])
        raise KafkaLayerError(
            f"Maven could not resolve Apache Kafka {KAFKA_VERSION}'s jars (exit {result.returncode}); "
            f"is Maven Central (or your mirror in ~/.m2/settings.xml) reachable?\n{detail}"
        )


# --- Configuration --------------------------------------------------------------------------------


def server_properties(
    *,
    port: int,
    controller_port: int,
    log_dir: Path,
    node_id: int = 1,
    voters: Mapping[int, int] | None = None,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> str:
    """``server.properties`` for a combined broker + controller on 127.0.0.1.

    Without ``voters``: a single node with one replica of everything. With ``voters`` (node id →
    controller port, this node among them): one node of a static KRaft quorum, whose internal
    topics and defaults get ``replication_factor`` replicas and ``min_insync_replicas``.
    """
    if voters is None:
        quorum = f"controller.quorum.bootstrap.servers={HOST}:{controller_port}"
        header = "a single-node KRaft broker for local use"
    else:
        quorum = "controller.quorum.voters=" + ",".join(
            f"{node}@{HOST}:{voter_port}" for node, voter_port in sorted(voters.items())
        )
        header = f"node {node_id} of a {len(voters)}-node local KRaft cluster"
    rf, isr = replication_factor, min_insync_replicas
    lines = [
        f"# Written by hookstream.kafka.local_broker: {header}; rewritten on each start.",
        "process.roles=broker,controller",
        f"node.id={node_id}",
        quorum,
        f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={log_dir}",
        "num.partitions=1",
        f"default.replication.factor={rf}",
        f"min.insync.replicas={isr}",
        "auto.create.topics.enable=true",
        "group.initial.rebalance.delay.ms=0",
        # After a kill -9 the restarted broker may only register once its old session expired
        # (default 9 s); a broker and controller in one process can afford tighter heartbeats.
        # On a cluster the same timeout is how long a dead broker's partitions wait for a new leader.
        "broker.heartbeat.interval.ms=500",
        "broker.session.timeout.ms=3000",
        # Internal topics get the replicas there are (one, on a single node). One partition each
        # keeps the first group join / transaction fast; a local broker has no load to spread.
        f"offsets.topic.replication.factor={rf}",
        "offsets.topic.num.partitions=1",
        f"transaction.state.log.replication.factor={rf}",
        f"transaction.state.log.min.isr={isr}",
        "transaction.state.log.num.partitions=1",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={isr}",
        "share.coordinator.state.topic.num.partitions=1",
    ]
    return "\n".join(lines) + "\n"


LOG4J2_PROPERTIES = """\
# Written by hookstream.kafka.local_broker: INFO to stdout, which the launcher appends to broker.log.
status = warn
# Kafka logs its own shutdown from a JVM shutdown hook: keep log4j alive until the very end.
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def new_cluster_id() -> str:
    """A random Kafka cluster id: a UUID in URL-safe base64 without padding, never starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # would read as an option on the command line
            return cluster_id


# --- Ports ----------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR as the JVM sets it: a port left in TIME_WAIT by a stopped broker counts as free.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _previous_controller_port(properties: Path) -> int | None:
    """The controller port a persisted data dir was last started with (its quorum remembers it)."""
    try:
        text = properties.read_text()
    except OSError:
        return None
    match = re.search(r"^controller\.quorum\.bootstrap\.servers=.*:(\d+)\s*$", text, re.MULTILINE)
    return int(match[1]) if match else None


# --- The broker -----------------------------------------------------------------------------------


class LocalKafka:
    """One local broker process: ``start()``, ``stop()``, ``start()`` again, ``close()`` when done.

    ``port=None`` picks a free port on the first start; later starts reuse it, as they reuse the
    data dir, so clients' bootstrap address stays valid across a stop/start. ``data_dir=None`` means
    a temporary dir that ``close()`` deletes (``stop()`` keeps it, so data survives a restart).

    A node of a cluster (``local_cluster``) is given its ``node_id``, the quorum's ``voters``
    (node id → controller port, fixed for the cluster's life), the shared ``cluster_id`` and the
    replication of the internal topics; a single broker leaves them at their defaults.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        progress: Progress = _to_stderr,
        heap: str = "512m",
        full_jit: bool = False,
        *,
        node_id: int = 1,
        voters: Mapping[int, int] | None = None,
        cluster_id: str | None = None,
        replication_factor: int = 1,
        min_insync_replicas: int = 1,
    ) -> None:
        """``full_jit`` trades ~1.5 s of start-up for a broker that spends far less CPU per record
        (benchmarks want it; tests and `hookstream kafka` start faster without)."""
        self.full_jit = full_jit
        self.port = port
        self.node_id = node_id
        self.voters = dict(voters) if voters is not None else None
        self.cluster_id = cluster_id
        self.replication_factor = replication_factor
        self.min_insync_replicas = min_insync_replicas
        self.controller_port: int | None = self.voters[node_id] if self.voters is not None else None
        self._data_dir = Path(data_dir).expanduser().resolve() if data_dir is not None else None
        self._owns_data_dir = data_dir is None
        self._progress = progress
        self._heap = heap
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the current run's output starts in broker.log
        self._lock = threading.Lock()
        _live.add(self)

    # -- state

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT``; known once the broker has been started."""
        if self.port is None:
            raise KafkaLayerError("the local broker has not been started yet, so it has no port")
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The folder with the config, the data (``data/``) and ``broker.log``."""
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="hookstream-kafka-"))
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle

    def start(self, timeout: float = 120.0) -> str:
        """Start the broker (if not running) and return its bootstrap servers once it serves requests."""
        with self._lock:
            if self.running:
                return self.bootstrap_servers
            started = time.monotonic()
            self._begin_start()
            self._await_ready(started + timeout, timeout)
            self._progress(
                f"{self._name} ready at {self.bootstrap_servers} in {time.monotonic() - started:.1f}s"
            )
            return self.bootstrap_servers

    def launch(self) -> None:
        """Start the process and return at once; ``await_ready`` waits for it. A node of a cluster
        only becomes ready once a majority of the quorum runs, so a cluster launches all first."""
        with self._lock:
            if not self.running:
                self._begin_start()

    def await_ready(self, timeout: float = 120.0) -> str:
        """Wait until a ``launch``ed broker serves requests; a KafkaLayerError with its log's tail
        if it exits or is not ready within ``timeout``."""
        with self._lock:
            if self._process is None:
                raise KafkaLayerError(f"{self._name} was not launched")
            started = time.monotonic()
            self._await_ready(started + timeout, timeout)
            return self.bootstrap_servers

    @property
    def description(self) -> str:
        """How errors name this broker: "the local Kafka broker", or "node N of the local cluster"."""
        return (
            "the local Kafka broker" if self.voters is None else f"node {self.node_id} of the local cluster"
        )

    @property
    def _name(self) -> str:
        return f"Kafka {KAFKA_VERSION}" if self.voters is None else f"node {self.node_id}"

    def _begin_start(self) -> None:
        self._choose_ports()  # first: a busy port is the most common failure, and the cheapest to find
        java = find_java()
        libs = resolve_jars(self._progress)
        properties = self._write_config()
        self._format_storage(java, libs, properties)
        self._launch(java, libs, properties)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM, then SIGKILL after ``timeout``); keeps the data. Idempotent."""
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._progress(f"broker did not stop within {timeout:.0f}s; killing it")
                    _signal_group(process, signal.SIGKILL)
                    process.wait()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; ``start()`` brings it back with its data."""
        with self._lock:
            process, self._process = self._process, None
            if process is not None and process.poll() is None:
                _signal_group(process, signal.SIGKILL)
                process.wait()

    def restart(self, timeout: float = 120.0) -> str:
        """``stop()`` then ``start()`` on the same port and data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the broker and delete the data dir if it is a temporary one."""
        self.stop()
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
        _live.discard(self)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalKafka {state} port={self.port} data_dir={self._data_dir}>"

    # -- steps of start()

    def _choose_ports(self) -> None:
        if self.port is None:
            self.port = free_port()
        elif not port_is_free(self.port):
            raise KafkaLayerError(
                f"port {self.port} on {HOST} is already in use: another Kafka or program is listening there; "
                "stop it or choose another port"
            )
        if self.voters is not None:  # the quorum knows each voter by its port: it cannot move
            if not port_is_free(self.controller_port):
                raise KafkaLayerError(
                    f"controller port {self.controller_port} of node {self.node_id} on {HOST} is in use: "
                    "is this node running already? stop whatever listens there"
                )
            return
        if self.controller_port is None:
            previous = _previous_controller_port(self.data_dir / "server.properties")
            if previous is not None and previous != self.port and port_is_free(previous):
                self.controller_port = previous
        if self.controller_port is None or not port_is_free(self.controller_port):
            self.controller_port = free_port()
            while self.controller_port == self.port:  # the broker port is free until the JVM binds it
                self.controller_port = free_port()

    def _write_config(self) -> Path:
        assert self.port is not None and self.controller_port is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        properties = self.data_dir / "server.properties"
        properties.write_text(
            server_properties(
                port=self.port,
                controller_port=self.controller_port,
                log_dir=self.data_dir / "data",
                node_id=self.node_id,
                voters=self.voters,
                replication_factor=self.replication_factor,
                min_insync_replicas=self.min_insync_replicas,
            )
        )
        return properties

    def _jvm(self, java: str, libs: Path, heap: str) -> list[str]:
        return [
            java,
            f"-Xmx{heap}",
            "-Xms32m",  # grow on demand: the default (1/64 of RAM) costs RSS a local broker never needs
            "-Xss512k",
            # A small, fast-starting JVM: one GC thread, no shared perf file, and (unless it is
            # benchmarked) the client compiler only.
            "-XX:+UseSerialGC",
            *([] if self.full_jit else ["-XX:TieredStopAtLevel=1"]),
            "-XX:-UsePerfData",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def _format_storage(self, java: str, libs: Path, properties: Path) -> None:
        if (self.data_dir / "data" / "meta.properties").exists():
            return  # formatted by an earlier start: keep its cluster id and data
        self._progress(f"formatting storage in {self.data_dir / 'data'}")
        command = [
            *self._jvm(java, libs, "256m"),
            "kafka.tools.StorageTool",
            "format",
            # A static quorum (controller.quorum.voters) is formatted without naming controllers.
            *(["--standalone"] if self.voters is None else []),
            "-t",
            self.cluster_id or new_cluster_id(),
            "-c",
            str(properties),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.data_dir)
        except subprocess.TimeoutExpired as exc:
            raise KafkaLayerError("formatting the local broker's storage did not finish within 120s") from exc
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-_LOG_TAIL_LINES:])
            raise KafkaLayerError(
                f"formatting the local broker's storage failed (exit {result.returncode}):\n{tail}"
            )

    def _launch(self, java: str, libs: Path, properties: Path) -> None:
        what = "broker" if self.voters is None else f"node {self.node_id}"
        self._progress(f"starting {what} on {self.bootstrap_servers} (log: {self.log_path})")
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== hookstream: starting Kafka {KAFKA_VERSION} at {time.ctime()} ===\n".encode())
            log.flush()
            self._log_offset = log.tell()
            # Its own session (and so process group): a Ctrl-C in the terminal reaches us, not the
            # JVM, and we shut it down in order; stop() signals the whole group.
            self._process = subprocess.Popen(
                [*self._jvm(java, libs, self._heap), "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )

    def _await_ready(self, deadline: float, timeout: float) -> None:
        assert self._process is not None
        if self.voters is None:
            self._progress("waiting for the broker to serve requests…")
        seen = b""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            while True:
                seen = seen[-len(READY_MESSAGE) :] + log.read()
                if READY_MESSAGE.encode() in seen:
                    return
                if self._process.poll() is not None:
                    code = self._process.returncode
                    self._process = None
                    raise KafkaLayerError(
                        f"{self.description} exited with code {code} before it was ready; "
                        f"last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    process, self._process = self._process, None
                    _signal_group(process, signal.SIGKILL)
                    process.wait()
                    raise KafkaLayerError(
                        f"{self.description} was not ready within {timeout:.0f}s; "
                        f"last lines of {self.log_path}:\n{tail}"
                    )
                time.sleep(0.05)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the broker logged in its current (or last) run."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read()[-64 * 1024 :].decode(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])


def _die_with_parent_hook() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook so the broker gets SIGTERM when this process dies, even by SIGKILL.

    A killed test run or CLI must not leave a broker holding its port. The kernel sends the signal
    when the *thread* that started the child ends, so only a start from the main thread (which
    outlives all others) asks for it.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the hook only calls it
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # its own group: pgid == pid


# Brokers a program forgot to close would outlive it, holding their ports: close them at exit.
_live: weakref.WeakSet[LocalKafka] = weakref.WeakSet()


@atexit.register
def _close_forgotten() -> None:
    for kafka in list(_live):
        kafka.close()


# --- Foreground, for the CLI ----------------------------------------------------------------------


def serve(port: int, data_dir: Path | None, progress: Progress = _to_stderr) -> int:
    """Run a broker in the foreground until SIGINT/SIGTERM, then stop it cleanly; returns the exit code.

    Prints ``Kafka ready: bootstrap servers 127.0.0.1:PORT`` on stdout when ready; progress goes to
    ``progress`` (stderr by default). Returns 0 after a clean stop, 130 if interrupted while
    starting. Raises KafkaLayerError when the broker cannot start or dies while serving.
    """
    kafka = LocalKafka(port=port, data_dir=data_dir, progress=progress)
    ready = threading.Event()
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if not ready.is_set():
            raise KeyboardInterrupt  # abandon start(); the finally below kills the half-started JVM
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            bootstrap = kafka.start()
        except KeyboardInterrupt:
            progress("interrupted while starting Kafka")
            return 130
        ready.set()
        print(f"Kafka ready: bootstrap servers {bootstrap}", flush=True)
        while not stopping.wait(0.5):
            if not kafka.running:
                raise KafkaLayerError(
                    f"the local Kafka broker exited unexpectedly; last lines of {kafka.log_path}:\n{kafka.log_tail()}"
                )
        progress("stopping Kafka…")
        kafka.stop()
        progress("Kafka stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        kafka.close()

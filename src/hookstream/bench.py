"""``hookstream bench``: numbers you can compare between runs on the same machine.

``ingest``: the same ASGI server (uvicorn, one worker, in a child process) and the same load
generator (N concurrent keep-alive connections, for several N) against (1) a no-op Starlette
endpoint that reads the body and answers 200, and (2) the real ingest app (signature check +
durable publish to Kafka, acks=all), measured in alternating rounds after a warm-up. Quote the
ratio, not the absolute numbers: they depend on the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hookstream.errors import HookstreamError
from hookstream.kafka.local_broker import free_port
from hookstream.proc import process_cpu_seconds

SECRET = "bench-secret"
_RUN = uuid.uuid4().int >> 64
"""Half of each delivery id, random per process: ids stay unique across runs on one topic."""


class BenchError(HookstreamError):
    """A benchmark could not run; the CLI shows it as one line."""


def noop_app() -> Any:
    """The baseline: a Starlette endpoint that reads the body and answers 200."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def receive(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"status": "accepted"})

    return Starlette(routes=[Route("/webhooks/{source}", receive, methods=["POST"])])


def _serve(kind: str, port: int, config_path: str) -> None:
    """Child process entry point: serve one of the two apps as ``hookstream ingest`` does."""
    from hookstream.ingest.server import serve

    if kind == "noop":
        app = noop_app()
    else:
        from hookstream.config import load_config
        from hookstream.ingest.app import create_app
        from hookstream.stage_rules import stage_rules

        app = create_app(load_config(config_path, rules=stage_rules()), connect_timeout=60)
    serve(app, "127.0.0.1", port, log_level="warning")


def _requests(total: int, first: int = 0) -> list[tuple[bytes, dict[str, str]]]:
    """``total`` signed GitHub push deliveries, numbered from ``first`` (ids unique per process)."""
    from hookstream.ingest.providers import provider_class

    github = provider_class("github")([SECRET])
    out = []
    for i in range(first, first + total):
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "after": f"{i:040x}",
                "repository": {"full_name": f"acme/repo-{i % 50}"},
                "pad": "x" * 600,
            }
        ).encode()
        headers = github.sign(body, timestamp=0) | {
            "X-GitHub-Event": "push",
            # A GUID, as GitHub sends: the id is the record's key, hashed for its partition.
            "X-GitHub-Delivery": str(uuid.UUID(int=_RUN << 64 | i)),
        }
        out.append((body, headers))
    return out


class _Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost far less than the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def _encode(path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _load(
    port: int,
    raw: list[bytes],
    concurrency: int,
    cpu_pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Send the encoded ``raw`` requests over ``concurrency`` keep-alive connections; the numbers."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connections = [await _Connection.open("127.0.0.1", port) for _ in range(concurrency)]
    todo = iter(raw)

    async def worker(conn: _Connection) -> None:
        for request in todo:
            t0 = time.perf_counter()
            try:
                status = await conn.post(request)
            except (asyncio.IncompleteReadError, ConnectionError):
                status = 0  # the server closed the connection: count it, reconnect, go on
                conn.close()
                conn = await _Connection.open("127.0.0.1", port)
                connections.append(conn)
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    pids = cpu_pids or {}
    try:
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in list(connections)))
        elapsed = time.perf_counter() - started
        cpu_used = {name: process_cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    finally:
        for c in connections:
            c.close()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "seconds": round(elapsed, 4),
        "req_per_s": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **{f"{name}_cpu_us_per_request": round(used / n * 1e6, 1) for name, used in cpu_used.items()},
        # Below ~1.0 the server was idle part of the time: every connection was waiting (for
        # Kafka, for ingest), so more concurrency, not less CPU, would raise its req/s.
        **{f"{name}_cpu_busy": round(used / elapsed, 2) for name, used in cpu_used.items()},
    }


def _wait_http(port: int, path: str, deadline: float, child: subprocess.Popen[bytes]) -> None:
    import httpx  # here: the CLI imports this module for its defaults

    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(f"bench server exited with {child.returncode}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            if r.status_code < 500 or path == "/":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError("bench server did not become ready")


class _Server:
    """One of the two apps, served by uvicorn in a child process for the whole bench."""

    def __init__(self, kind: str, config_path: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from hookstream.bench import _serve; _serve({kind!r}, {self.port}, {config_path!r})",
            ],
            env=dict(os.environ),
        )
        self.sent = 0
        """Requests sent so far: each gets a delivery id of its own."""

    def wait_ready(self) -> None:
        _wait_http(self.port, "/readyz" if self.kind == "ingest" else "/", time.monotonic() + 120, self.child)

    def requests(self, n: int) -> list[bytes]:
        raw = [
            _encode("/webhooks/gh", self.port, body, headers)
            for body, headers in _requests(n, first=self.sent)
        ]
        self.sent += n
        return raw

    def close(self) -> None:
        self.child.terminate()
        try:
            self.child.wait(30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


def _start_broker(bootstrap: str | None, progress: Callable[[str], None]) -> tuple[Any, str]:
    """``(broker, bootstrap)``: the given cluster (broker None), else a local broker started here."""
    from hookstream.kafka.local_broker import LocalKafka

    if bootstrap:
        return None, bootstrap
    progress("bench: starting the local Kafka broker…")
    broker = LocalKafka(progress=progress, full_jit=True)
    return broker, broker.start()


def _header(name: str) -> dict[str, Any]:
    return {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def _warm_up(server: _Server, concurrency: int, seconds: float, progress: Callable[[str], None]) -> int:
    """Untimed load for at least ``seconds``: connections, caches and JITs, the broker's above all.

    A fresh broker compiles its request path only after thousands of produce requests; until
    then it spends several times the CPU per record, on the same cores as the server.
    """
    progress(f"bench: {server.kind}: warming up for {seconds:g} s…")
    deadline = time.monotonic() + seconds
    sent = 0
    while True:
        result = asyncio.run(_load(server.port, server.requests(2000), concurrency))
        sent += result["requests"]
        if time.monotonic() >= deadline:
            return sent


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r["req_per_s"])[len(runs) // 2]


CONCURRENCIES = (64, 128, 256, 512)
"""The loads ``bench ingest`` measures both apps at, by default.

Ingest's capacity grows with the requests in flight: more of them share each partition's record
batch, and a batch costs ingest and the broker about as much CPU whatever it holds. So at 64
connections ingest spends more CPU per request than at 256, and the broker more per record;
the no-op endpoint's cost does not fall with load. A closed loop of 64 connections measures
ingest below what an open stream of webhooks gets out of it, so the apps are compared at their
best over a range of loads, each load's numbers reported too.
"""


def run_ingest_bench(
    *,
    total: int,
    concurrency: int | tuple[int, ...] = CONCURRENCIES,
    bootstrap: str | None,
    progress: Callable[[str], None],
    linger_ms: int = 5,
    rounds: int = 5,
    warmup_seconds: float = 20.0,
) -> dict[str, Any]:
    """Both apps served side by side; after a warm-up, ``rounds`` rounds, each measuring both at
    every load in ``concurrency`` (connections) with ``total`` requests.

    The two are measured alternately (no-op first in odd rounds, ingest first in even ones), so
    drift in a shared machine's speed falls on both. A round's ratio is ingest's best req/s over
    the loads divided by the no-op's best (their capacities); the ratio reported is the median
    of the rounds' ratios. Each load's median numbers and ratio are kept too.
    """
    loads = (concurrency,) if isinstance(concurrency, int) else tuple(concurrency)
    broker, bootstrap = _start_broker(bootstrap, progress)
    broker_pid = broker.pid if broker else None
    servers: list[_Server] = []
    # runs[kind][load]: one result per round
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {"noop": {}, "ingest": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config_path = str(Path(tmp) / "bench.toml")
            raw_topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
            Path(config_path).write_text(
                f'[kafka]\nbootstrap_servers = "{bootstrap}"\nraw_topic = "{raw_topic}"\nlinger_ms = {linger_ms}\n'
                f'[sources.gh]\nprovider = "github"\nsecrets = ["{SECRET}"]\n'
            )
            os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None) if broker else None
            for kind in ("noop", "ingest"):
                servers.append(_Server(kind, config_path))  # each closed below, even if the next fails
            noop, ingest = servers
            for server in servers:
                server.wait_ready()
            _warm_up(noop, loads[0], min(warmup_seconds, 2.0), progress)
            warmed = _warm_up(ingest, loads[0], warmup_seconds, progress)
            others = {"client": os.getpid()} | ({"broker": broker_pid} if broker_pid else {})
            for i in range(rounds):
                for load in loads:
                    for server in (noop, ingest) if i % 2 == 0 else (ingest, noop):
                        progress(
                            f"bench: round {i + 1}/{rounds}: {server.kind}: {total} requests, {load} concurrent…"
                        )
                        raw = server.requests(total)
                        result = asyncio.run(
                            _load(server.port, raw, load, {"server": server.child.pid} | others)
                        )
                        runs[server.kind].setdefault(load, []).append(result)
    finally:
        for server in servers:
            server.close()
        if broker is not None:
            broker.stop()

    def best(kind: str, i: int) -> tuple[int, dict[str, Any]]:
        """The load at which ``kind`` did best in round ``i``, and that run."""
        return max(((load, runs[kind][load][i]) for load in loads), key=lambda lr: lr[1]["req_per_s"])

    per_round = []
    for i in range(rounds):
        (n_load, n), (g_load, g) = best("noop", i), best("ingest", i)
        per_round.append(
            {
                "noop_req_per_s": n["req_per_s"],
                "noop_concurrency": n_load,
                "ingest_req_per_s": g["req_per_s"],
                "ingest_concurrency": g_load,
                "ratio": round(g["req_per_s"] / n["req_per_s"], 3),
            }
        )
    by_load = {}
    for load in loads:
        pairs = list(zip(runs["noop"][load], runs["ingest"][load], strict=True))
        load_ratio = statistics.median(g["req_per_s"] / n["req_per_s"] for n, g in pairs)
        noop_run, ingest_run = _median_run(runs["noop"][load]), _median_run(runs["ingest"][load])
        by_load[str(load)] = {"noop": noop_run, "ingest": ingest_run, "ratio": round(load_ratio, 3)}
        progress(
            f"bench: {load} concurrent: no-op {noop_run['req_per_s']:.0f} req/s, "
            f"ingest {ingest_run['req_per_s']:.0f} req/s, ratio {load_ratio:.3f} (median rounds)"
        )
    ratio = statistics.median(r["ratio"] for r in per_round)
    progress(f"bench: ratio of the best req/s, ingest / no-op, median of {rounds} round(s): {ratio:.3f}")
    # The apps' numbers in the round with the median ratio (the upper one of an even count).
    middle = sorted(range(rounds), key=lambda i: per_round[i]["ratio"])[rounds // 2]
    (n_load, n), (g_load, g) = best("noop", middle), best("ingest", middle)
    return {
        **_header("ingest"),
        "load": {
            "requests_per_round": total,
            "rounds": rounds,
            "concurrency": list(loads),
            "linger_ms": linger_ms,
            "warmup_seconds": warmup_seconds,
            "warmup_ingest_requests": warmed,
            "raw_topic": raw_topic,
            "body_bytes": len(_requests(1)[0][0]),
        },
        "noop": {"concurrency": n_load, **n},
        "ingest": {"concurrency": g_load, **g},
        "ratio_ingest_to_noop": round(ratio, 3),
        "rounds": per_round,
        "by_concurrency": by_load,
    }


# -- end to end ---------------------------------------------------------------------------------
def run_e2e_bench(
    *, rate: int, seconds: float, bootstrap: str | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Latency from ingest's 2xx to a consumer's handler, through the real streams worker, at a fixed rate.

    Ingest and the streams worker run as child processes with the default settings (only the
    topic names are unique to the run); the consumer runs here with a handler that notes when
    each event arrived.
    """
    broker, bootstrap = _start_broker(bootstrap, progress)
    children: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            suffix = uuid.uuid4().hex[:8]
            port = free_port()
            config_path = str(Path(tmp) / "bench.toml")
            Path(config_path).write_text(
                f'[kafka]\nbootstrap_servers = "{bootstrap}"\nraw_topic = "bench.raw.{suffix}"\n'
                f'events_topic = "bench.events.{suffix}"\n'
                f"[ingest]\nport = {port}\n"
                f'[streams]\napp_id = "bench-streams-{suffix}"\ndata_dir = "{tmp}/streams"\nweb_port = {free_port()}\n'
                f'[sources.gh]\nprovider = "github"\nsecrets = ["{SECRET}"]\n'
            )
            env = dict(os.environ)
            env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
            ingest = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"from hookstream.bench import _serve; _serve('ingest', {port}, {config_path!r})",
                ],
                env=env,
            )
            children.append(ingest)
            _wait_http(port, "/readyz", time.monotonic() + 120, ingest)
            progress("bench: starting the streams worker…")
            streams_log_path = Path(tmp) / "streams.log"
            with streams_log_path.open("wb") as streams_log:  # the child keeps its own handle
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "hookstream.streams", "--config", config_path],
                        env=env,
                        stdout=streams_log,
                        stderr=subprocess.STDOUT,
                    )
                )
            from hookstream.config import load_config

            config = load_config(config_path)
            try:
                result = asyncio.run(_e2e(config, port, rate, seconds, progress))
            except BenchError as exc:
                tail = streams_log_path.read_text(errors="replace").splitlines()[-15:]
                raise BenchError(f"{exc}; last lines of the streams worker:\n" + "\n".join(tail)) from None
    finally:
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if broker is not None:
            broker.stop()
    return {
        **_header("e2e"),
        **result,
    }


async def _e2e(
    config: Any, port: int, rate: int, seconds: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    from hookstream.config import ConsumerConfig
    from hookstream.consumers.actions import FunctionAction
    from hookstream.consumers.events import Event
    from hookstream.consumers.patterns import EventFilter
    from hookstream.consumers.registry import ConsumerSpec
    from hookstream.consumers.runtime import ConsumerRuntime
    from hookstream.ingest.providers import provider_class

    github = provider_class("github")([SECRET])
    acked: dict[str, float] = {}
    handled: dict[str, float] = {}
    late = 0

    async def handler(event: Event) -> None:
        nonlocal late
        handled.setdefault(event.id, time.time())
        late += event.late

    settings = ConsumerConfig(name=f"bench-e2e-{uuid.uuid4().hex[:6]}", start="earliest")
    spec = ConsumerSpec(settings, EventFilter.of(["*"]), lambda: FunctionAction(handler, "bench"), "bench")
    stopping = asyncio.Event()
    runtime = ConsumerRuntime(config.kafka, spec, stopping=stopping, progress=progress)
    consumer_task = asyncio.create_task(runtime.run())
    connection = await _Connection.open("127.0.0.1", port)
    run = uuid.uuid4().hex[:8]

    def request(name: str, n: int) -> bytes:
        body = json.dumps({"n": n, "repository": {"full_name": f"acme/repo-{n % 20}"}}).encode()
        headers = github.sign(body, timestamp=0) | {"X-GitHub-Event": "push", "X-GitHub-Delivery": name}
        return _encode("/webhooks/gh", port, body, headers)

    try:
        progress("bench: waiting for the first event to get through (worker start, rebalance)…")
        deadline = time.monotonic() + 180
        n = 0
        while not handled:
            if time.monotonic() > deadline:
                raise BenchError("no event reached the consumer in 180 s")
            if consumer_task.done():
                consumer_task.result()
            await connection.post(request(f"{run}-warm-{n}", n))
            n += 1
            await asyncio.sleep(0.5)
        total = int(rate * seconds)
        progress(f"bench: {total} events at {rate}/s through ingest → streams → consumer…")
        connections = [await _Connection.open("127.0.0.1", port) for _ in range(16)]
        statuses: dict[int, int] = {}

        async def send(i: int) -> None:
            name = f"{run}-{i}"
            conn = connections[i % len(connections)]
            async with locks[i % len(connections)]:
                status = await conn.post(request(name, i))
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                acked[name] = time.time()

        locks = [asyncio.Lock() for _ in connections]
        started = time.monotonic()
        tasks = []
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i)))
        await asyncio.gather(*tasks)
        sent_for = time.monotonic() - started
        deadline = time.monotonic() + 60
        while any(name not in handled for name in acked) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # a bounded poll after sending; the handler knows no total
        for conn in connections:
            conn.close()
    finally:
        connection.close()
        stopping.set()
        await consumer_task
    latencies = sorted((handled[name] - t) * 1000 for name, t in acked.items() if name in handled)
    missing = sum(1 for name in acked if name not in handled)
    count = len(latencies)
    return {
        "rate_target": rate,
        "rate_achieved": round(total / sent_for, 1),
        "events_acknowledged": len(acked),
        "events_handled": count,
        "missing": missing,
        "late": late,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_2xx_to_handler_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p99": round(percentile(latencies, 0.99), 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
        },
    }


# -- dedupe throughput ----------------------------------------------------------------------------
def run_dedupe_bench(
    *, n: int, partitions: int, duplicate_every: int, bootstrap: str | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Events per second one streams worker dedupes from a backlog (see ``streams.worker_bench``)."""
    from hookstream.streams.worker_bench import measure_dedupe_throughput

    broker, bootstrap = _start_broker(bootstrap, progress)
    try:
        progress(f"bench: {n} raw records (one in {duplicate_every} a duplicate) through one streams worker…")
        try:
            result = asyncio.run(
                measure_dedupe_throughput(
                    bootstrap, n, partitions=partitions, duplicate_every=duplicate_every
                )
            )
        except TimeoutError as exc:
            raise BenchError(str(exc)) from None
    finally:
        if broker is not None:
            broker.stop()
    return {
        **_header("dedupe"),
        **result,
    }


# -- memory: a worker that remembers many event ids ----------------------------------------------
MEMORY_TARGETS = {"rocksdb://": {"rss_mb": 400, "recovery_seconds": 30}}


def run_memory_bench(
    *,
    ids: int,
    stores: tuple[str, ...],
    partitions: int,
    bootstrap: str | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The worker's RSS while it remembers ``ids`` event ids, per table store, and its recovery."""
    from hookstream.streams.worker_bench import measure_memory

    broker, bootstrap = _start_broker(bootstrap, progress)
    runs = []
    try:
        for store in stores:
            try:
                run = asyncio.run(
                    measure_memory(bootstrap, ids, store=store, partitions=partitions, progress=progress)
                )
            except TimeoutError as exc:
                raise BenchError(str(exc)) from None
            targets = MEMORY_TARGETS.get(store)
            if targets is not None:
                run["targets"] = targets
                run["meets_targets"] = all(run[k] is not None and run[k] < v for k, v in targets.items())
            runs.append(run)
    finally:
        if broker is not None:
            broker.stop()
    return {**_header("memory"), "runs": runs}


# -- pipeline: ingest's rate against one streams worker's ----------------------------------------
def _stripe_requests(
    port: int, first: int, total: int, *, duplicate_every: int, keys: int, run: str
) -> tuple[list[bytes], list[str]]:
    """Signed Stripe ``payment_intent.succeeded`` deliveries of about 1 KB, request numbers
    ``first..first+total-1``; one in ``duplicate_every`` repeats an earlier event (a provider
    retry: same id and body). Returns the encoded requests and their event ids."""
    from hookstream.ingest.providers import provider_class

    stripe = provider_class("stripe")([SECRET])
    now = int(time.time())
    raw, ids = [], []
    for i in range(first, first + total):
        number = i - i // duplicate_every if (i + 1) % duplicate_every else i // duplicate_every
        event_id = f"evt_{run}{number:09d}"
        sample = stripe.sample(
            "payment_intent.succeeded", now=now, event_id=event_id, resource_id=f"pi_{run}{number % keys:07d}"
        )
        payload = json.loads(sample.body)
        payload["data"]["object"]["description"] = "x" * max(0, 1024 - len(sample.body) - 20)
        body = json.dumps(payload, indent=2).encode()
        raw.append(_encode("/webhooks/stripe", port, body, stripe.sign(body, timestamp=now)))
        ids.append(event_id)
    return raw, ids


def run_pipeline_bench(
    *,
    n: int,
    concurrency: int,
    partitions: int,
    duplicate_every: int,
    warmup: int,
    bootstrap: str | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """In one run: the events/s one ingest process accepts (verified, durably acknowledged), then
    the events/s one streams worker dedupes and orders from the backlog that left, and their ratio.

    Ingest is stopped before the worker starts, so neither takes CPU from the other. The backlog
    is everything ingest accepted, the warm-up included; the worker's rate is over all of it.
    """
    from hookstream.config import load_config
    from hookstream.streams.topics import create_topics
    from hookstream.streams.worker_bench import measure_drain

    broker, bootstrap = _start_broker(bootstrap, progress)
    suffix = uuid.uuid4().hex[:8]
    try:
        with tempfile.TemporaryDirectory(prefix="hookstream-bench-") as tmp:
            config_path = Path(tmp) / "bench.toml"
            config_path.write_text(
                f'[kafka]\nbootstrap_servers = "{bootstrap}"\nraw_topic = "bench.raw.{suffix}"\n'
                f'events_topic = "bench.events.{suffix}"\npartitions = {partitions}\nlinger_ms = 5\n'
                f'[streams]\napp_id = "bench-streams-{suffix}"\ndata_dir = "{tmp}/streams"\nweb_port = {free_port()}\n'
                f'[sources.stripe]\nprovider = "stripe"\nsecrets = ["{SECRET}"]\n'
            )
            os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None) if broker else None
            config = load_config(config_path)
            asyncio.run(create_topics(config))
            server = _Server("ingest", str(config_path))
            try:
                server.wait_ready()
                keys = max(1, (warmup + n) // 10)
                warm, warm_ids = _stripe_requests(
                    server.port, 0, warmup, duplicate_every=duplicate_every, keys=keys, run=suffix
                )
                timed, timed_ids = _stripe_requests(
                    server.port, warmup, n, duplicate_every=duplicate_every, keys=keys, run=suffix
                )
                progress(f"bench: warming ingest up with {warmup} requests…")
                warm_run = asyncio.run(_load(server.port, warm, concurrency))
                progress(f"bench: ingest: {n} Stripe events of ~1 KB, {concurrency} concurrent…")
                ingest = asyncio.run(_load(server.port, timed, concurrency, {"server": server.child.pid}))
            finally:
                server.close()
            accepted = warm_run["statuses"].get("200", 0) + ingest["statuses"].get("200", 0)
            if accepted != warmup + n:
                raise BenchError(
                    f"ingest accepted {accepted} of {warmup + n} requests: {warm_run['statuses']} {ingest['statuses']}"
                )
            unique = len(set(warm_ids) | set(timed_ids))
            progress(
                f"bench: ingest accepted {ingest['req_per_s']:.0f} events/s; one streams worker drains the {accepted}…"
            )
            try:
                streams = asyncio.run(
                    measure_drain(config_path, Path(tmp) / "streams.log", accepted, unique, progress=progress)
                )
            except TimeoutError as exc:
                raise BenchError(str(exc)) from None
    finally:
        if broker is not None:
            broker.stop()
    if streams["published"] < unique:
        raise BenchError(f"the worker published {streams['published']} of {unique} distinct events")
    ratio = streams["end_to_end_events_per_s"] / ingest["req_per_s"]
    progress(
        f"bench: ingest {ingest['req_per_s']:.0f} events/s, one streams worker "
        f"{streams['end_to_end_events_per_s']} events/s (dedupe + order): ratio {ratio:.3f}"
    )
    return {
        **_header("pipeline"),
        "load": {
            "events": n,
            "warmup_events": warmup,
            "concurrency": concurrency,
            "partitions": partitions,
            "duplicate_every": duplicate_every,
            "ordering_keys": keys,
            "body_bytes": len(timed[0].split(b"\r\n\r\n", 1)[1]),
            "acks": "all",
            "raw_topic": config.kafka.raw_topic,
            "events_topic": config.kafka.events_topic,
        },
        "ingest": ingest,
        "streams": {"raw_records": accepted, "distinct_events": unique, **streams},
        "ratio_streams_to_ingest": round(ratio, 3),
    }

"""The ``hookstream`` command. Errors are one readable line and a non-zero exit, never a traceback:
1 for a failed operation (including a refused signature in ``verify``), 2 for usage errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hookstream import __version__
from hookstream.bench import CONCURRENCIES
from hookstream.cli_options import config_option
from hookstream.errors import HookstreamError

F = TypeVar("F", bound=Callable[..., Any])

# The parts `hookstream dev` runs by default.
DEV_PARTS = ["ingest", "streams", "consumers", "console"]


def fail(message: str, code: int = 1) -> None:
    click.echo(f"hookstream: error: {message}", err=True)
    sys.exit(code)


def progress(message: str) -> None:
    click.echo(message, err=True)


class Group(click.Group):
    """Turns every HookstreamError (and Ctrl-C) into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HookstreamError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hookstream")
def main() -> None:
    """hookstream: verify webhooks, publish them durably to Kafka, dedupe, order and fan out."""


# -- kafka --------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--port",
    default=9092,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Broker port on 127.0.0.1; a cluster's nodes take PORT, PORT+1, ….",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the log here (default: a temp dir, deleted on exit); a cluster's node N under node-N.",
)
@click.option(
    "--brokers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 9),
    help="Nodes of a local KRaft cluster (each a broker and a controller).",
)
@click.option(
    "--node",
    "node_id",
    type=click.IntRange(1, 9),
    help="Start only this node of the cluster, on its data (same --brokers, --port, --data-dir).",
)
def kafka(port: int, data_dir: Path | None, brokers: int, node_id: int | None) -> None:
    """Run a local KRaft Apache Kafka broker, or a cluster of --brokers N, in the foreground (jars from Maven Central, cached)."""
    if brokers == 1:
        if node_id is not None:
            fail("--node restarts one node of a cluster: pass --brokers N (2 or more) too")
        from hookstream.kafka.local_broker import serve

        sys.exit(serve(port, data_dir))
    from hookstream.kafka.local_cluster import serve_cluster

    sys.exit(serve_cluster(brokers, port, data_dir, node_id))


# -- ingest -------------------------------------------------------------------------------------
@main.command()
@config_option
@click.option("--host", help="Bind address (default: [ingest].host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [ingest].port, 8000).")
def ingest(config_path: str | None, host: str | None, port: int | None) -> None:
    """Serve the ingest app (POST /webhooks/{source})."""
    from hookstream.config import load_config
    from hookstream.ingest.app import create_app
    from hookstream.ingest.server import serve
    from hookstream.logs import configure_logging
    from hookstream.stage_rules import stage_rules

    config = load_config(config_path, rules=stage_rules())
    configure_logging()
    app = create_app(config, connect_timeout=10)
    bind_host = host or config.ingest.host
    bind_port = port or config.ingest.port
    progress(
        f"ingest: serving {len(config.sources)} source(s) on http://{bind_host}:{bind_port}/webhooks/<source>"
    )
    serve(app, bind_host, bind_port, log_config=None, timeout_graceful_shutdown=30)


# -- dev ----------------------------------------------------------------------------------------
@main.command()
@config_option
@click.option(
    "--only",
    "parts",
    multiple=True,
    type=click.Choice(DEV_PARTS),
    help="Run only these parts (repeat); default all.",
)
def dev(config_path: str | None, parts: tuple[str, ...]) -> None:
    """Everything at once for a local try-out: broker, ingest, streams, consumers, console. Ctrl-C stops all."""
    from hookstream.config import load_config
    from hookstream.dev import run_dev
    from hookstream.stage_rules import stage_rules

    path = config_path or "examples/dev.toml"
    config = load_config(path, rules=stage_rules())
    chosen = list(parts) or DEV_PARTS
    sys.exit(run_dev(config, path, chosen, lambda line: click.echo(line, err=True)))


# -- verify -------------------------------------------------------------------------------------
def _provider_choice() -> list[str]:
    from hookstream.ingest.providers import PROVIDERS

    return sorted(PROVIDERS)


@main.command()
@click.argument("provider")
@click.option(
    "--secret", "secrets", multiple=True, required=True, help="Secret (repeat for rotation: old and new)."
)
@click.option(
    "--body-file",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The raw body, byte-exact (- for stdin).",
)
@click.option("--header", "headers", multiple=True, help='A request header, "Name: value" (repeat).')
@click.option(
    "--url", default="", help="The URL the provider called (URL-signing providers: twilio, square)."
)
@click.option("--at", "at", type=float, help="Evaluate timestamps as if the clock read this Unix time.")
@click.option(
    "--tolerance", type=click.IntRange(min=0), help="Timestamp tolerance in seconds (0 = no check)."
)
def verify(
    provider: str,
    secrets: tuple[str, ...],
    body_file: str,
    headers: tuple[str, ...],
    url: str,
    at: float | None,
    tolerance: int | None,
) -> None:
    """Check one captured request offline and say exactly why it verifies or not."""
    from hookstream.errors import VerificationError
    from hookstream.ingest.providers import PROVIDERS, Delivery

    if provider not in PROVIDERS:
        raise click.UsageError(f"unknown provider {provider!r}; known: {', '.join(_provider_choice())}")
    parsed: list[tuple[str, str]] = []
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise click.UsageError(f'--header {h!r} must look like "Name: value"')
        parsed.append((name.strip(), value.strip()))
    try:
        body = sys.stdin.buffer.read() if body_file == "-" else Path(body_file).read_bytes()
    except OSError as exc:
        fail(f"cannot read --body-file {body_file}: {exc.strerror}", 2)
    try:
        verifier = PROVIDERS[provider](list(secrets), tolerance=tolerance)
    except ValueError as exc:
        raise click.UsageError(f"--secret: {exc}") from None
    delivery = Delivery.of(body, parsed, url=url)
    try:
        index = verifier.verify(delivery, now=at)
    except VerificationError as exc:
        click.echo(f"not verified: {exc.code}: {exc.detail}")
        sys.exit(1)
    which = f"--secret #{index + 1} of {len(secrets)}" if len(secrets) > 1 else "the secret"
    click.echo(f"verified: {provider} signature matches {which}")


# -- send ---------------------------------------------------------------------------------------
@main.command()
@config_option
@click.argument("source")
@click.argument("event_type", required=False)
@click.option("--url", help="Where to POST (default: the configured ingest address).")
@click.option("--event-id", default="", help="Use this event id (send twice to see deduplication).")
@click.option(
    "--resource", "resource_id", default="", help="Resource id the event is about (sets its ordering key)."
)
@click.option(
    "--repeat", default=1, show_default=True, type=click.IntRange(1, 10_000), help="Send it this many times."
)
def send(
    config_path: str | None,
    source: str,
    event_type: str | None,
    url: str | None,
    event_id: str,
    resource_id: str,
    repeat: int,
) -> None:
    """Sign and send a realistic sample event for SOURCE, as its provider would."""
    import httpx

    from hookstream.config import load_config
    from hookstream.stage_rules import stage_rules

    config = load_config(config_path, rules=stage_rules())
    if source not in config.sources:
        fail(f"no source named {source!r} in the config; configured: {', '.join(config.sources) or 'none'}")
    s = config.sources[source]
    provider = config.providers[source]
    target = url or f"http://{config.ingest.host}:{config.ingest.port}/webhooks/{source}"
    signed_url = s.public_url or target
    failures = 0
    with httpx.Client(timeout=30) as client:
        for _ in range(repeat):
            try:
                sample = provider.sample(
                    event_type or provider.sample_event_type,
                    now=int(time.time()),
                    url=signed_url,
                    event_id=event_id,
                    resource_id=resource_id,
                )
            except NotImplementedError as exc:
                fail(f"cannot sign a {s.provider} sample for source {source!r}: {exc}")
            try:
                response = client.post(target, content=sample.body, headers=sample.headers)
            except httpx.HTTPError as exc:
                fail(f"cannot reach {target}: {exc}")
            click.echo(f"{response.status_code} {response.text.strip()}")
            failures += response.status_code >= 300
    sys.exit(1 if failures else 0)


# -- providers ----------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def providers(as_json: bool) -> None:
    """List supported providers, their headers, secret formats and defaults."""
    from hookstream.ingest.providers import PROVIDERS

    rows = [
        {
            "provider": name,
            "summary": cls.summary,
            "headers": list(cls.signature_headers),
            "secret": cls.secret_format,
            "default_tolerance_seconds": cls.default_tolerance,
            "options": list(cls.options),
            "sample_event_type": cls.sample_event_type,
        }
        for name, cls in sorted(PROVIDERS.items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        tol = (
            f"{row['default_tolerance_seconds']} s"
            if row["default_tolerance_seconds"]
            else "none (no timestamp in the scheme)"
        )
        click.echo(
            f"{row['provider']}\n  {row['summary']}\n  headers:   {', '.join(row['headers'])}\n  secret:    {row['secret']}\n  tolerance: {tol}"
        )
        if row["options"]:
            click.echo(f"  options:   {', '.join(row['options'])}")


# -- tail ---------------------------------------------------------------------------------------
@main.command()
@config_option
@click.option("--topic", help="Topic to read (default: the raw topic).")
@click.option("--from-beginning/--from-end", default=True, show_default=True)
@click.option("--max", "max_events", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option("--timeout", type=float, help="Stop after this many seconds without a new event.")
def tail(
    config_path: str | None,
    topic: str | None,
    from_beginning: bool,
    max_events: int | None,
    timeout: float | None,
) -> None:
    """Print events from a hookstream topic as JSON lines (body decoded where it is text)."""
    from hookstream.config import load_config
    from hookstream.stage_rules import stage_rules
    from hookstream.tail import tail_topic

    config = load_config(config_path, rules=stage_rules())
    count = asyncio.run(
        tail_topic(config, topic or config.kafka.raw_topic, from_beginning, max_events, timeout, click.echo)
    )
    progress(f"tail: {count} event(s)")


# -- bench --------------------------------------------------------------------------------------
@main.group()
def bench() -> None:
    """Benchmarks that write comparable numbers (JSON) to bench-results/."""


bench_bootstrap_option = click.option(
    "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Use this Kafka (default: start the local broker)."
)


def bench_out_option(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path(f"bench-results/{name}.json"),
        show_default=True,
    )


def _write_bench(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(json.dumps(result, indent=2))
    progress(f"bench: wrote {out}")


def _concurrencies(value: str) -> tuple[int, ...]:
    try:
        loads = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not all(1 <= n <= 1024 for n in loads):
        raise click.BadParameter(f"{value!r}: each must be from 1 to 1024")
    return tuple(dict.fromkeys(loads))


@bench.command("ingest")
@click.option(
    "--requests",
    "total",
    default=10000,
    show_default=True,
    type=click.IntRange(min=100),
    help="Per app and round.",
)
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option(
    "--concurrency",
    default=",".join(map(str, CONCURRENCIES)),
    show_default=True,
    callback=lambda ctx, param, value: _concurrencies(value),
    help="Connections; a comma-separated list measures both apps at each (the ratio compares their best).",
)
@click.option(
    "--warmup-seconds",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0, 600),
    help="Untimed load on ingest first (the broker's JIT needs it).",
)
@bench_bootstrap_option
@click.option(
    "--linger-ms",
    default=5,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Producer linger for the ingest run.",
)
@bench_out_option("ingest")
def bench_ingest(out: Path, **options: Any) -> None:
    """No-op Starlette endpoint vs real ingest (verify + durable publish), same server and load."""
    from hookstream.bench import run_ingest_bench

    _write_bench(run_ingest_bench(progress=progress, **options), out)


@bench.command("e2e")
@click.option(
    "--rate", default=200, show_default=True, type=click.IntRange(1, 5000), help="Requests per second."
)
@click.option("--seconds", default=15.0, show_default=True, type=click.FloatRange(1, 600))
@bench_bootstrap_option
@bench_out_option("e2e")
def bench_e2e(rate: int, seconds: float, bootstrap: str | None, out: Path) -> None:
    """Latency from ingest's 2xx to a consumer's handler through the streams worker, at a fixed rate."""
    from hookstream.bench import run_e2e_bench

    result = run_e2e_bench(rate=rate, seconds=seconds, bootstrap=bootstrap, progress=progress)
    _write_bench(result, out)


def bench_backlog_options(events: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The shape of the backlog a streams benchmark drains."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            (
                click.option(
                    "--events", "n", default=events, show_default=True, type=click.IntRange(100, 10_000_000)
                ),
                click.option("--partitions", default=8, show_default=True, type=click.IntRange(1, 256)),
                click.option(
                    "--duplicate-every",
                    default=10,
                    show_default=True,
                    type=click.IntRange(2, 1000),
                    help="One delivery in this many repeats an earlier event id (a provider retry).",
                ),
            )
        ):
            f = option(f)
        return f

    return decorate


@bench.command("dedupe")
@bench_backlog_options(20000)
@bench_bootstrap_option
@bench_out_option("dedupe")
def bench_dedupe(n: int, partitions: int, duplicate_every: int, bootstrap: str | None, out: Path) -> None:
    """Events per second one streams worker dedupes (and sequences) from a backlog of raw records."""
    from hookstream.bench import run_dedupe_bench

    result = run_dedupe_bench(
        n=n, partitions=partitions, duplicate_every=duplicate_every, bootstrap=bootstrap, progress=progress
    )
    _write_bench(result, out)


@bench.command("memory")
@click.option(
    "--ids",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(1000, 100_000_000),
    help="Event ids to remember.",
)
@click.option(
    "--store",
    type=click.Choice(["memory", "rocksdb", "both"]),
    default="both",
    show_default=True,
    help="The table store to measure.",
)
@click.option("--partitions", default=8, show_default=True, type=click.IntRange(1, 256))
@bench_bootstrap_option
@bench_out_option("memory")
def bench_memory(ids: int, store: str, partitions: int, bootstrap: str | None, out: Path) -> None:
    """A streams worker's RSS while it remembers many event ids, and its recovery after a restart."""
    from hookstream.bench import run_memory_bench

    stores = ("memory://", "rocksdb://") if store == "both" else (f"{store}://",)
    _write_bench(
        run_memory_bench(
            ids=ids, stores=stores, partitions=partitions, bootstrap=bootstrap, progress=progress
        ),
        out,
    )


@bench.command("pipeline")
@bench_backlog_options(30000)
@click.option("--concurrency", default=256, show_default=True, type=click.IntRange(1, 4096))
@click.option(
    "--warmup", default=5000, show_default=True, type=click.IntRange(0, 1_000_000), help="Requests first."
)
@bench_bootstrap_option
@bench_out_option("pipeline")
def bench_pipeline(out: Path, **options: Any) -> None:
    """Events/s one ingest process accepts vs one streams worker dedupes and orders, and their ratio."""
    from hookstream.bench import run_pipeline_bench

    _write_bench(run_pipeline_bench(progress=progress, **options), out)


@bench.command("console")
@click.option("--events", "n", default=200_000, show_default=True, type=click.IntRange(1000, 10_000_000))
@click.option("--partitions", default=8, show_default=True, type=click.IntRange(1, 256))
@bench_bootstrap_option
@bench_out_option("console")
def bench_console(n: int, partitions: int, bootstrap: str | None, out: Path) -> None:
    """How fast the console's first page of Events answers with many events in the raw topic."""
    from hookstream.bench import _header, _start_broker
    from hookstream.console.bench import measure_events_page

    broker, bootstrap = _start_broker(bootstrap, progress)
    try:
        result = asyncio.run(measure_events_page(bootstrap, n, partitions=partitions, progress=progress))
    finally:
        if broker is not None:
            broker.stop()
    _write_bench({**_header("console"), **result}, out)


def _register_stage_commands() -> None:
    """The streams and consumers stages and the console bring their own commands; the CLI only lists them."""
    from hookstream.console.commands import console
    from hookstream.consumers.commands import COMMANDS as consumer_commands
    from hookstream.streams.worker import streams

    for command in (streams, *consumer_commands, console):
        main.add_command(command)


_register_stage_commands()

if __name__ == "__main__":
    main()

"""Click commands for consumers: ``consume``, ``replay`` and the ``dlq`` group (list, redrive).

Registered in the main CLI (``main.add_command(consume)`` …); they raise HookstreamError
subclasses, which the main CLI turns into one line and exit 1. ``python -m hookstream.consumers``
runs them on their own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import orjson
from aiokafka.errors import KafkaError

from hookstream.cli_options import config_option
from hookstream.config import Config, load_config
from hookstream.stage_rules import stage_rules

from .errors import ConsumerError
from .registry import resolve_consumers

T = TypeVar("T")

module_option = click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first, so its @consumer declarations can be named (repeat for more).",
)


def progress(message: str) -> None:
    click.echo(message, err=True)


def _load(config_path: str | None) -> Config:
    config = load_config(config_path, rules=stage_rules())
    # Like `python -m`, let --module and "module:function" actions find code in the working directory.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    return config


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run ``main(stopping)``; the first SIGTERM/SIGINT sets ``stopping`` (graceful: running
    handlers finish, offsets are committed), a second one cancels at once (exit 130)."""

    async def runner() -> T:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(name: str) -> None:
            if stopping.is_set():
                progress(f"{name} again: stopping now; unfinished events will be delivered again")
                task.cancel()
                return
            progress(
                f"{name}: stopping: letting running handlers finish, then committing ({name} again forces)"
            )
            stopping.set()

        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            return await main(stopping)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(runner())
    except asyncio.CancelledError:
        sys.exit(130)
    except KafkaError as exc:
        raise ConsumerError(f"Kafka: {exc}") from None


def _configure_logging() -> None:
    from hookstream.logs import configure_logging

    configure_logging()


# -- consume ------------------------------------------------------------------------------------
@click.command("consume")
@config_option
@module_option
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve the consumers' Prometheus metrics at http://HOST:PORT/metrics.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics server binds to."
)
@click.argument("names", nargs=-1, required=True)
def consume(
    config_path: str | None,
    modules: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
    names: tuple[str, ...],
) -> None:
    """Run the consumers NAME… until SIGTERM or Ctrl-C.

    A NAME is a [consumers.NAME] table of the config, or a @consumer declared in a --module.
    On a stop, running handlers finish (up to drain_timeout_seconds) and offsets are committed.
    """
    from .metrics import ConsumerMetrics
    from .runtime import run_consumers

    config = _load(config_path)
    specs = resolve_consumers(config, names, modules=modules)
    _configure_logging()
    metrics = ConsumerMetrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, metrics_host, registry=metrics.registry)
        except OSError as exc:
            raise ConsumerError(f"--metrics-port {metrics_port}: cannot listen: {exc.strerror}") from None
        progress(f"consume: metrics at http://{metrics_host}:{metrics_port}/metrics")
    progress(
        f"consume: {', '.join(s.name for s in specs)} on {config.kafka.events_topic} ({config.kafka.bootstrap_servers})"
    )
    run_until_signalled(
        lambda stopping: run_consumers(
            config.kafka, specs, stopping=stopping, progress=progress, metrics=metrics
        )
    )


# -- replay -------------------------------------------------------------------------------------
@click.command("replay")
@config_option
@module_option
@click.argument("name")
@click.option(
    "--from-offset",
    "from_offsets",
    multiple=True,
    metavar="P:O",
    help="Partition P of the events topic from offset O to its current end (repeat for more partitions).",
)
@click.option(
    "--from-time", metavar="ISO8601", help="Every partition, from the first event at or after this time."
)
@click.option(
    "--event-id", "event_ids", multiple=True, metavar="ID", help="Just the event with this id (repeat)."
)
def replay(
    config_path: str | None,
    modules: tuple[str, ...],
    name: str,
    from_offsets: tuple[str, ...],
    from_time: str | None,
    event_ids: tuple[str, ...],
) -> None:
    """Run consumer NAME's handler again over past events, here, then exit.

    Only NAME is affected: no consumer group's offsets move, and replayed events bypass NAME's
    idempotency on purpose (they are re-delivered). NAME must be stopped while it runs.
    """
    from .replay import parse_partition_offset, parse_time
    from .replay import replay as run_replay

    kinds = sum(bool(x) for x in (from_offsets, from_time, event_ids))
    if kinds != 1:
        raise click.UsageError("give exactly one of --from-offset P:O, --from-time ISO8601, --event-id ID")
    offsets: dict[int, int] = {}
    for text in from_offsets:
        partition, offset = parse_partition_offset(text)
        offsets[partition] = offset
    since = parse_time(from_time) if from_time else None
    config = _load(config_path)
    [spec] = resolve_consumers(config, [name], modules=modules)
    _configure_logging()
    report = run_until_signalled(
        lambda stopping: run_replay(
            config.kafka,
            spec,
            from_offsets=offsets or None,
            from_time=since,
            event_ids=set(event_ids) or None,
            progress=progress,
            stopping=stopping,
        )
    )
    click.echo(report.summary(name))
    if report.dead_lettered or report.interrupted:
        sys.exit(1)


# -- dlq ----------------------------------------------------------------------------------------
@click.group("dlq")
def dlq() -> None:
    """A consumer's dead letters (topic hookstream.dlq.CONSUMER): list them, redrive them."""


def dlq_entry_row(entry: Any) -> dict[str, Any]:
    """One dead letter as `dlq list` prints it (the console shows the same fields)."""
    from hookstream.schemas.envelope import decode_raw_event

    row: dict[str, Any] = {"dlq_offset": f"{entry.partition}:{entry.offset}", "pending": entry.pending}
    if entry.letter is None:
        row["problem"] = entry.problem
        return row
    row.update(entry.letter.summary())
    try:
        raw = decode_raw_event(entry.letter.value, entry.letter.original_headers)
        row["event"] = f"{raw.source}:{raw.event_type}"
    except Exception:  # shown as unknown; the error column says why it failed
        row["event"] = "?"
    return row


@dlq.command("list")
@config_option
@click.argument("name")
@click.option("--all", "show_all", is_flag=True, help="Also entries already redriven.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dlq_list(config_path: str | None, name: str, show_all: bool, as_json: bool) -> None:
    """List consumer NAME's dead letters still pending a redrive (oldest first)."""
    from .redrive import list_dead_letters

    config = _load(config_path)
    try:
        entries = asyncio.run(list_dead_letters(config.kafka, name, include_redriven=show_all))
    except KafkaError as exc:
        raise ConsumerError(f"Kafka: {exc}") from None
    for entry in entries:
        row = dlq_entry_row(entry)
        if as_json:
            click.echo(orjson.dumps(row).decode())
        elif "problem" in row:
            click.echo(f"{row['dlq_offset']}  not a dead letter: {row['problem']}")
        else:
            state = "pending " if entry.pending else "redriven"
            click.echo(
                f"{row['dlq_offset']}  {state}  {row['event_id'] or '?'}  {row['event']}  "
                f"attempts={row['attempts']}  from={row['original']}  at={row['failed_at']}  error: {row['error']}"
            )
    if not as_json:
        pending = sum(e.pending for e in entries)
        progress(
            f"dlq list {name}: {pending} pending"
            + (f", {len(entries) - pending} redriven" if show_all else "")
        )


@dlq.command("redrive")
@config_option
@module_option
@click.argument("name")
def dlq_redrive(config_path: str | None, modules: tuple[str, ...], name: str) -> None:
    """Run consumer NAME's pending dead letters through its handler again, here, then exit.

    Success or a new failure (appended to the DLQ again) both mark an entry redriven. The
    consumer may keep running meanwhile.
    """
    from .redrive import redrive

    config = _load(config_path)
    [spec] = resolve_consumers(config, [name], modules=modules)
    _configure_logging()
    report = run_until_signalled(
        lambda stopping: redrive(config.kafka, spec, progress=progress, stopping=stopping)
    )
    click.echo(report.summary(name))
    if report.dead_lettered or report.interrupted:
        sys.exit(1)


COMMANDS: tuple[click.Command, ...] = (consume, replay, dlq)
"""Everything to register in the main CLI."""

__all__ = ["COMMANDS", "ConsumerError", "consume", "dlq", "replay", "run_until_signalled"]

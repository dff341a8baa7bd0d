"""``hookstream streams --config F``: run the streams worker in the foreground.

``streams`` is a click command object; the main CLI registers it, and ``python -m
hookstream.streams`` runs it on its own (tests run it that way, to kill it with SIGKILL).
Progress goes to stderr; a problem before the worker starts is raised as a HookstreamError
(one line and exit 1 from the CLI); a worker that crashes later exits 1 after faust's log
(without tracebacks for hookstream's own errors, see ``ExpectedCrashTracebacks``) and a last
line that says why.
When faust's consumer skipped records, the worker has stopped without acknowledging past
them and the process re-executes itself (same PID) to read them again.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable

import click
from aiokafka.errors import KafkaError

from hookstream.cli_options import config_option
from hookstream.config import Config, load_config
from hookstream.errors import ConfigError, HookstreamError

TOPIC_SETUP_TIMEOUT_S = 60
RESTARTS_ENV = "HOOKSTREAM_STREAMS_SKIP_RESTARTS"
COMMITTED_ENV = "HOOKSTREAM_STREAMS_SKIP_COMMITTED"
"""The group's committed offsets, summed, when the previous restart was decided."""
COMMITTED_CHECK_S = 15
MAX_SKIP_RESTARTS = 20
"""Restarts in a row of one process after faust's consumer skipped records (see ``batching``)
during which the group's committed offsets did not move, then exit 1."""
SETTLED_S = 120
"""A worker that ran this long before records were skipped was not restarting in a loop: its
restart starts the count again (a long-lived worker sees a skip at some rebalances)."""


class ExpectedCrashTracebacks(logging.Filter):
    """Drops the traceback from faust's crash log lines where it tells an operator nothing.

    faust logs every crash with its traceback. hookstream's own errors (a topic too small, skipped
    records) have said what happened and how to fix it in a line of their own already, and the
    agents cancelled while the app stops after a crash are only its echo. Their lines stay, with
    the exception's message; any other exception keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info:
            return True
        exc = record.exc_info[1]
        # None: logged with the traceback of no exception (faust's crash outside an ``except``),
        # which would print "NoneType: None".
        if exc is None or isinstance(exc, (HookstreamError, asyncio.CancelledError)):
            record.exc_info = None
            record.exc_text = None
        return True


def skip_restart(restarts_so_far: int, ran_s: float, progressed: bool = False) -> int | None:
    """The number of the restart to do after skipped records, or None when the loop must end.

    ``progressed``: the group's committed offsets moved since the previous restart. A worker that
    gets through its backlog a few batches per restart is not stuck; one that does not is.
    """
    restarts = 0 if ran_s >= SETTLED_S or progressed else restarts_so_far
    return restarts + 1 if restarts < MAX_SKIP_RESTARTS else None


async def committed_total(config: Config) -> int | None:
    """The streams group's committed offsets summed over its partitions; None if Kafka did not say
    within ``COMMITTED_CHECK_S`` (the restart then counts as one without progress). Retriable
    errors (the group coordinator not known yet, or moving) are retried meanwhile."""
    from hookstream.streams.offsets import committed_offsets

    client_id = f"{config.kafka.client_id}-streams-check"

    async def read() -> int:
        while True:
            try:
                offsets = await committed_offsets(
                    config.kafka.bootstrap_servers, client_id, config.streams.app_id
                )
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                await asyncio.sleep(0.5)
            else:
                return sum(offsets.values())

    try:
        return await asyncio.wait_for(read(), COMMITTED_CHECK_S)
    except (KafkaError, OSError, TimeoutError):
        return None


def skip_progress(previous: str | None, total: int | None) -> bool:
    """Whether the committed total moved since the one recorded at the previous restart."""
    return total is not None and previous is not None and previous.isdigit() and total > int(previous)


@click.command("streams")
@config_option
def streams(config_path: str | None) -> None:
    """Run the faust worker: dedupe the raw topic, restore per-key order, publish the events topic."""
    config = load_config(config_path)
    sys.exit(run_worker(config, lambda line: click.echo(line, err=True)))


def run_worker(config: Config, progress: Callable[[str], None]) -> int:
    """Create the topics, then run the worker until SIGTERM/SIGINT; returns the exit code."""
    import faust

    from hookstream.streams.app import build_app
    from hookstream.streams.batching import SkippedRecords
    from hookstream.streams.topics import changelog_topics, create_topics

    if config.streams.store.startswith("rocksdb://") and importlib.util.find_spec("rocksdict") is None:
        raise ConfigError(
            'streams.store: "rocksdb://" needs the rocksdict package (pip install rocksdict), '
            'or use "memory://"'
        )
    started = time.monotonic()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    bootstrap = config.kafka.bootstrap_servers
    progress(f"streams: connecting to Kafka at {bootstrap}…")
    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # its retries would print a line each; ours says it once
    app = build_app(config, progress=progress)
    try:
        warnings = loop.run_until_complete(
            asyncio.wait_for(create_topics(config, changelog_topics(app)), TOPIC_SETUP_TIMEOUT_S)
        )
    except TimeoutError:
        raise HookstreamError(
            f"Kafka at {bootstrap} did not answer within {TOPIC_SETUP_TIMEOUT_S} s; is it running?"
        ) from None
    except (KafkaError, OSError) as exc:
        raise HookstreamError(f"cannot set up topics on Kafka at {bootstrap}: {exc}") from None
    finally:
        kafka_log.setLevel(level)
    for warning in warnings:
        progress(f"streams: warning: {warning}")

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            for handler in logger.handlers:  # faust's, installed just now
                handler.addFilter(ExpectedCrashTracebacks())

    worker = Worker(
        app,
        loop=loop,
        quiet=True,
        loglevel=os.environ.get("HOOKSTREAM_STREAMS_LOG_LEVEL", "WARNING").upper(),
        redirect_stdouts=False,
        console_port=0,
    )
    worker.spinner = None  # faust draws a terminal spinner into the log otherwise
    progress("streams: waiting for partition assignment…")
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - execute_from_commandline always exits
        code = 0
    skipped = getattr(app, "hookstream_skipped", None)
    if isinstance(skipped, SkippedRecords) and config.path is not None:
        total = asyncio.run(committed_total(config))
        progressed = skip_progress(os.environ.get(COMMITTED_ENV), total)
        ran_s = time.monotonic() - started
        restart = skip_restart(int(os.environ.get(RESTARTS_ENV, "0")), ran_s, progressed)
        if restart is not None:
            # Nothing past the skipped records was acknowledged: a fresh worker reads them again.
            progress(f"streams: {skipped}; restarting (restart {restart})…")
            os.environ[RESTARTS_ENV] = str(restart)
            if total is not None:
                os.environ[COMMITTED_ENV] = str(total)
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(
                sys.executable, [sys.executable, "-m", "hookstream.streams", "--config", str(config.path)]
            )
    if app.crash_reason is not None:
        progress(f"hookstream: error: streams worker stopped: {app.crash_reason}")
        return code or 1
    return code

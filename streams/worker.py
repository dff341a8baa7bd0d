"""``hookstream streams --config F``: run the streams worker in the foreground.

``streams`` is a click command object; the main CLI registers it, and ``python -m
hookstream.streams`` runs it on its own (tests run it that way, to kill it with SIGKILL).
Progress goes to stderr; a problem before the worker starts is raised as a HookstreamError
(one line and exit 1 from the CLI); a worker that crashes later exits 1 after faust's log
(without tracebacks for hookstream's own errors, see ``ExpectedCrashTracebacks``) and a last
line that says why. Skipped records stop it that way too (``batching``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import os
import sys
from collections.abc import Callable

import click
from aiokafka.errors import KafkaError

from hookstream.cli_options import config_option
from hookstream.config import Config, load_config
from hookstream.errors import ConfigError, HookstreamError
from hookstream.stage_rules import stage_rules

TOPIC_SETUP_TIMEOUT_S = 60


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


@click.command("streams")
@config_option
def streams(config_path: str | None) -> None:
    """Run the faust worker: dedupe the raw topic, restore per-key order, publish the events topic."""
    config = load_config(config_path, rules=stage_rules())
    sys.exit(run_worker(config, lambda line: click.echo(line, err=True)))


def run_worker(config: Config, progress: Callable[[str], None]) -> int:
    """Create the topics, then run the worker until SIGTERM/SIGINT; returns the exit code."""
    import faust

    from hookstream.kafka.admin import with_cluster_replication
    from hookstream.streams.app import build_app
    from hookstream.streams.topics import changelog_topics, create_topics

    if config.streams.store.startswith("rocksdb://") and importlib.util.find_spec("rocksdict") is None:
        raise ConfigError(
            'streams.store: "rocksdb://" needs the rocksdict package (pip install rocksdict), '
            'or use "memory://"'
        )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    bootstrap = config.kafka.bootstrap_servers
    progress(f"streams: connecting to Kafka at {bootstrap}…")
    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # its retries would print a line each; ours says it once
    try:
        # faust creates topics of its own (its assignor's): it is handed the cluster's replication.
        kafka = loop.run_until_complete(
            asyncio.wait_for(with_cluster_replication(config.kafka), TOPIC_SETUP_TIMEOUT_S)
        )
        config = dataclasses.replace(config, kafka=kafka)
        app = build_app(config, progress=progress)
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
    # faust's crash_reason ends up as whatever failed last while stopping; ours says it all.
    reason = getattr(app, "hookstream_stop_reason", None) or app.crash_reason
    if reason is not None:
        progress(f"hookstream: error: streams worker stopped: {reason}")
        return code or 1
    return code

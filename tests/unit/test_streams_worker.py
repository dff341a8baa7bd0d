"""`hookstream streams`: its config keys and how it fails (no broker needed)."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hookstream.config import parse_config
from hookstream.errors import ConfigError, TopicTooSmall
from hookstream.streams.batching import SkippedRecords
from hookstream.streams.worker import ExpectedCrashTracebacks, streams


def test_streams_config_keys_are_validated_with_the_key_and_the_fix():
    config = parse_config({"streams": {"watermark_interval_ms": 50, "watermark_lag_ms": 0}})
    assert config.streams.watermark_interval_ms == 50
    assert config.streams.watermark_lag_ms == 0
    assert config.streams.session_timeout_ms == 30_000
    with pytest.raises(ConfigError, match=r"streams\.watermark_interval_ms: must be at least 10"):
        parse_config({"streams": {"watermark_interval_ms": 1}})
    with pytest.raises(ConfigError, match=r"streams\.session_timeout_ms: expected an integer"):
        parse_config({"streams": {"session_timeout_ms": "30s"}})
    with pytest.raises(ConfigError, match=r"streams\.max_wait_ms"):
        parse_config({"streams": {"max_wait_ms": -1}})


def test_the_command_object_raises_config_errors_for_the_main_cli_to_print():
    result = CliRunner().invoke(streams, ["--config", "/nonexistent/hookstream.toml"])
    assert isinstance(result.exception, ConfigError)
    assert "no such config file" in str(result.exception)
    assert "--config" in CliRunner().invoke(streams, ["--help"]).output


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookstream.streams", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_alone_an_error_is_one_line_and_exit_1(tmp_path):
    result = _run("--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"hookstream: error: {tmp_path / 'missing.toml'}: no such config file"
    )
    assert "Traceback" not in result.stderr


def test_an_unreachable_broker_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "c.toml"
    config.write_text(f'[kafka]\nbootstrap_servers = "127.0.0.1:{port}"\n')
    result = _run("--config", str(config))
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hookstream: error: ") and f"127.0.0.1:{port}" in last
    assert "Traceback" not in result.stderr


def _crash_record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        return logging.LogRecord(
            "faust", logging.ERROR, __file__, 1, "Crashed reason=%r", (exc,), sys.exc_info()
        )


@pytest.mark.parametrize(
    "exc",
    [
        TopicTooSmall("topic t refused a record as too large: raise it with …"),
        SkippedRecords("the consumer skipped 2 record(s)"),
        asyncio.CancelledError(),
    ],
    ids=["hookstream-error", "skipped-records", "cancelled"],
)
def test_faust_crash_lines_for_expected_errors_keep_the_message_without_a_traceback(exc):
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(ExpectedCrashTracebacks())
    handler.handle(_crash_record(exc))
    text = handler.stream.getvalue()
    assert "Crashed reason=" in text and str(exc) in text
    assert "Traceback" not in text


def test_a_crash_logged_outside_an_exception_handler_does_not_print_nonetype_none():
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(ExpectedCrashTracebacks())
    record = logging.LogRecord(
        "faust", logging.ERROR, __file__, 1, "Crashed reason=%r", ("x",), (None, None, None)
    )
    handler.handle(record)
    assert handler.stream.getvalue() == "Crashed reason='x'\n"


def test_faust_crash_lines_for_other_errors_keep_their_traceback():
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(ExpectedCrashTracebacks())
    handler.handle(_crash_record(KeyError("a bug")))
    assert "Traceback (most recent call last)" in handler.stream.getvalue()
    assert "KeyError: 'a bug'" in handler.stream.getvalue()

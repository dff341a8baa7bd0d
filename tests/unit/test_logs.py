"""One JSON object per log line, with the ``extra=`` fields and without terminal colour codes."""

from __future__ import annotations

import json
import logging

from hookstream.logs import JsonFormatter


def line(logger: str, msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> dict:
    record = logging.getLogger(logger).makeRecord(
        logger, logging.INFO, __file__, 1, msg, args, (type(exc), exc, None) if exc else None, extra=extra
    )
    return json.loads(JsonFormatter().format(record))


def test_a_line_carries_the_message_and_the_extra_fields():
    entry = line("hookstream.ingest", "refused %s", "delivery", source="gh", reason="signature_mismatch")
    assert entry["msg"] == "refused delivery"
    assert (entry["level"], entry["logger"], entry["source"], entry["reason"]) == (
        "info",
        "hookstream.ingest",
        "gh",
        "signature_mismatch",
    )
    assert entry["ts"].endswith("Z") and "args" not in entry and "exc" not in entry


def test_uvicorns_coloured_copy_of_the_message_is_left_out():
    entry = line(
        "uvicorn.error", "Started server process [%d]", 42, color_message="Started [\x1b[36m%d\x1b[0m]"
    )
    assert entry["msg"] == "Started server process [42]"
    assert "color_message" not in entry
    # Its logger is named uvicorn.error for every line: an info line must not read as an error.
    assert entry["logger"] == "uvicorn" and entry["level"] == "info"


def test_an_exception_comes_with_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        entry = line("hookstream.ingest", "unexpected error", exc=exc)
    assert "RuntimeError: boom" in entry["exc"]

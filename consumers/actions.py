"""Built-in actions: what a config-declared consumer does with each event.

Every built-in is idempotent, so the redelivery that follows a crash (Kafka is at-least-once)
repeats no effect:

- ``jsonl``: appends one JSON line per event id; the set of written ids is rebuilt from the file
  at start, and each line is flushed and fsync'd before the event counts as done.
- ``sqlite`` / ``postgres``: upsert by event id.
- ``http``: POSTs the raw body signed with Standard Webhooks, ``webhook-id`` = the event id, so
  the receiver's own Standard Webhooks idempotency drops a repeat. 2xx = done; 408, 429, 5xx and
  network errors are retried; any other status sends the event to the DLQ.
- ``log``: one log line per event (a repeat is a repeated line, nothing more).
- ``"module:function"``: your function, called with the Event (async, or sync in a worker
  thread); use ``hookstream.consumers.ProcessedIds`` to make it idempotent.

A replayed event (``Event.replay``) bypasses the idempotency checks on purpose: jsonl appends a
second line (``"replay": true``), sqlite/postgres upsert the row again, http POSTs again.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import importlib
import inspect
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson

from hookstream.config import ConsumerConfig, resolve_secret
from hookstream.errors import ConfigError

from .errors import PermanentError, RetryLater
from .events import Event

log = logging.getLogger("hookstream.consumers")


@dataclass(frozen=True)
class ActionSetup:
    """What an action needs from the config: its options and where errors point."""

    consumer: ConsumerConfig
    where: str
    """``<file>: consumers.<name>``, the prefix of every config error."""
    base_dir: Path | None
    """The config file's folder, where ``file:`` secrets are looked up (as for sources)."""

    def path(self, value: str) -> Path:
        """A data file's path; a relative one is relative to the working directory (like the
        streams ``data_dir``), so a read-only config folder is never written to."""
        return Path(value).expanduser().absolute()


class Action:
    """A consumer's side effect; ``open`` before the first event, ``close`` after the last."""

    name: ClassVar[str] = ""
    options: ClassVar[dict[str, type | tuple[type, ...]]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    async def open(self) -> None:
        pass

    async def __call__(self, event: Event) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass


def event_record(event: Event) -> dict[str, Any]:
    """The JSON object the jsonl action writes (and the log action logs) for an event."""
    record: dict[str, Any] = {
        "event_id": event.id,
        "source": event.source,
        "provider": event.provider,
        "event_type": event.type,
        "ordering_key": event.ordering_key,
        "received_at": event.received_at.isoformat(),
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "late": event.late,
        "consumer": event.consumer,
        "replay": event.replay,
        "payload": event.payload,
    }
    if event.payload is None:
        record["body_base64"] = base64.b64encode(event.body).decode()
    if event.typed is not None:
        record["typed"] = event.typed.to_dict()
    return record


# -- jsonl ------------------------------------------------------------------------------------
class JsonlAction(Action):
    name = "jsonl"
    options = {"path": str}
    required = ("path",)

    def __init__(self, setup: ActionSetup, path: str) -> None:
        self.path = setup.path(path)
        self._ids: set[str] = set()
        self._fd = -1
        self._batch: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        self._ids = await asyncio.to_thread(self._load)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _load(self) -> set[str]:
        """Ids already in the file. A last line cut short by a crash is removed (it was never
        acknowledged, so its event is redelivered and written again)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("jsonl: removing a partly written last line", extra={"path": str(self.path)})
            with open(self.path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        ids = set()
        for number, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            try:
                ids.add(orjson.loads(line)["event_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("jsonl: line without an event_id", extra={"path": str(self.path), "line": number})
        return ids

    async def __call__(self, event: Event) -> None:
        if event.id in self._ids and not event.replay:
            return
        line = orjson.dumps(event_record(event)) + b"\n"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((event.id, line, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: once queued the line is written even if this handler is cancelled, and the
        # id set is updated with it, so nothing is ever written twice by accident.
        await asyncio.shield(done)

    async def _flush(self) -> None:
        """Group commit: every line queued meanwhile shares one write and one fsync."""
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                await asyncio.to_thread(self._write, batch)
            except OSError as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(OSError(exc.errno, f"cannot write {self.path}: {exc.strerror}"))
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    def _write(self, batch: list[tuple[str, bytes, asyncio.Future[None]]]) -> None:
        data = memoryview(b"".join(line for _, line, _ in batch))
        with self._lock:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            os.fsync(self._fd)
            self._ids.update(event_id for event_id, _, _ in batch)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# -- sqlite -----------------------------------------------------------------------------------
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
COLUMNS = (
    "event_id",
    "source",
    "provider",
    "event_type",
    "ordering_key",
    "received_at",
    "created_at",
    "late",
    "payload",
    "body",
    "consumer",
)


def _table_name(setup: ActionSetup, table: str) -> str:
    if not _IDENTIFIER.fullmatch(table):
        raise ConfigError(f"{setup.where}.table: {table!r} is not a table name (letters, digits, _)")
    return table


def _row(event: Event) -> tuple[Any, ...]:
    payload = orjson.dumps(event.payload).decode() if event.payload is not None else None
    created = event.created_at.isoformat() if event.created_at else None
    return (
        event.id,
        event.source,
        event.provider,
        event.type,
        event.ordering_key,
        event.received_at.isoformat(),
        created,
        event.late,
        payload,
        event.body,
        event.consumer,
    )


def _upsert_sql(table: str, placeholder: str) -> str:
    cols = ", ".join(COLUMNS)
    values = ", ".join([placeholder] * len(COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "event_id")
    return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT (event_id) DO UPDATE SET {updates}"


class SqliteAction(Action):
    name = "sqlite"
    options = {"path": str, "table": str}
    required = ("path",)

    def __init__(self, setup: ActionSetup, path: str, table: str = "hookstream_events") -> None:
        self.path = setup.path(path)
        self.table = _table_name(setup, table)
        self._conn: sqlite3.Connection | None = None
        # One thread owns the connection: writes are serialised, the event loop never blocks.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{self.path.name}")

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (event_id TEXT PRIMARY KEY, source TEXT NOT NULL, "
                "provider TEXT NOT NULL, event_type TEXT NOT NULL, ordering_key TEXT NOT NULL, "
                "received_at TEXT NOT NULL, created_at TEXT, late INTEGER NOT NULL, payload TEXT, "
                "body BLOB NOT NULL, consumer TEXT NOT NULL)"
            )
            self._conn = conn

        await self._run(connect)

    async def __call__(self, event: Event) -> None:
        sql = _upsert_sql(self.table, "?")
        row = _row(event)
        await self._run(lambda: self._conn.execute(sql, row))  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)


# -- postgres ---------------------------------------------------------------------------------
class PostgresAction(Action):
    """Upsert into PostgreSQL with psycopg 3 (``pip install "psycopg[binary]"``), imported lazily."""

    name = "postgres"
    options = {"dsn": str, "table": str}
    required = ("dsn",)

    def __init__(self, setup: ActionSetup, dsn: str, table: str = "hookstream_events") -> None:
        self.dsn = resolve_secret(dsn, f"{setup.where}.dsn", setup.base_dir)
        self.table = _table_name(setup, table)
        self.where = setup.where
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                f'{self.where}.action: the postgres action needs psycopg 3: pip install "psycopg[binary]"'
            ) from None
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"{self.where}.dsn: cannot connect to PostgreSQL: {exc}".strip()) from None
        await self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (event_id TEXT PRIMARY KEY, source TEXT NOT NULL, "
            "provider TEXT NOT NULL, event_type TEXT NOT NULL, ordering_key TEXT NOT NULL, "
            "received_at TIMESTAMPTZ NOT NULL, created_at TIMESTAMPTZ, late BOOLEAN NOT NULL, payload JSONB, "
            "body BYTEA NOT NULL, consumer TEXT NOT NULL)"
        )

    async def __call__(self, event: Event) -> None:
        import psycopg

        row = list(_row(event))
        row[5], row[6] = event.received_at, event.created_at
        async with self._lock:  # one connection, one statement at a time
            if self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            await self._conn.execute(_upsert_sql(self.table, "%s"), row)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


# -- http -------------------------------------------------------------------------------------
class TransientHTTPError(RetryLater):
    """The receiver could not take the event now (408, 429, 5xx): retried with backoff, and not
    before its ``Retry-After`` (on 429 and 503)."""


MAX_RETRY_AFTER_SECONDS = 3600.0
"""A longer Retry-After is taken as this: an event should not wait a day on one header."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class HttpAction(Action):
    name = "http"
    options = {"url": str, "secret": str, "timeout_seconds": (int, float)}
    required = ("url", "secret")

    def __init__(self, setup: ActionSetup, url: str, secret: str, timeout_seconds: float = 10.0) -> None:
        from hookstream.ingest.providers.standard import StandardWebhooks, decode_secret

        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{setup.where}.url: must start with http:// or https://, got {url!r}")
        if timeout_seconds <= 0:
            raise ConfigError(f"{setup.where}.timeout_seconds: must be greater than 0")
        resolved = resolve_secret(secret, f"{setup.where}.secret", setup.base_dir)
        try:
            decode_secret(resolved)
            self._signer = StandardWebhooks([resolved])
        except ValueError as exc:
            raise ConfigError(f"{setup.where}.secret: {exc}") from None
        self.url = url
        self.timeout = float(timeout_seconds)
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def __call__(self, event: Event) -> None:
        assert self._client is not None, "open() first"
        headers = self._signer.sign(event.body, timestamp=int(time.time()), event_id=event.id)
        headers["Content-Type"] = event.raw.content_type or "application/json"
        headers["Hookstream-Source"] = event.source
        headers["Hookstream-Event-Type"] = event.type
        try:
            response = await self._client.post(self.url, content=event.body, headers=headers)
        except httpx.TimeoutException:
            raise TransientHTTPError(f"POST {self.url} timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise TransientHTTPError(f"POST {self.url} failed: {exc or type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"POST {self.url} answered {status} {response.reason_phrase}: {response.text[:200]}".rstrip(
            ": "
        )
        if status in (408, 429) or status >= 500:
            wait = retry_after_seconds(response.headers.get("retry-after")) if status in (429, 503) else None
            raise TransientHTTPError(detail, wait)
        raise PermanentError(detail)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


# -- log --------------------------------------------------------------------------------------
class LogAction(Action):
    name = "log"

    def __init__(self, setup: ActionSetup) -> None:
        self._log = logging.getLogger(f"hookstream.consumers.{setup.consumer.name}")

    async def __call__(self, event: Event) -> None:
        record = event_record(event)
        record.pop("payload", None)
        record.pop("body_base64", None)
        self._log.info("event", extra=record)


# -- your function ----------------------------------------------------------------------------
class FunctionAction(Action):
    """Calls a function with each Event: awaited if async, else run in a worker thread."""

    name = "function"

    def __init__(self, fn: Callable[[Event], Any], label: str) -> None:
        self.fn = fn
        self.label = label
        call = getattr(fn, "__call__", None)  # noqa: B004 - a class instance with async __call__
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)

    async def __call__(self, event: Event) -> None:
        if self.is_async:
            await self.fn(event)
        else:
            result = await asyncio.to_thread(self.fn, event)
            if inspect.isawaitable(result):
                await result


def import_function(spec: str, where: str) -> Callable[..., Any]:
    """``"package.module:function"`` (attribute paths like ``module:obj.method`` allowed)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f'{where}: {spec!r} is not "module:function"')
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{where}: {module_name} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ConfigError(f"{where}: {spec} is not callable")
    return obj


BUILTIN_ACTIONS: dict[str, type[Action]] = {
    cls.name: cls for cls in (JsonlAction, SqliteAction, PostgresAction, HttpAction, LogAction)
}


def build_action(setup: ActionSetup) -> Action:
    """The action a ``[consumers.NAME]`` table asks for, options checked."""
    consumer = setup.consumer
    action = consumer.action
    if ":" in action:
        if consumer.options:
            key = next(iter(consumer.options))
            raise ConfigError(
                f"{setup.where}.{key}: unknown key; a {action!r} action takes no options "
                f"(known keys: {', '.join(sorted(ConsumerConfig.__dataclass_fields__.keys() - {'name', 'options'}))})"
            )
        return FunctionAction(import_function(action, f"{setup.where}.action"), action)
    cls = BUILTIN_ACTIONS.get(action)
    if cls is None:
        raise ConfigError(
            f"{setup.where}.action: unknown action {action!r}; one of {', '.join(sorted(BUILTIN_ACTIONS))} "
            'or "module:function" for your own'
        )
    kwargs: dict[str, Any] = {}
    for key, value in consumer.options.items():
        if key not in cls.options:
            known = ", ".join(sorted(cls.options)) or "none"
            raise ConfigError(
                f"{setup.where}.{key}: unknown option for the {action} action (its options: {known})"
            )
        kind = cls.options[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(f"{setup.where}.{key}: expected {_kind(kind)}, got {value!r}")
        kwargs[key] = value
    for key in cls.required:
        if key not in kwargs:
            raise ConfigError(f"{setup.where}.{key}: the {action} action needs {key} = ...")
    return cls(setup, **kwargs)


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {str: "a string", int: "an integer", float: "a number"}.get(k, k.__name__) for k in kinds
    )

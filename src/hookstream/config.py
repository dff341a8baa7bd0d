"""Configuration: one TOML file, loaded and validated once into typed objects.

Every error names the file, the key and the fix. Secrets are resolved here (``env:NAME``,
``file:PATH`` or a literal) and never appear in a repr or a log line.

What the stages own (the ingest stage's providers, the consumers' rules for names and event
patterns) is checked through ``StageRules`` handed in by the caller, so that this module, which
every stage imports, imports no stage itself.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hookstream.errors import ConfigError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Secret(str):
    """A string whose repr hides its value, so it cannot leak through logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    raw_topic: str = "hookstream.raw"
    events_topic: str = "hookstream.events"
    refused_topic: str = "hookstream.refused"
    """Refused requests of the sources that record them (``record_refused``), for the console."""
    partitions: int = 8
    """Partitions of the raw topic; the dedupe table is co-partitioned, so never change it after go-live."""
    replication_factor: int | None = None
    """Replicas of every topic hookstream creates; None: min(3, the cluster's brokers)."""
    min_insync_replicas: int | None = None
    """Replicas that must have a record before the producer's acks=all counts it as written;
    None: replication_factor - 1, at least 1 (see ``kafka.replication``)."""
    publish_timeout_seconds: float = 5.0
    linger_ms: int = 5
    compression: str = "lz4"
    client_id: str = "hookstream"
    max_message_bytes: int = 2_097_152
    """Largest record on hookstream's topics: producers' max request size, topics' max.message.bytes.

    Every source's ``max_body_bytes`` plus ``ENVELOPE_HEADROOM`` must fit: a body ingest accepts
    must also fit through streams, retries and the DLQ.
    """


ENVELOPE_HEADROOM = 65_536
"""Bytes reserved beside the body in a record: envelope fields, request headers, record headers."""


@dataclass(frozen=True)
class IngestConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    trusted_proxies: tuple[IPNetwork, ...] = ()
    retry_after_seconds: int = 5
    progress_interval_ms: int = 50
    """How often ingest tells every raw partition how far it has been acknowledged (0: never)."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    provider: str
    secrets: tuple[Secret, ...]
    tolerance_seconds: int | None = None
    allowed_ips: tuple[IPNetwork, ...] = ()
    max_body_bytes: int = 1_048_576
    events: tuple[str, ...] = ("*",)
    on_filtered: str = "accept"
    """accept: answer 2xx and drop (counted); reject: answer 400."""
    public_url: str = ""
    event_id: str = ""
    event_type: str = ""
    ordering_key: str = ""
    """Overrides: a JSON pointer into the payload ("/data/id") or "header:Name"."""
    record_refused: str = "off"
    """off | on | sampled: record refused requests to ``kafka.refused_topic`` (best-effort)."""
    refused_sample_rate: float = 0.1
    """With ``sampled``: the share of refusals recorded."""
    refused_per_minute: int = 60
    """At most this many recorded per minute, so a flood cannot fill the topic."""
    refused_body_bytes: int = 4096
    """A recorded body is cut to this many bytes."""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamsConfig:
    app_id: str = "hookstream-streams"
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    max_wait_ms: int = 2000
    """Longest a sequencer holds an event waiting for slower raw partitions to catch up."""
    store: str = "memory://"
    """The tables' store. Set "rocksdb://" (RocksDB on disk, rocksdict) in production: "memory://"
    keeps every remembered id in RAM and replays the whole changelog at each start."""
    data_dir: str = ".hookstream/streams"
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    """Address the worker's web server (``/metrics``) binds to; "0.0.0.0" to let Prometheus scrape it."""
    watermark_interval_ms: int = 50
    """How often each worker tells the sequencer how far it has read the raw partitions it owns."""
    watermark_lag_ms: int = 1000
    """For raw partitions without ingest's progress markers: how long after its received_at a
    record may still land in the raw topic (ingest's publish latency)."""
    ingest_idle_ms: int = 1000
    """An ingest process whose progress markers stopped this long ago holds nothing back."""
    session_timeout_ms: int = 30_000
    """How long the broker waits for a silent (crashed) worker before its partitions move on."""
    max_hold_ms: int = 90_000
    """Longest an event waits for a raw partition whose watermarks stopped (its worker killed or
    paused, the group rebalancing) and for its new owner to catch up; longer than
    ``session_timeout_ms``. 0: no hold, ``max_wait_ms`` applies (then events can come out late
    around a dead worker)."""


@dataclass(frozen=True)
class BreakerConfig:
    """A consumer's circuit breaker (``[consumers.NAME.breaker]``); see consumers/breaker.py."""

    failures: int = 5
    """Failures in a row that open it."""
    failure_rate: float = 0.0
    """Share of failed calls in ``window_seconds`` that opens it (0: only ``failures`` counts)."""
    window_seconds: float = 60.0
    min_calls: int = 10
    """Calls the window must hold before ``failure_rate`` is looked at."""
    open_seconds: float = 30.0
    """How long it stays open before probing (at least what a receiver's Retry-After asks)."""
    probes: int = 1
    """Calls let through while half-open; all must succeed to close it."""


@dataclass(frozen=True)
class ConsumerConfig:
    name: str
    events: tuple[str, ...] = ("*",)
    action: str = "log"
    start: str = "earliest"
    max_attempts: int = 5
    backoff_initial_ms: int = 200
    backoff_max_ms: int = 30_000
    concurrency: int = 8
    """Handlers running at once, across ordering keys (one key's events always run one by one)."""
    typed: bool = False
    """Decode each event's typed view (schemas/typed/) first; a payload that does not fit goes to the DLQ."""
    drain_timeout_seconds: float = 30.0
    """How long a stop or a rebalance waits for running handlers before cancelling them (they are redelivered)."""
    filter: dict[str, Any] | None = None
    """A payload filter (consumers/filters.py): events it does not match are committed past, counted."""
    rate_limit: str = ""
    """At most this many handler calls, e.g. "50/s" or "1000/min" (empty: no limit)."""
    breaker: BreakerConfig | None = None
    """A circuit breaker around the action (None: none)."""
    transform: str = ""
    """ "module:function" run on each event before the action: an Event back, or None to drop it."""
    handler_timeout_seconds: float = 0.0
    """A handler call that runs longer fails that attempt (0: no limit)."""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsoleConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    token: Secret | None = None
    """Required when the console binds to anything but loopback; then every request needs it."""
    actions: bool = False
    """Replay and redrive buttons; they need a token, so only an authenticated user can act."""
    metrics_urls: tuple[str, ...] = ()
    """Ingest's /metrics URLs, for the refusals chart."""
    scan_limit: int = 20_000
    """Most records one page of Events reads (it says "scanned N of M records")."""
    page_size: int = 50


@dataclass(frozen=True)
class Config:
    path: Path | None
    kafka: KafkaConfig
    ingest: IngestConfig
    sources: dict[str, SourceConfig]
    streams: StreamsConfig
    consumers: dict[str, ConsumerConfig]
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    providers: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Each source's provider object (its secrets parsed into keys), built here, once, by the
    rules' provider class, for whatever serves or signs that source; empty without rules."""


class ProviderClass(Protocol):
    """A provider as config checks a source against it: the extra keys its ``[sources.X]`` table
    takes, and a constructor that parses the source's secrets (ValueError saying what is wrong)."""

    options: tuple[str, ...]

    def __call__(
        self, secrets: list[str], *, tolerance: int | None, options: dict[str, Any], source: str
    ) -> Any: ...


@dataclass(frozen=True)
class StageRules:
    """The stages' rules a config is checked against (``hookstream.stage_rules`` gathers them).

    Without them, a config is checked for what this module owns only: any provider name is
    taken, with its extra keys as options, and consumer names and patterns are not looked at.
    """

    providers: Mapping[str, ProviderClass]
    check_consumer_name: Callable[[str], object]
    """Raises ValueError for a name a consumer cannot have."""
    check_event_pattern: Callable[[str], object]
    """Raises ValueError for a pattern that cannot match the way its author meant."""
    check_filter: Callable[[Any], object] | None = None
    """Raises ValueError for a payload filter that cannot be read (its message names the key)."""
    check_rate_limit: Callable[[str], object] | None = None
    """Raises ValueError for a rate limit that is not "N/s", "N/min" or "N/h"."""


SOURCE_KEYS = {f for f in SourceConfig.__dataclass_fields__} - {"name", "options"}
CONSUMER_KEYS = {f for f in ConsumerConfig.__dataclass_fields__} - {"name", "options"}


class _Reader:
    """Typed access to one TOML table, with errors that say where and how to fix."""

    def __init__(self, where: str, table: dict[str, Any]) -> None:
        self.where = where
        self.table = table

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where}.{key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in self.table:
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(key, f"expected {_kind_name(kind)}, got {type(value).__name__} {value!r}")
        return value

    def positive_int(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(key, list, None)
        if value is None:
            return default
        if not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return tuple(value)

    def networks(self, key: str) -> tuple[IPNetwork, ...]:
        out = []
        for item in self.strings(key, ()):
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise self.fail(key, f"{item!r} is not an IP address or CIDR (e.g. 192.0.2.0/24)") from None
        return tuple(out)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def reject_unknown(self, known: set[str]) -> None:
        for key in self.table:
            if key not in known:
                raise self.fail(key, f"unknown key (known: {', '.join(sorted(known))})")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def resolve_secret(spec: str, where: str, base_dir: Path | None) -> Secret:
    """``env:NAME``, ``file:PATH`` (relative to the config file) or a literal."""
    if spec.startswith("env:"):
        name = spec[4:]
        value = os.environ.get(name)
        if not value:
            raise ConfigError(
                f"{where}: environment variable {name} is not set (or empty); export it or change the secret"
            )
        return Secret(value)
    if spec.startswith("file:"):
        path = Path(spec[5:]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{where}: secret file {path} is empty")
        return Secret(value)
    if not spec:
        raise ConfigError(f'{where}: empty secret; use "env:NAME", "file:PATH" or the secret itself')
    return Secret(spec)


def load_config(
    path: str | os.PathLike[str] | None = None, *, text: str | None = None, rules: StageRules | None = None
) -> Config:
    """Load and validate a config. ``path`` defaults to ``$HOOKSTREAM_CONFIG``."""
    file: Path | None = None
    if text is None:
        chosen = path or os.environ.get("HOOKSTREAM_CONFIG")
        if not chosen:
            raise ConfigError("no config file: pass --config FILE or set HOOKSTREAM_CONFIG")
        file = Path(chosen)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{file}: no such config file") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    label = str(file) if file else "<config>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    return parse_config(data, label=label, base_dir=file.parent if file else None, path=file, rules=rules)


def parse_config(
    data: dict[str, Any],
    *,
    label: str = "<config>",
    base_dir: Path | None = None,
    path: Path | None = None,
    rules: StageRules | None = None,
) -> Config:
    top = _Reader(label, data)
    top.reject_unknown({"kafka", "ingest", "sources", "streams", "consumers", "console"})
    kafka = _parse_kafka(_Reader(f"{label}: kafka", top.get("kafka", dict, {})))
    ingest = _parse_ingest(_Reader(f"{label}: ingest", top.get("ingest", dict, {})))
    streams = _parse_streams(_Reader(f"{label}: streams", top.get("streams", dict, {})))
    console = _parse_console(_Reader(f"{label}: console", top.get("console", dict, {})), base_dir)
    sources: dict[str, SourceConfig] = {}
    providers: dict[str, Any] = {}
    for name, table in top.get("sources", dict, {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: sources.{name}: expected a table [sources.{name}]")
        sources[name], provider = _parse_source(
            name, _Reader(f"{label}: sources.{name}", table), base_dir, rules
        )
        if provider is not None:
            providers[name] = provider
        limit = sources[name].max_body_bytes + ENVELOPE_HEADROOM
        if limit > kafka.max_message_bytes:
            raise ConfigError(
                f"{label}: sources.{name}.max_body_bytes: {sources[name].max_body_bytes} plus "
                f"{ENVELOPE_HEADROOM} bytes of envelope does not fit in kafka.max_message_bytes "
                f"({kafka.max_message_bytes}); lower max_body_bytes or raise kafka.max_message_bytes "
                f"to at least {limit}"
            )
    consumers: dict[str, ConsumerConfig] = {}
    for name, table in top.get("consumers", dict, {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: consumers.{name}: expected a table [consumers.{name}]")
        consumers[name] = _parse_consumer(name, _Reader(f"{label}: consumers.{name}", table), rules)
    return Config(
        path=path,
        kafka=kafka,
        ingest=ingest,
        sources=sources,
        streams=streams,
        consumers=consumers,
        console=console,
        providers=providers,
    )


def _parse_kafka(r: _Reader) -> KafkaConfig:
    r.reject_unknown(set(KafkaConfig.__dataclass_fields__))
    d = KafkaConfig()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or r.get(
        "bootstrap_servers", str, d.bootstrap_servers
    )
    timeout = r.get("publish_timeout_seconds", float, d.publish_timeout_seconds)
    if timeout <= 0:
        raise r.fail("publish_timeout_seconds", "must be greater than 0")
    replication_factor = _optional_positive_int(r, "replication_factor")
    min_insync_replicas = _optional_positive_int(r, "min_insync_replicas")
    if replication_factor and min_insync_replicas and min_insync_replicas > replication_factor:
        raise r.fail(
            "min_insync_replicas",
            f"{min_insync_replicas} is more than replication_factor ({replication_factor}), so no write "
            f"could succeed; set it to {max(1, replication_factor - 1)} or less",
        )
    return KafkaConfig(
        bootstrap_servers=bootstrap,
        raw_topic=r.get("raw_topic", str, d.raw_topic),
        events_topic=r.get("events_topic", str, d.events_topic),
        refused_topic=r.get("refused_topic", str, d.refused_topic),
        partitions=r.positive_int("partitions", d.partitions),
        replication_factor=replication_factor,
        min_insync_replicas=min_insync_replicas,
        publish_timeout_seconds=timeout,
        linger_ms=r.positive_int("linger_ms", d.linger_ms, minimum=0),
        compression=r.choice("compression", ("none", "gzip", "lz4", "zstd", "snappy"), d.compression),
        client_id=r.get("client_id", str, d.client_id),
        max_message_bytes=r.positive_int(
            "max_message_bytes", d.max_message_bytes, minimum=ENVELOPE_HEADROOM * 2
        ),
    )


def _optional_positive_int(r: _Reader, key: str) -> int | None:
    """An integer of at least 1, or None when the key is absent (the cluster decides)."""
    return r.positive_int(key, 1) if key in r.table else None


def _parse_ingest(r: _Reader) -> IngestConfig:
    r.reject_unknown(set(IngestConfig.__dataclass_fields__))
    d = IngestConfig()
    return IngestConfig(
        host=r.get("host", str, d.host),
        port=r.positive_int("port", d.port),
        trusted_proxies=r.networks("trusted_proxies"),
        retry_after_seconds=r.positive_int("retry_after_seconds", d.retry_after_seconds),
        progress_interval_ms=r.positive_int("progress_interval_ms", d.progress_interval_ms, minimum=0),
    )


def _parse_streams(r: _Reader) -> StreamsConfig:
    r.reject_unknown(set(StreamsConfig.__dataclass_fields__))
    d = StreamsConfig()
    store = r.get("store", str, d.store)
    if not (store.startswith("memory://") or store.startswith("rocksdb://")):
        raise r.fail("store", 'must be "memory://" or "rocksdb://"')
    # Brokers refuse less than group.min.session.timeout.ms (6 s by default).
    session_timeout_ms = r.positive_int("session_timeout_ms", d.session_timeout_ms, minimum=1000)
    max_hold_ms = r.positive_int("max_hold_ms", d.max_hold_ms, minimum=0)
    if 0 < max_hold_ms <= session_timeout_ms:
        raise r.fail(
            "max_hold_ms",
            f"must be larger than session_timeout_ms ({session_timeout_ms}), so a dead worker's "
            "partitions have moved before the hold ends; or 0 for no hold",
        )
    return StreamsConfig(
        app_id=r.get("app_id", str, d.app_id),
        dedupe_ttl_seconds=r.positive_int("dedupe_ttl_seconds", d.dedupe_ttl_seconds),
        max_wait_ms=r.positive_int("max_wait_ms", d.max_wait_ms, minimum=0),
        store=store,
        data_dir=r.get("data_dir", str, d.data_dir),
        web_port=r.positive_int("web_port", d.web_port),
        web_bind=r.get("web_bind", str, d.web_bind),
        watermark_interval_ms=r.positive_int("watermark_interval_ms", d.watermark_interval_ms, minimum=10),
        watermark_lag_ms=r.positive_int("watermark_lag_ms", d.watermark_lag_ms, minimum=0),
        ingest_idle_ms=r.positive_int("ingest_idle_ms", d.ingest_idle_ms, minimum=10),
        session_timeout_ms=session_timeout_ms,
        max_hold_ms=max_hold_ms,
    )


def _parse_console(r: _Reader, base_dir: Path | None) -> ConsoleConfig:
    r.reject_unknown(set(ConsoleConfig.__dataclass_fields__))
    d = ConsoleConfig()
    spec = r.get("token", str, None)
    token = resolve_secret(spec, f"{r.where}.token", base_dir) if spec is not None else None
    actions = r.get("actions", bool, d.actions)
    if actions and token is None:
        raise r.fail("actions", "true needs console.token, so that only an authenticated user can act")
    urls = r.strings("metrics_urls", ())
    for i, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            raise r.fail(
                f"metrics_urls[{i}]",
                f"expected an http(s) URL such as http://127.0.0.1:8000/metrics, got {url!r}",
            )
    return ConsoleConfig(
        host=r.get("host", str, d.host),
        port=r.positive_int("port", d.port),
        token=token,
        actions=actions,
        metrics_urls=urls,
        scan_limit=r.positive_int("scan_limit", d.scan_limit, minimum=100),
        page_size=r.positive_int("page_size", d.page_size),
    )


def _parse_source(
    name: str, r: _Reader, base_dir: Path | None, rules: StageRules | None
) -> tuple[SourceConfig, Any]:
    """The source, and its provider object where ``rules`` know the provider (else None)."""
    provider_name, cls = _provider(r, rules)
    extra_keys = set(cls.options) if cls is not None else set(r.table) - SOURCE_KEYS
    r.reject_unknown(SOURCE_KEYS | extra_keys)
    specs = r.strings("secrets", ())
    if not specs:
        raise r.fail("secrets", 'at least one secret is required, e.g. secrets = ["env:MY_WEBHOOK_SECRET"]')
    secrets = tuple(resolve_secret(s, f"{r.where}.secrets[{i}]", base_dir) for i, s in enumerate(specs))
    tolerance = r.get("tolerance_seconds", int, None)
    if tolerance is not None and tolerance < 0:
        raise r.fail("tolerance_seconds", "must be 0 (no check) or more")
    options = {k: v for k, v in r.table.items() if k in extra_keys}
    public_url = r.get("public_url", str, "")
    if public_url:
        options["public_url"] = public_url
    for key in ("event_id", "event_type", "ordering_key"):
        value = r.get(key, str, "")
        if value and not (value.startswith("/") or value.startswith("header:")):
            raise r.fail(key, f'must be a JSON pointer ("/data/id") or "header:Name", got {value!r}')
    sample_rate = r.get("refused_sample_rate", float, 0.1)
    if not 0 < sample_rate <= 1:
        raise r.fail("refused_sample_rate", f"must be more than 0 and at most 1, got {sample_rate}")
    source = SourceConfig(
        name=name,
        provider=provider_name,
        secrets=secrets,
        tolerance_seconds=tolerance,
        allowed_ips=r.networks("allowed_ips"),
        max_body_bytes=r.positive_int("max_body_bytes", 1_048_576),
        events=r.strings("events", ("*",)),
        on_filtered=r.choice("on_filtered", ("accept", "reject"), "accept"),
        public_url=public_url,
        event_id=r.get("event_id", str, ""),
        event_type=r.get("event_type", str, ""),
        ordering_key=r.get("ordering_key", str, ""),
        record_refused=r.choice("record_refused", ("off", "on", "sampled"), "off"),
        refused_sample_rate=sample_rate,
        refused_per_minute=r.positive_int("refused_per_minute", 60),
        refused_body_bytes=r.positive_int("refused_body_bytes", 4096, minimum=0),
        options=options,
    )
    if cls is None:
        return source, None
    try:
        return source, cls(list(secrets), tolerance=tolerance, options=options, source=name)
    except ValueError as exc:
        raise ConfigError(f"{r.where}: {exc}") from None


def _provider(r: _Reader, rules: StageRules | None) -> tuple[str, ProviderClass | None]:
    """The source's provider name, and its class where ``rules`` know the providers."""
    name = r.get("provider", str, None)
    known = f"; one of {', '.join(sorted(rules.providers))}" if rules is not None else ""
    if name is None:
        raise r.fail("provider", f"missing{known}")
    if rules is None:
        return name, None
    if name not in rules.providers:
        raise r.fail("provider", f"unknown provider {name!r}{known}")
    return name, rules.providers[name]


def _parse_consumer(name: str, r: _Reader, rules: StageRules | None) -> ConsumerConfig:
    d = ConsumerConfig(name=name)
    if rules is not None:
        try:
            rules.check_consumer_name(name)
        except ValueError as exc:
            raise ConfigError(f"{r.where}: {exc}") from None
    events = r.strings("events", d.events)
    if rules is not None:
        for i, pattern in enumerate(events):
            try:
                rules.check_event_pattern(pattern)
            except ValueError as exc:
                raise r.fail(f"events[{i}]", str(exc)) from None
    options = {k: v for k, v in r.table.items() if k not in CONSUMER_KEYS}
    return ConsumerConfig(
        name=name,
        events=events,
        action=r.get("action", str, d.action),
        start=r.choice("start", ("earliest", "latest"), d.start),
        max_attempts=r.positive_int("max_attempts", d.max_attempts),
        backoff_initial_ms=r.positive_int("backoff_initial_ms", d.backoff_initial_ms, minimum=0),
        backoff_max_ms=r.positive_int("backoff_max_ms", d.backoff_max_ms, minimum=0),
        concurrency=r.positive_int("concurrency", d.concurrency),
        typed=r.get("typed", bool, d.typed),
        drain_timeout_seconds=_positive_seconds(r, "drain_timeout_seconds", d.drain_timeout_seconds),
        filter=_consumer_filter(r, rules),
        rate_limit=_rate_limit(r, rules),
        breaker=parse_breaker(f"{r.where}.breaker", r.table.get("breaker")),
        transform=_transform(r),
        handler_timeout_seconds=_positive_seconds(r, "handler_timeout_seconds", 0.0, allow_zero=True),
        options=options,
    )


def _consumer_filter(r: _Reader, rules: StageRules | None) -> dict[str, Any] | None:
    """A table, or the same as a JSON string (for filters kept as JSON elsewhere)."""
    if "filter" not in r.table:
        return None
    spec = r.table["filter"]
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise r.fail("filter", f"not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise r.fail("filter", f"expected a table (or a JSON object), got {type(spec).__name__} {spec!r}")
    if rules is not None and rules.check_filter is not None:
        try:
            rules.check_filter(spec)
        except ValueError as exc:
            at = getattr(exc, "at", "")
            message = getattr(exc, "message", str(exc))
            raise r.fail(f"filter.{at}" if at else "filter", message) from None
    return spec


def _rate_limit(r: _Reader, rules: StageRules | None) -> str:
    value = r.get("rate_limit", str, "")
    if value and rules is not None and rules.check_rate_limit is not None:
        try:
            rules.check_rate_limit(value)
        except ValueError as exc:
            raise r.fail("rate_limit", str(exc)) from None
    return value


def parse_breaker(where: str, value: Any) -> BreakerConfig | None:
    """``true`` for the defaults, or a table of the settings to change; ``where`` prefixes errors."""
    if value is None or value is False:
        return None
    if value is True:
        return BreakerConfig()
    if isinstance(value, BreakerConfig):
        return value
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: expected true, false or a table, e.g. breaker = {{ failures = 5, open_seconds = 30 }}"
        )
    b = _Reader(where, dict(value))
    b.reject_unknown(set(BreakerConfig.__dataclass_fields__))
    d = BreakerConfig()
    rate = b.get("failure_rate", float, d.failure_rate)
    if not 0 <= rate <= 1:
        raise b.fail("failure_rate", f"must be between 0 and 1 (a share of calls), got {rate}")
    return BreakerConfig(
        failures=b.positive_int("failures", d.failures),
        failure_rate=rate,
        window_seconds=_positive_seconds(b, "window_seconds", d.window_seconds),
        min_calls=b.positive_int("min_calls", d.min_calls),
        open_seconds=_positive_seconds(b, "open_seconds", d.open_seconds),
        probes=b.positive_int("probes", d.probes),
    )


def _transform(r: _Reader) -> str:
    value = r.get("transform", str, "")
    module, _, function = value.partition(":")
    if value and not (module and function):
        raise r.fail("transform", f'{value!r} is not "module:function"')
    return value


def _positive_seconds(r: _Reader, key: str, default: float, *, allow_zero: bool = False) -> float:
    value = r.get(key, float, default)
    if value < 0 or (value == 0 and not allow_zero):
        raise r.fail(key, "must be 0 (no limit) or more" if allow_zero else "must be greater than 0")
    return value

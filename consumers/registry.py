"""Where consumers come from: ``[consumers.NAME]`` tables of the config, or ``@consumer`` in Python.

    from hookstream.consumers import consumer

    @consumer("fulfil-orders", events=["stripe:payment_intent.succeeded"])
    async def fulfil(event):
        intent = event.typed.data.object        # typed: amount, currency, customer, ...
        ...

Run it with ``hookstream consume --config F --module myapp.handlers fulfil-orders``: the module
is imported, which registers the consumer. A name is declared once, in one place or the other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from hookstream.config import BreakerConfig, Config, ConsumerConfig, parse_breaker
from hookstream.errors import ConfigError

from .actions import Action, ActionSetup, FunctionAction, build_action, import_function
from .errors import ConsumerError, UnknownConsumer
from .events import Event
from .filters import FilterError, PayloadFilter
from .patterns import EventFilter, PatternError, check_consumer_name
from .ratelimit import parse_rate

Transform = Callable[[Event], Any]
"""Event in; an Event (the same, or ``event.with_payload(...)``) or None (drop it) out."""

H = TypeVar("H", bound=Callable[[Event], Any])


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer ready to run: its settings, what it wants, and how to make its action."""

    settings: ConsumerConfig
    filter: EventFilter
    make_action: Callable[[], Action]
    origin: str
    """Where it was declared, for messages: ``config examples/dev.toml`` or ``module myapp.handlers``."""
    payload_filter: PayloadFilter | None = None
    transform: Transform | None = None

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True)
class DeclaredConsumer:
    settings: ConsumerConfig
    handler: Callable[[Event], Any]
    module: str
    payload_filter: PayloadFilter | None = None
    transform: Transform | None = None


class Consumers:
    """Consumers declared in Python. ``hookstream.consumers.consumer`` registers in ``registry``."""

    def __init__(self) -> None:
        self._declared: dict[str, DeclaredConsumer] = {}

    def consumer(
        self,
        name: str,
        *,
        events: Iterable[str] = ("*",),
        typed: bool = True,
        start: str = "earliest",
        max_attempts: int = 5,
        backoff_initial_ms: int = 200,
        backoff_max_ms: int = 30_000,
        concurrency: int = 8,
        drain_timeout_seconds: float = 30.0,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - the config key's name
        rate_limit: str = "",
        breaker: bool | Mapping[str, Any] | BreakerConfig | None = None,
        transform: str | Transform | None = None,
        handler_timeout_seconds: float = 0.0,
    ) -> Callable[[H], H]:
        """Declare ``name``, handled by the decorated function (async, or sync: run in a thread).

        The function receives an Event; with ``typed`` (the default) its ``typed`` attribute is the
        schema-checked typed view, and an event that does not fit its schema goes to the DLQ.
        ``filter``, ``rate_limit``, ``breaker``, ``transform`` and ``handler_timeout_seconds``
        are the config's keys of the same names (consumers/README.md).
        """
        where = f"@consumer({name!r})"
        try:
            check_consumer_name(name)
            filter_ = EventFilter.of(events)
        except ValueError as exc:
            raise ConsumerError(f"{where}: {exc}") from None
        try:
            payload_filter = PayloadFilter.parse(dict(filter)) if filter is not None else None
        except FilterError as exc:
            raise ConsumerError(f"{where}: filter.{exc}" if exc.at else f"{where}: filter: {exc}") from None
        if rate_limit:
            try:
                parse_rate(rate_limit)
            except ValueError as exc:
                raise ConsumerError(f"{where}: rate_limit: {exc}") from None
        try:
            breaker_settings = parse_breaker(f"{where}: breaker", breaker)
        except ConfigError as exc:
            raise ConsumerError(str(exc)) from None
        transform_fn: Transform | None
        if isinstance(transform, str) and transform:
            try:
                transform_fn = import_function(transform, f"{where}: transform")
            except ConfigError as exc:
                raise ConsumerError(str(exc)) from None
            transform_label = transform
        else:
            transform_fn = transform or None
            transform_label = _label(transform_fn) if transform_fn is not None else ""
        if handler_timeout_seconds < 0:
            raise ConsumerError(f"{where}: handler_timeout_seconds must be 0 (no limit) or more")
        if start not in ("earliest", "latest"):
            raise ConsumerError(f'@consumer({name!r}): start must be "earliest" or "latest", got {start!r}')
        for label, value in (("max_attempts", max_attempts), ("concurrency", concurrency)):
            if value < 1:
                raise ConsumerError(f"@consumer({name!r}): {label} must be at least 1, got {value}")
        settings = ConsumerConfig(
            name=name,
            events=tuple(p.text for p in filter_.patterns),
            action="python",
            start=start,
            max_attempts=max_attempts,
            backoff_initial_ms=backoff_initial_ms,
            backoff_max_ms=backoff_max_ms,
            concurrency=concurrency,
            typed=typed,
            drain_timeout_seconds=drain_timeout_seconds,
            filter=payload_filter.spec if payload_filter else None,  # type: ignore[arg-type]
            rate_limit=rate_limit,
            breaker=breaker_settings,
            transform=transform_label,
            handler_timeout_seconds=float(handler_timeout_seconds),
        )

        def register(handler: H) -> H:
            module = getattr(handler, "__module__", "?")
            existing = self._declared.get(name)
            if existing is not None and existing.module != module:
                raise ConsumerError(
                    f"consumer {name!r} is declared twice: in {existing.module} and in {module}"
                )
            self._declared[name] = DeclaredConsumer(
                replace(settings, action=_label(handler)), handler, module, payload_filter, transform_fn
            )
            return handler

        return register

    def get(self, name: str) -> DeclaredConsumer | None:
        return self._declared.get(name)

    def names(self) -> list[str]:
        return sorted(self._declared)

    def clear(self) -> None:
        self._declared.clear()


def _label(handler: Callable[..., Any]) -> str:
    return f"{getattr(handler, '__module__', '?')}:{getattr(handler, '__qualname__', repr(handler))}"


registry = Consumers()
consumer = registry.consumer


def import_modules(modules: Sequence[str]) -> None:
    """Import the modules that declare consumers (``--module``)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConsumerError(f"--module {name}: cannot import it: {exc}") from None


def resolve_consumers(
    config: Config,
    names: Sequence[str],
    *,
    modules: Sequence[str] = (),
    consumers: Consumers | None = None,
) -> list[ConsumerSpec]:
    """The named consumers, from the config or from Python declarations (after importing ``modules``)."""
    declared = consumers if consumers is not None else registry
    import_modules(modules)
    label = str(config.path) if config.path else "<config>"
    specs: list[ConsumerSpec] = []
    for name in dict.fromkeys(names):
        in_config = config.consumers.get(name)
        in_python = declared.get(name)
        if in_config is not None and in_python is not None:
            raise ConsumerError(
                f"consumer {name!r} is declared both in {label} ([consumers.{name}]) and in "
                f"{in_python.module} (@consumer); keep one"
            )
        if in_config is not None:
            setup = ActionSetup(
                consumer=in_config,
                where=f"{label}: consumers.{name}",
                base_dir=config.path.parent if config.path else None,
            )
            build_action(setup)  # fail now, with the config's words, not at the first event

            def make(setup: ActionSetup = setup) -> Action:
                return build_action(setup)

            try:
                filter_ = EventFilter.of(in_config.events)
            except PatternError as exc:
                raise ConfigError(f"{label}: consumers.{name}.events: {exc}") from None
            specs.append(
                ConsumerSpec(
                    in_config,
                    filter_,
                    make,
                    f"config {label}",
                    _payload_filter(in_config, setup.where),
                    import_function(in_config.transform, f"{setup.where}.transform")
                    if in_config.transform
                    else None,
                )
            )
        elif in_python is not None:
            fn = in_python.handler

            def make_fn(fn: Callable[[Event], Any] = fn, label: str = in_python.settings.action) -> Action:
                return FunctionAction(fn, label)

            specs.append(
                ConsumerSpec(
                    in_python.settings,
                    EventFilter.of(in_python.settings.events),
                    make_fn,
                    f"module {in_python.module}",
                    in_python.payload_filter,
                    in_python.transform,
                )
            )
        else:
            raise UnknownConsumer(_unknown(name, label, config, declared, modules))
    return specs


def _payload_filter(settings: ConsumerConfig, where: str) -> PayloadFilter | None:
    if settings.filter is None:
        return None
    try:
        return PayloadFilter.parse(settings.filter)
    except FilterError as exc:  # checked at load already, unless the config was built without rules
        raise ConfigError(f"{where}.filter.{exc}" if exc.at else f"{where}.filter: {exc}") from None


def _unknown(name: str, label: str, config: Config, declared: Consumers, modules: Sequence[str]) -> str:
    known = sorted(set(config.consumers) | set(declared.names()))
    where = f"in {label}" + (f" or in {', '.join(modules)}" if modules else "")
    hint = f"known: {', '.join(known)}" if known else "none is declared"
    return (
        f"no consumer named {name!r} {where} ({hint}); declare it as [consumers.{name}] in the config, "
        "or with @consumer in a module passed with --module"
    )

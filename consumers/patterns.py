"""Event patterns: which events a consumer receives.

A pattern is ``"SOURCE:TYPE"``, each side matched against the event's source (the name of its
``[sources.NAME]`` table) and event type, where ``*`` stands for any run of characters, dots
and slashes included: ``"stripe:payment_intent.*"``, ``"shopify:orders/*"``, ``"*:push"``.
A lone ``"*"`` matches every event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


class PatternError(ValueError):
    """A pattern that cannot match anything the way its author meant."""


@dataclass(frozen=True)
class EventPattern:
    text: str
    source: re.Pattern[str]
    event_type: re.Pattern[str]

    def matches(self, source: str, event_type: str) -> bool:
        return bool(self.source.fullmatch(source) and self.event_type.fullmatch(event_type))


def _glob(part: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(piece) for piece in part.split("*")), re.DOTALL)


def parse_pattern(text: str) -> EventPattern:
    """One ``"SOURCE:TYPE"`` pattern (or ``"*"``); PatternError says how to write it."""
    if text.strip() == "*":
        return EventPattern(text, _glob("*"), _glob("*"))
    source, sep, event_type = text.partition(":")
    if not sep or not source.strip() or not event_type.strip():
        raise PatternError(
            f"{text!r} is not an event pattern: write SOURCE:TYPE with * wildcards, "
            'e.g. "stripe:payment_intent.*", "github:*", or "*" for every event'
        )
    return EventPattern(text, _glob(source.strip()), _glob(event_type.strip()))


@dataclass(frozen=True)
class EventFilter:
    """A consumer's patterns: an event is wanted when any pattern matches it."""

    patterns: tuple[EventPattern, ...]

    @classmethod
    def of(cls, texts: Iterable[str]) -> EventFilter:
        patterns = tuple(parse_pattern(t) for t in texts)
        if not patterns:
            raise PatternError('no event patterns: give at least one, e.g. ["*"]')
        return cls(patterns)

    def matches(self, source: str, event_type: str) -> bool:
        return any(p.matches(source, event_type) for p in self.patterns)


_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")


def check_consumer_name(name: str) -> None:
    """A consumer's name becomes part of its group id and DLQ topic, so Kafka's rules apply."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"consumer name {name!r} may only use letters, digits, '.', '_' and '-' "
            "(it names the group hookstream.consumer.NAME and the topic hookstream.dlq.NAME)"
        )

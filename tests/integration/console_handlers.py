"""A consumer action for the console's tests: ``tests.integration.console_handlers:handle``
dead-letters the events whose ids are in ``FAILING`` and records the others in ``HANDLED``."""

from __future__ import annotations

from hookstream.consumers import PermanentError

FAILING: set[str] = set()
HANDLED: list[str] = []


async def handle(event) -> None:
    if event.raw.event_id in FAILING:
        raise PermanentError(f"upstream refused {event.raw.event_id}")
    HANDLED.append(event.raw.event_id)

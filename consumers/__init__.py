"""Consumers: typed handlers over the events topic, each its own consumer group, with retries,
a dead-letter topic, replay and idempotent built-in actions. See consumers/README.md.

    from hookstream.consumers import consumer

    @consumer("fulfil-orders", events=["stripe:payment_intent.succeeded"])
    async def fulfil(event):
        intent = event.typed.data.object
        ...
"""

from __future__ import annotations

from .errors import ConsumerBusy, ConsumerError, PermanentError, RetryLater, UnknownConsumer
from .events import Event, current_event
from .idempotency import ProcessedIds
from .registry import Consumers, ConsumerSpec, consumer, registry, resolve_consumers

__all__ = [
    "ConsumerBusy",
    "ConsumerError",
    "ConsumerSpec",
    "Consumers",
    "Event",
    "PermanentError",
    "ProcessedIds",
    "RetryLater",
    "UnknownConsumer",
    "consumer",
    "current_event",
    "registry",
    "resolve_consumers",
]

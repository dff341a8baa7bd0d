"""The one error the Kafka layer raises on purpose."""

from __future__ import annotations

from hookstream.errors import HookstreamError


class KafkaLayerError(HookstreamError):
    """Kafka cannot do what hookstream needs (a topic that cannot be created, has the wrong
    partition count or does not exist; a broker that cannot be reached or started). The message
    is one line fit to show a user, naming what failed and, where there is one, the fix."""

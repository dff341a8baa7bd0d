"""Errors of the consumers package. Each message is fit to show a user as one line."""

from __future__ import annotations

from hookstream.errors import ConfigError, HookstreamError


class ConsumerError(HookstreamError):
    """A consumer cannot run, replay or redrive as asked."""


class UnknownConsumer(ConfigError):
    """No consumer of that name is declared in the config or in an imported module."""


class ConsumerBusy(ConsumerError):
    """The operation needs the consumer stopped, and its group has active members."""


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help (bad data, a 4xx answer): the event goes
    to the DLQ at once, with this message as the reason."""


class RetryLater(Exception):
    """Raise from a handler when the receiver asked to wait (e.g. its ``Retry-After``): the next
    attempt waits at least ``retry_after`` seconds, and an open circuit breaker stays open as long."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

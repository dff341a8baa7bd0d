"""The error hierarchy. Ingest maps them to HTTP statuses where it refuses a request
(``ingest.app``), the CLI to one line and an exit code (``cli``)."""

from __future__ import annotations


class HookstreamError(Exception):
    """Base of every error hookstream raises on purpose: its message is fit to show a user."""


class ConfigError(HookstreamError):
    """The configuration is invalid. The message names the file, the key and the fix."""


class VerificationError(HookstreamError):
    """A delivery's signature could not be verified.

    ``code`` is one of the stable reason codes below; they appear in HTTP bodies, metrics
    labels and `hookstream verify` output, so they never change spelling.
    """

    MISSING = "missing_signature"
    MALFORMED = "malformed_signature"
    MISMATCH = "signature_mismatch"
    STALE = "stale_timestamp"
    CODES = (MISSING, MALFORMED, MISMATCH, STALE)

    def __init__(self, code: str, detail: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown verification error code {code!r}")
        super().__init__(detail)
        self.code = code
        self.detail = detail


class PayloadError(HookstreamError):
    """The body verified but cannot be parsed as the provider's payload."""


class PublishError(HookstreamError):
    """Kafka did not acknowledge a record in time; nothing may be answered 2xx."""


class RecordTooLarge(PublishError):
    """The event, in its envelope, exceeds ``kafka.max_message_bytes``: Kafka would refuse it every time."""


class TopicTooSmall(HookstreamError):
    """A topic refused a record as larger than its ``max.message.bytes``: the message names the
    topic and the command that raises it. Whoever forwarded the record has not acknowledged it."""

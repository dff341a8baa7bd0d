"""Prometheus metrics of the consumers in one process (``hookstream consume --metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


class ConsumerMetrics:
    """On a registry per process run, so several runs (tests, benchmarks) can share one process;
    every series is labelled with the consumer's name."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "hookstream_consumer_handled_events",
            "Events the consumer's action handled.",
            ["consumer"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "hookstream_consumer_dead_lettered_events",
            "Events sent to the consumer's DLQ.",
            ["consumer"],
            registry=self.registry,
        )
        self.filtered = Counter(
            "hookstream_consumer_filtered_events",
            "Events committed past without handling: not matched by the consumer's event patterns "
            '(reason="events"), by its filter (reason="filter"), or dropped by its transform '
            '(reason="transform").',
            ["consumer", "reason"],
            registry=self.registry,
        )
        self.failed_attempts = Counter(
            "hookstream_consumer_failed_attempts",
            'Handler calls that failed; reason="timeout" for those over handler_timeout_seconds.',
            ["consumer", "reason"],
            registry=self.registry,
        )
        self.rate_limited_seconds = Counter(
            "hookstream_consumer_rate_limited_seconds",
            "Seconds handler calls waited for the consumer's rate limit, summed over calls.",
            ["consumer"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "hookstream_consumer_breaker_state",
            "The consumer's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["consumer"],
            registry=self.registry,
        )
        self.breaker_transitions = Counter(
            "hookstream_consumer_breaker_transitions",
            "Times the consumer's circuit breaker moved to each state.",
            ["consumer", "state"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "hookstream_consumer_lag_events",
            "Records of the assigned partitions not yet done: from the first unfinished one to the "
            "partitions' ends as last fetched.",
            ["consumer"],
            registry=self.registry,
        )

    def value(self, name: str, **labels: str) -> float:
        """One sample's value (0 when absent), for tests and tools."""
        value = self.registry.get_sample_value(name, labels)
        return value or 0.0

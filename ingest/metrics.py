"""Prometheus metrics for ingest, on a registry per app so several apps can live in one process."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString


class Counts(Collector):
    """A labelled counter kept as plain ints, turned into samples at scrape time.

    The request path only adds 1 to a dict entry: prometheus-client's ``Counter`` takes a lock
    and a label lookup per increment, measurable in ingest's per-request CPU. Everything runs
    on the event loop's thread, scrapes included, so nothing else touches the dict meanwhile.
    """

    def __init__(self, name: str, documentation: str, labels: list[str], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.values: dict[tuple[str, ...], int] = {}
        registry.register(self)

    def inc(self, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in self.values.items():
            family.add_metric(labels, value)
        yield family


class Latencies(Collector):
    """A histogram kept as plain numbers, turned into samples at scrape time (as ``Counts``).

    prometheus-client's ``Histogram`` takes a lock for its sum and another for the bucket on
    every observation; here an observation is a bisect and two additions on the event loop.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        """Observations per bucket, not cumulative; the last one is above every bound (+Inf)."""
        self.sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # a bucket counts values <= its bound
        self.sum += value

    def collect(self) -> Iterator[Metric]:
        buckets, cumulative = [], 0
        for bound, count in zip((*self.bounds, INF), self.counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self.sum)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counts(
            "hookstream_ingest_requests",
            "Webhook requests answered, by source and HTTP status.",
            ["source", "status"],
            self.registry,
        )
        self.verification_failures = Counts(
            "hookstream_ingest_verification_failures",
            "Requests refused by signature verification, by reason.",
            ["source", "reason"],
            self.registry,
        )
        self.filtered = Counts(
            "hookstream_ingest_filtered_events",
            "Verified events dropped by the source's event-type filter.",
            ["source", "event_type"],
            self.registry,
        )
        self.published = Counts(
            "hookstream_ingest_published_events",
            "Events acknowledged by Kafka.",
            ["source"],
            self.registry,
        )
        self.publish_latency = Latencies(
            "hookstream_ingest_publish_latency_seconds",
            "Time from a request's publish to Kafka's acknowledgement, its wait in a batch included.",
            (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            self.registry,
        )
        self.secret_matched = Counts(
            "hookstream_ingest_secret_matched",
            "Which configured secret verified a request (watch rotation progress).",
            ["source", "index"],
            self.registry,
        )
        self.ready = Gauge(
            "hookstream_ingest_kafka_ready", "1 once the producer is connected.", registry=self.registry
        )

    def watch_batches(self, publisher: Any) -> None:
        """Export the publisher's batch counters (read at scrape time, free on the request path)."""
        self.registry.register(_BatchCollector(publisher))


class _BatchCollector(Collector):
    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "hookstream_ingest_kafka_batches",
            "Record batches handed to Kafka; records / batches is how many requests share one.",
            value=self.publisher.batches_sent,
        )
        yield CounterMetricFamily(
            "hookstream_ingest_kafka_abandoned_batches",
            "Batches not sent because all their requests had been answered 503 (Kafka slow or down).",
            value=self.publisher.batches_abandoned,
        )
        yield CounterMetricFamily(
            "hookstream_ingest_kafka_batched_records",
            "Records handed to Kafka in those batches.",
            value=self.publisher.records_sent,
        )
        yield GaugeMetricFamily(
            "hookstream_ingest_kafka_waiting_requests",
            "Requests waiting now for Kafka to acknowledge their record (grows while Kafka is slow).",
            value=self.publisher.waiting,
        )

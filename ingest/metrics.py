"""Prometheus metrics for ingest, on a registry per app so several apps can live in one process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hookstream_ingest_requests",
            "Webhook requests answered, by source and HTTP status.",
            ["source", "status"],
            registry=self.registry,
        )
        self.verification_failures = Counter(
            "hookstream_ingest_verification_failures",
            "Requests refused by signature verification, by reason.",
            ["source", "reason"],
            registry=self.registry,
        )
        self.filtered = Counter(
            "hookstream_ingest_filtered_events",
            "Verified events dropped by the source's event-type filter.",
            ["source", "event_type"],
            registry=self.registry,
        )
        self.published = Counter(
            "hookstream_ingest_published_events",
            "Events acknowledged by Kafka.",
            ["source"],
            registry=self.registry,
        )
        self.publish_latency = Histogram(
            "hookstream_ingest_publish_latency_seconds",
            "Time from a request's publish to Kafka's acknowledgement, its wait in a batch included.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.secret_matched = Counter(
            "hookstream_ingest_secret_matched",
            "Which configured secret verified a request (watch rotation progress).",
            ["source", "index"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "hookstream_ingest_kafka_ready", "1 once the producer is connected.", registry=self.registry
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def watch_batches(self, publisher: Any) -> None:
        """Export the publisher's batch counters (read at scrape time, free on the request path)."""
        self.registry.register(_BatchCollector(publisher))

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: label lookup is measurable on the request path."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


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

"""Prometheus metrics for the streams worker, served at ``/metrics`` by its web server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamsMetrics:
    """On a registry per app, so several apps (tests, benchmarks) can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.forwarded = Counter(
            "hookstream_streams_forwarded_events",
            "First sightings forwarded by dedupe to the repartition topic.",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hookstream_streams_duplicate_events",
            "Redelivered copies of an already seen event id, dropped by dedupe.",
            registry=self.registry,
        )
        self.undecodable = Counter(
            "hookstream_streams_undecodable_records",
            "Raw or repartition records that are not a RawEvent envelope; skipped and logged.",
            registry=self.registry,
        )
        self.reread = Counter(
            "hookstream_streams_reread_records",
            "Records faust handed over a second time within one assignment (it fetches before it "
            "seeks to the committed offsets at startup); recognised by offset and skipped.",
            registry=self.registry,
        )
        self.skipped = Counter(
            "hookstream_streams_skipped_records",
            "Records faust's consumer skipped; the worker stopped before acknowledging past them "
            "(exit 1) so that its restart reads them.",
            registry=self.registry,
        )
        self.stalls = Counter(
            "hookstream_streams_stalled_seeks",
            "Times the worker stopped (exit 1) because its stream partitions waited too long for "
            "the seek to their committed offsets after a rebalance; its supervisor restarts it.",
            registry=self.registry,
        )
        self.released = Counter(
            "hookstream_streams_released_events",
            "Events published in order to the events topic.",
            ["reason"],  # watermark | max_wait (after max_hold_ms, for a silent partition)
            registry=self.registry,
        )
        self.late = Counter(
            "hookstream_streams_late_events",
            "Events published with late=True: a newer event of their key had been released.",
            registry=self.registry,
        )
        self.sequencer_duplicates = Counter(
            "hookstream_streams_sequencer_duplicate_events",
            "Copies the sequencer dropped (already buffered, or known delivered) after a restart.",
            registry=self.registry,
        )
        self.buffered = Gauge(
            "hookstream_streams_buffered_events",
            "Events the sequencer holds, waiting for slower raw partitions.",
            registry=self.registry,
        )
        self.silent = Gauge(
            "hookstream_streams_silent_raw_partitions",
            "Raw partitions whose watermarks stopped (worker gone, group rebalancing) or that are "
            "catching up after it; events they may precede are held, up to max_hold_ms.",
            registry=self.registry,
        )
        self.low_watermark = Gauge(
            "hookstream_streams_low_watermark_ms",
            "Lowest raw-partition watermark seen by any sequencer of this worker (ms since epoch).",
            registry=self.registry,
        )

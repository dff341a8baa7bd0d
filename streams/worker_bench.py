"""How fast one streams worker dedupes (and sequences) a backlog of raw events.

``measure_dedupe_throughput`` publishes ``n`` raw records (one in ``duplicate_every`` a copy of
an earlier event id), starts one worker process on them and times the work from the record
timestamps the worker's producer stamps: first to last record forwarded by dedupe, and first to
last event published by the sequencer. Startup and table recovery are not counted.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hookstream.config import Config, KafkaConfig, load_config
from hookstream.kafka.local_broker import free_port
from hookstream.kafka.reads import read_topic
from hookstream.proc import process_cpu_seconds, process_status_mb
from hookstream.sample_events import now_ms, produce_raw, raw_event
from hookstream.streams.topics import create_topics, repartition_topic
from hookstream.streams.watermark import is_watermark
from hookstream.streams.worker_process import WorkerProcess, streams_config_toml


async def measure_dedupe_throughput(
    bootstrap: str,
    n: int,
    *,
    partitions: int = 8,
    duplicate_every: int = 10,
    timeout: float = 600,
) -> dict[str, Any]:
    """Events per second through one worker: dedupe alone, and dedupe + sequence end to end."""
    suffix = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="hookstream-bench-") as tmp:
        base = Path(tmp)
        config_path, config = _bench_config(
            base, suffix, bootstrap, partitions, watermark_interval_ms=100, watermark_lag_ms=200
        )
        await create_topics(config)
        distinct = n - n // duplicate_every
        key_count = max(1, n // 10)
        records = []
        received = now_ms()
        for i in range(n):
            number = i - i // duplicate_every if (i + 1) % duplicate_every else (i // duplicate_every)
            event_id = f"bench-{suffix}-{number}"
            records.append((raw_event(event_id, f"key-{number % key_count}", received + i), None))
        await produce_raw(bootstrap, config.kafka.raw_topic, records, linger_ms=5)
        unique = len({e.event_id for e, _ in records})

        drained = await measure_drain(config_path, base / f"bench-{suffix}.log", n, unique, timeout=timeout)
        return {
            "raw_records": n,
            "distinct_events": unique,
            "partitions": partitions,
            "ordering_keys": key_count,
            "expected_distinct": distinct,
            **drained,
        }


async def measure_drain(
    config_path: Path,
    log_path: Path,
    raw_records: int,
    unique: int,
    *,
    timeout: float = 600,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Start one worker on the backlog of ``raw_records`` records (``unique`` distinct event
    ids) in the raw topic of ``config_path``, wait until it published every one, and time it
    by the record timestamps its producer stamped: dedupe from its first to its last forward,
    end to end from that first forward to the last event published."""
    config = load_config(config_path)
    worker = WorkerProcess(config_path, log_path).start()
    try:
        await asyncio.to_thread(worker.wait_for, "streams: processing", 120)
        assert worker.process is not None
        cpu_before = process_cpu_seconds(worker.process.pid)
        metrics = await _wait_metric(
            config.streams.web_port, worker, unique, timeout, progress, "released", "late"
        )
        cpu_s = process_cpu_seconds(worker.process.pid) - cpu_before
        rss_mb = worker_rss_mb(worker)
    finally:
        await asyncio.to_thread(worker.stop)
    forwarded = await _timestamps(
        config.kafka.bootstrap_servers, repartition_topic(config), skip_watermarks=True
    )
    published = await _timestamps(config.kafka.bootstrap_servers, config.kafka.events_topic)
    dedupe_s = (max(forwarded) - min(forwarded)) / 1000 or 0.001
    end_to_end_s = (max(published) - min(forwarded)) / 1000 or 0.001
    return {
        "duplicates_dropped": int(metrics.get("hookstream_streams_duplicate_events_total", 0)),
        "late": int(metrics.get("hookstream_streams_late_events_total", 0)),
        "published": len(published),
        "dedupe_seconds": round(dedupe_s, 3),
        "dedupe_events_per_s": round(raw_records / dedupe_s),
        "end_to_end_seconds": round(end_to_end_s, 3),
        "end_to_end_events_per_s": round(raw_records / end_to_end_s),
        # CPU per record holds up on a busy machine, where the rates above swing with the load.
        "worker_cpu_us_per_raw_record": round(cpu_s / raw_records * 1e6, 1),
        "worker_rss_mb": rss_mb,
    }


def worker_rss_mb(worker: WorkerProcess) -> float | None:
    """The worker process's resident memory now, in MB (Linux), else None."""
    return _proc_status_mb(worker, "VmRSS:")


def _proc_status_mb(worker: WorkerProcess, field: str) -> float | None:
    return None if worker.process is None else process_status_mb(worker.process.pid, field)


async def _metrics(port: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.HTTPError:
            return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("hookstream_") and "_created" not in line:
            name, value = line.rsplit(" ", 1)
            name = name.split("{")[0]
            values[name] = values.get(name, 0) + float(value)
    return values


async def _timestamps(bootstrap: str, topic: str, skip_watermarks: bool = False) -> list[int]:
    records = await read_topic(KafkaConfig(bootstrap_servers=bootstrap), topic, timeout=600)
    return [r.timestamp for r in records if not (skip_watermarks and is_watermark(r.headers))]


async def measure_memory(
    bootstrap: str,
    ids: int,
    *,
    store: str,
    partitions: int = 8,
    sample: int = 1000,
    timeout: float = 3600,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """The worker's memory while its tables remember ``ids`` event ids, and what a restart costs.

    Publishes ``ids`` distinct raw events, lets one worker (table store ``store``) take them all,
    reads its RSS, stops it, starts it again on the same data directory and times its recovery
    (start to processing), reads its RSS again, and then sends copies of ``sample`` of the old
    ids: all of them must be dropped as duplicates, which shows the restarted worker remembers.
    """
    suffix = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="hookstream-bench-") as tmp:
        base = Path(tmp)
        config_path, config = _bench_config(base, suffix, bootstrap, partitions, store=store)
        log_path = base / f"bench-{suffix}.log"
        await create_topics(config)
        key_count = max(1, ids // 10)
        received = now_ms()

        def event(number: int, at: int) -> tuple[Any, None]:
            return raw_event(f"bench-{suffix}-{number}", f"key-{number % key_count}", at), None

        chunk = 50_000
        for first in range(0, ids, chunk):
            numbers = range(first, min(ids, first + chunk))
            await produce_raw(
                bootstrap, config.kafka.raw_topic, (event(i, received + i) for i in numbers), linger_ms=5
            )
            progress(f"bench: {numbers.stop:,} of {ids:,} raw events published")

        progress(f"bench: one worker ({store}) takes in {ids:,} event ids…")
        worker = WorkerProcess(config_path, log_path).start()
        try:
            await asyncio.to_thread(worker.wait_for, "streams: processing", 600)
            await _wait_metric(config.streams.web_port, worker, ids, timeout, progress, "released")
            await asyncio.sleep(2)  # the last table writes
            rss_mb, peak_mb = worker_rss_mb(worker), worker_peak_rss_mb(worker)
        finally:
            stopped = await asyncio.to_thread(worker.stop)
        if stopped != 0:
            raise TimeoutError(f"the worker exited {stopped} on SIGTERM:\n{worker.output()[-2000:]}")

        progress("bench: restart on the same data directory…")
        started = time.monotonic()
        worker = WorkerProcess(config_path, log_path).start()
        try:
            await asyncio.to_thread(worker.wait_for, "streams: processing", 600)
            recovery_s = time.monotonic() - started
            await asyncio.sleep(2)
            restarted_rss_mb = worker_rss_mb(worker)
            restarted_peak_mb = worker_peak_rss_mb(worker)
            # Copies of old ids, received now: each one must be dropped as a duplicate.
            step = max(1, ids // sample)
            copies = [event(i, now_ms()) for i in range(0, ids, step)][:sample]
            await produce_raw(bootstrap, config.kafka.raw_topic, copies)
            metrics = await _wait_metric(
                config.streams.web_port, worker, len(copies), 120, progress, "duplicate", "forwarded"
            )
        finally:
            await asyncio.to_thread(worker.stop)
    return {
        "store": store,
        "event_ids": ids,
        "partitions": partitions,
        "ordering_keys": key_count,
        "rss_mb": rss_mb,
        "peak_rss_mb": peak_mb,
        "recovery_seconds": round(recovery_s, 2),
        "restarted_rss_mb": restarted_rss_mb,
        "restarted_peak_rss_mb": restarted_peak_mb,
        "old_ids_sent_again": len(copies),
        "old_ids_dropped_as_duplicates": int(metrics.get("hookstream_streams_duplicate_events_total", 0)),
        "old_ids_forwarded_again": int(metrics.get("hookstream_streams_forwarded_events_total", 0)),
    }


def _bench_config(
    base: Path, suffix: str, bootstrap: str, partitions: int, **streams: Any
) -> tuple[Path, Config]:
    """A worker's config file for a bench run's own topics and group, under ``base``."""
    config_path = base / f"bench-{suffix}.toml"
    config_path.write_text(
        streams_config_toml(
            bootstrap,
            raw_topic=f"bench.raw.{suffix}",
            events_topic=f"bench.events.{suffix}",
            partitions=partitions,
            app_id=f"bench-streams-{suffix}",
            data_dir=base / "data",
            web_port=free_port(),
            session_timeout_ms=6000,
            **streams,
        )
    )
    return config_path, load_config(config_path)


async def _wait_metric(
    port: int,
    worker: WorkerProcess,
    total: int,
    timeout: float,
    progress: Callable[[str], None],
    *counters: str,
) -> dict[str, float]:
    """Wait until the sum of ``hookstream_streams_<counter>_events_total`` reaches ``total``,
    with a progress line every 10 s."""
    deadline = time.monotonic() + timeout
    shown = time.monotonic()
    while True:
        if worker.process is not None and worker.process.poll() is not None:
            raise TimeoutError(f"the worker exited {worker.process.returncode}:\n{worker.output()[-2000:]}")
        metrics = await _metrics(port)
        done = sum(metrics.get(f"hookstream_streams_{c}_events_total", 0) for c in counters)
        if done >= total:
            return metrics
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark did not finish in {timeout} s: {metrics}")
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            progress(f"bench: {int(done):,} of {total:,} ({worker_rss_mb(worker)} MB resident)")
        await asyncio.sleep(0.5)


def worker_peak_rss_mb(worker: WorkerProcess) -> float | None:
    """The worker process's peak resident memory so far, in MB (Linux), else None."""
    return _proc_status_mb(worker, "VmHWM:")

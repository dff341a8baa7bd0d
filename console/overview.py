"""The Overview page's numbers: accepted events of the last hour (from the raw topic), refusals
by reason (from ingest's /metrics), and each consumer's lag and DLQ depth."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hookstream.config import Config
from hookstream.kafka.browse import TopicBrowser

from .consumers import consumer_state
from .events import events_of

HOUR_MS = 3_600_000
BUCKETS = 12
"""Five-minute bars over the hour."""


def bar_chart(values: list[int], labels: list[str], *, width: int = 480, height: int = 80) -> dict[str, Any]:
    """Bars for a template to draw as SVG: no script, nothing but numbers and escaped labels."""
    top = max(values, default=0) or 1
    step = width / max(1, len(values))
    bars = [
        {
            "x": round(i * step + 1, 1),
            "w": round(max(1.0, step - 2), 1),
            "h": round(height * v / top, 1),
            "y": round(height - height * v / top, 1),
            "value": v,
            "label": labels[i],
        }
        for i, v in enumerate(values)
    ]
    return {"width": width, "height": height, "bars": bars, "max": max(values, default=0)}


async def accepted_last_hour(config: Config, browser: TopicBrowser, now_ms: int) -> dict[str, Any]:
    topic = config.kafka.raw_topic
    tps = await browser.partitions(topic)
    _firsts, ends = await browser.bounds(tps)
    starts = await browser.offsets_for_time(tps, now_ms - HOUR_MS)
    in_hour = {tp: (starts[tp], ends[tp]) for tp in tps if starts[tp] is not None}
    total = sum(b - a for a, b in in_hour.values())
    share = max(1, config.console.scan_limit // max(1, len(in_hour)))
    # The newest records of each partition, when the hour holds more than one scan may read.
    windows = {tp: (max(a, b - share), b) for tp, (a, b) in in_hour.items()}
    by_type: Counter[tuple[str, str]] = Counter()
    buckets = [0] * BUCKETS
    scanned = 0
    for records in (await browser.read(windows)).values():
        scanned += len(records)
        for record, event in events_of(records):
            by_type[(event.source, event.event_type)] += 1
            age = now_ms - record.timestamp
            if 0 <= age < HOUR_MS:
                buckets[BUCKETS - 1 - age * BUCKETS // HOUR_MS] += 1
    labels = [f"{(BUCKETS - i) * 5} min ago" for i in range(BUCKETS)]
    return {
        "by_type": [
            {"source": s, "event_type": t, "count": n}
            for (s, t), n in sorted(by_type.items(), key=lambda kv: -kv[1])
        ],
        "total": sum(by_type.values()),
        "scanned": scanned,
        "records_in_hour": total,
        "chart": bar_chart(buckets, labels),
    }


async def refusals(urls: tuple[str, ...]) -> dict[str, Any]:
    """Refused requests by source and reason, summed over the ingest processes that answered."""
    reasons: Counter[tuple[str, str]] = Counter()
    reached, unreachable = [], []
    async with httpx.AsyncClient(timeout=2.0) as client:
        for url in urls:
            try:
                response = await client.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                unreachable.append({"url": url, "error": str(exc) or type(exc).__name__})
                continue
            reached.append(url)
            for family in text_string_to_metric_families(response.text):
                for sample in family.samples:
                    if sample.name == "hookstream_ingest_verification_failures_total":
                        reasons[(sample.labels.get("source", "?"), sample.labels.get("reason", "?"))] += int(
                            sample.value
                        )
                    elif sample.name == "hookstream_ingest_requests_total":
                        status = sample.labels.get("status", "")
                        if status.startswith("4") and status != "401":  # 401s are counted by reason above
                            reasons[(sample.labels.get("source", "?"), f"http_{status}")] += int(sample.value)
    rows = [
        {"source": s, "reason": r, "count": n}
        for (s, r), n in sorted(reasons.items(), key=lambda kv: -kv[1])
        if n
    ]
    return {
        "rows": rows,
        "reached": reached,
        "unreachable": unreachable,
        "chart": bar_chart([r["count"] for r in rows], [f"{r['source']}: {r['reason']}" for r in rows]),
    }


async def overview(config: Config, browser: TopicBrowser) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    consumers = []
    for name in config.consumers:
        state = await consumer_state(config, browser, name)
        consumers.append({k: state[k] for k in ("name", "state", "lag", "dlq_depth")})
    return {
        "accepted": await accepted_last_hour(config, browser, now_ms),
        "refusals": await refusals(config.console.metrics_urls),
        "consumers": consumers,
    }

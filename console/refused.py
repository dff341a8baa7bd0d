"""The Refused requests page: what ingest recorded to ``kafka.refused_topic`` (sources with
``record_refused``), newest first, each with the fix its reason suggests."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookstream.schemas.refused import decode_refused

from .events import format_cursor, parse_cursor
from .present import body_views

FIXES = {
    "signature_mismatch": (
        "The signature does not match any configured secret. Check that the source's secrets hold the "
        "provider's current signing secret (after a rotation, list old and new), and that nothing between "
        "the provider and ingest parses and re-serialises the body: the signature covers the raw bytes."
    ),
    "missing_signature": (
        "The signature header is missing. Check that the provider signs deliveries to this URL, that the "
        "source's provider is the right one, and that no proxy strips the header."
    ),
    "malformed_signature": (
        "The signature header is not in the provider's format: is the source's provider right, and does a "
        "proxy rewrite the header?"
    ),
    "stale_timestamp": (
        "The signed timestamp is outside tolerance_seconds: clock skew between the provider and this host "
        "(check NTP), a proxy queueing requests, or an old delivery replayed."
    ),
    "invalid_payload": "The body verified but does not parse as the provider's payload: check its content type.",
    "ip_not_allowed": "The sender is not in the source's allowed_ips (behind a proxy? set ingest.trusted_proxies).",
    "body_too_large": "The body exceeds the source's max_body_bytes: raise it if such events are expected.",
    "event_type_not_accepted": "The source's events filter (on_filtered = reject) does not list this type.",
    "event_too_large": "The event in its envelope exceeds kafka.max_message_bytes: raise it, or lower max_body_bytes.",
}


def row_of(partition: int, offset: int, value: bytes) -> dict[str, Any]:
    try:
        r = decode_refused(value)
    except ValueError as exc:
        return {"partition": partition, "offset": offset, "problem": str(exc)}
    return {
        "partition": partition,
        "offset": offset,
        "source": r.source,
        "provider": r.provider,
        "status": r.status,
        "reason": r.reason,
        "detail": r.detail,
        "fix": FIXES.get(r.reason, ""),
        "at_ms": r.at_ms,
        "remote_addr": r.remote_addr,
        "headers": [{"name": n, "value": v} for n, v in r.headers],
        "body": body_views(r.body),
        "body_base64": base64.b64encode(r.body).decode(),
        "body_bytes": r.body_bytes,
        "body_truncated": len(r.body) < r.body_bytes,
    }


async def refused_page(request: Request) -> Response:
    console = request.app.state.console
    browser = console.browser
    topic = console.config.kafka.refused_topic
    source = request.query_params.get("source", "").strip()
    reason = request.query_params.get("reason", "").strip()
    cursor = parse_cursor(request.query_params.get("before", ""))
    limit = console.config.console.page_size
    tps = await browser.partitions(topic)
    firsts, ends = await browser.bounds(tps)
    upper = {tp: max(firsts[tp], min(ends[tp], cursor.get(tp.partition, ends[tp]))) for tp in tps}
    share = max(limit, console.config.console.scan_limit // max(1, len(tps)))
    windows = {tp: (max(firsts[tp], upper[tp] - share), upper[tp]) for tp in tps}
    rows = []
    for tp, records in (await browser.read(windows)).items():
        for record in records:
            row = row_of(tp.partition, record.offset, record.value)
            if (source and row.get("source") != source) or (reason and row.get("reason") != reason):
                continue
            rows.append((record.timestamp, row))
    rows.sort(key=lambda pair: (pair[0], pair[1]["offset"]), reverse=True)
    shown = [row for _, row in rows[:limit]]
    lowest: dict[int, int] = {}
    for row in shown:
        lowest[row["partition"]] = min(row["offset"], lowest.get(row["partition"], row["offset"]))
    nxt: dict[int, int] = {}
    for tp in tps:
        hidden = [row["offset"] for _, row in rows[limit:] if row["partition"] == tp.partition]
        # Matches read but not shown: the next page starts right below the oldest one shown.
        nxt[tp.partition] = lowest.get(tp.partition, max(hidden) + 1) if hidden else windows[tp][0]
    more = any(nxt[tp.partition] > firsts[tp] for tp in tps)
    filters = {k: v for k, v in (("source", source), ("reason", reason)) if v}
    data = {
        "topic": topic,
        "filters": filters,
        "refused": shown,
        "scanned": sum(b - a for a, b in windows.values()),
        "total": sum(ends[tp] - firsts[tp] for tp in tps),
        "next": format_cursor(nxt) if more else None,
        "next_url": "/refused?" + urlencode({**filters, "before": format_cursor(nxt)}) if more else None,
        "recording": sorted(n for n, s in console.config.sources.items() if s.record_refused != "off"),
    }
    return console.answer(request, "refused.html", data)


def routes() -> list[Route]:
    return [Route("/refused", refused_page)]

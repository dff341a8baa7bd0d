"""The Events list: the raw topic newest first across partitions, filtered on the server.

A page reads each partition backwards in growing windows from the cursor (or the end) until it
has a page of matches there or the scan limit is spent, then merges the partitions by record
timestamp. The cursor says, per partition, below which offset the next page starts; it is a
plain ``P:O,P:O`` string, so a page is a permalink.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from hookstream.kafka.browse import TopicBrowser
from hookstream.schemas.envelope import RawEvent, decode_raw_event
from hookstream.schemas.progress import is_progress

FIRST_WINDOW = 64
MAX_WINDOW = 4096


def events_of(
    records: Iterable[ConsumerRecord],
    on_undecodable: Callable[[], None] = lambda: None,
    may_match: Callable[[bytes], bool] = lambda value: True,
) -> Iterator[tuple[ConsumerRecord, RawEvent]]:
    """The records that are events, decoded; ingest's progress markers are skipped, and a
    record that does not decode is reported to ``on_undecodable``, never fatal to a page.
    ``may_match`` rules records out by their encoded value before the (costlier) decoding."""
    for record in records:
        if is_progress(record.headers) or not may_match(record.value):
            continue
        try:
            event = decode_raw_event(record.value, record.headers)
        except Exception:  # a foreign record: counted by the caller
            on_undecodable()
            continue
        yield record, event


class BadQuery(ValueError):
    """A filter or cursor that cannot be understood; its message says which and how to fix it."""


def parse_time(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise BadQuery(f"{name}: expected an ISO 8601 time such as 2024-07-01T12:00, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_cursor(text: str) -> dict[int, int]:
    cursor: dict[int, int] = {}
    for part in filter(None, text.split(",")):
        p, sep, o = part.partition(":")
        if not (sep and p.isdigit() and o.isdigit()):
            raise BadQuery(f"before: expected PARTITION:OFFSET pairs such as 0:120,1:98, got {text!r}")
        cursor[int(p)] = int(o)
    return cursor


def format_cursor(cursor: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(cursor.items()))


@dataclass(frozen=True)
class EventFilter:
    source: str = ""
    event_type: str = ""
    """A glob, e.g. ``payment_intent.*``."""
    since: datetime | None = None
    until: datetime | None = None
    event_id: str = ""
    ordering_key: str = ""
    text: str = ""
    """Case-insensitive, over the body and the headers' names and values."""

    @classmethod
    def from_query(cls, query: Any) -> EventFilter:
        return cls(
            source=query.get("source", "").strip(),
            event_type=query.get("type", "").strip(),
            since=parse_time(query.get("since", "").strip(), "since"),
            until=parse_time(query.get("until", "").strip(), "until"),
            event_id=query.get("event_id", "").strip(),
            ordering_key=query.get("ordering_key", "").strip(),
            text=query.get("q", "").strip(),
        )

    def as_query(self) -> dict[str, str]:
        pairs = {
            "source": self.source,
            "type": self.event_type,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "event_id": self.event_id,
            "ordering_key": self.ordering_key,
            "q": self.text,
        }
        return {k: v for k, v in pairs.items() if v}

    def may_match(self, value: bytes) -> bool:
        """False when the encoded record cannot match: the body and the headers are stored
        verbatim in it, so an ASCII search text that is not there in any case is in neither."""
        needle = self._ascii_needle
        return needle is None or needle in value.lower()

    @property
    def _ascii_needle(self) -> bytes | None:
        return self.text.lower().encode() if self.text and self.text.isascii() else None

    def matches(self, event: RawEvent) -> bool:
        if self.source and event.source != self.source:
            return False
        if self.event_type and not fnmatch.fnmatchcase(event.event_type, self.event_type):
            return False
        if self.event_id and event.event_id != self.event_id:
            return False
        if self.ordering_key and event.ordering_key != self.ordering_key:
            return False
        if self.since and event.received_at < self.since:
            return False
        if self.until and event.received_at > self.until:
            return False
        if self.text:
            needle = self.text.lower()
            if needle not in event.body.decode("utf-8", "replace").lower() and not any(
                needle in k.lower() or needle in v.lower() for k, v in event.headers.items()
            ):
                return False
        return True


@dataclass
class Match:
    partition: int
    offset: int
    timestamp_ms: int
    event: RawEvent


@dataclass
class Page:
    matches: list[Match] = field(default_factory=list)
    scanned: int = 0
    total: int = 0
    """Records the topic holds (events and ingest's progress markers)."""
    next_cursor: dict[int, int] | None = None
    """None: nothing older is left to read."""
    undecodable: int = 0

    def count_undecodable(self) -> None:
        self.undecodable += 1


async def newest_events(
    browser: TopicBrowser,
    topic: str,
    wanted: EventFilter,
    *,
    cursor: dict[int, int] | None = None,
    limit: int = 50,
    scan_limit: int = 20_000,
) -> Page:
    """One page of the events matching ``wanted``, newest first; see the module doc."""
    tps = await browser.partitions(topic)
    firsts, ends = await browser.bounds(tps)
    page = Page(total=sum(ends[tp] - firsts[tp] for tp in tps))
    upper = {tp: max(firsts[tp], min(ends[tp], (cursor or {}).get(tp.partition, ends[tp]))) for tp in tps}
    found: dict[TopicPartition, list[Match]] = {tp: [] for tp in tps}
    exhausted = {tp for tp in tps if upper[tp] <= firsts[tp]}
    """Partitions where nothing older can match: read to their beginning or past ``since``."""
    done = set(exhausted)
    window = FIRST_WINDOW
    since_ms = int(wanted.since.timestamp() * 1000) if wanted.since else None
    while len(done) < len(tps) and page.scanned < scan_limit:
        live = [tp for tp in tps if tp not in done]
        share = max(1, min(window, (scan_limit - page.scanned) // len(live)))
        windows = {tp: (max(firsts[tp], upper[tp] - share), upper[tp]) for tp in live}
        read = await browser.read(windows)
        for tp in live:
            lo, hi = windows[tp]
            page.scanned += hi - lo
            upper[tp] = lo
            newest_first: list[Match] = []
            if since_ms is not None and read[tp] and read[tp][0].timestamp < since_ms:
                # A partition's timestamps grow with its offsets: nothing older matches.
                exhausted.add(tp)
            for record, event in events_of(read[tp], page.count_undecodable, wanted.may_match):
                if wanted.matches(event):
                    newest_first.append(Match(tp.partition, record.offset, record.timestamp, event))
            found[tp].extend(reversed(newest_first))
            if lo <= firsts[tp]:
                exhausted.add(tp)
            if len(found[tp]) >= limit or tp in exhausted:
                done.add(tp)
        window = min(window * 4, MAX_WINDOW)
    merged = sorted(
        (m for ms in found.values() for m in ms), key=lambda m: (m.timestamp_ms, m.offset), reverse=True
    )
    page.matches = merged[:limit]
    lowest_shown: dict[int, int] = {}
    for m in page.matches:
        lowest_shown[m.partition] = min(m.offset, lowest_shown.get(m.partition, m.offset))
    nxt: dict[int, int] = {}
    more = False
    for tp in tps:
        shown = sum(1 for m in found[tp] if m.offset >= lowest_shown.get(tp.partition, 1 << 62))
        if shown < len(found[tp]):
            # Matches read but not shown: the next page starts right below the last one shown.
            nxt[tp.partition] = lowest_shown[tp.partition] if shown else found[tp][0].offset + 1
            more = True
        else:
            nxt[tp.partition] = firsts[tp] if tp in exhausted else upper[tp]
            more = more or tp not in exhausted
    page.next_cursor = nxt if more else None
    return page

"""Where each configured consumer stands: its group, its lag per partition of the events topic,
its dead letters; and, for one event, whether each consumer handled it."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from hookstream.config import Config
from hookstream.consumers.commands import dlq_entry_row as dlq_row
from hookstream.consumers.dlq import dlq_topic
from hookstream.consumers.groups import consumers_admin, group_id
from hookstream.consumers.redrive import list_dead_letters
from hookstream.kafka.browse import TopicBrowser
from hookstream.schemas.envelope import EVENT_ID_HEADER, decode_raw_event

EVENT_SEARCH_WINDOW = 2000
"""Records of each events-topic partition read, from the raw record's time on, to find where
streams put an event."""


async def consumer_state(config: Config, browser: TopicBrowser, name: str) -> dict[str, Any]:
    """Group state, lag per partition, pending dead letters (newest first)."""
    topic = config.kafka.events_topic
    tps = await browser.partitions(topic)
    _firsts, ends = await browser.bounds(tps)
    async with consumers_admin(config.kafka) as admin:
        group = await admin.describe_group(group_id(name))
        committed = await admin.committed_offsets(group_id(name), tps) if tps else {}
    partitions = [
        {
            "partition": tp.partition,
            "committed": committed.get(tp),
            "end": ends[tp],
            "lag": ends[tp] - committed[tp] if tp in committed else ends[tp] - _firsts[tp],
        }
        for tp in tps
    ]
    entries = await list_dead_letters(config.kafka, name)
    letters = [dlq_row(e) for e in reversed(entries)]
    return {
        "name": name,
        "group": group_id(name),
        "state": group.state,
        "members": list(group.members),
        "partitions": partitions,
        "lag": sum(p["lag"] for p in partitions),
        "dlq_topic": dlq_topic(name),
        "dlq_depth": len(letters),
        "dead_letters": letters,
        "recent_errors": [
            {
                "failed_at": r.get("failed_at"),
                "event_id": r.get("event_id"),
                "error": r.get("error", r.get("problem")),
            }
            for r in letters[:10]
        ],
    }


async def events_position(
    config: Config, browser: TopicBrowser, event_id: str, since_ms: int
) -> tuple[int, int] | None:
    """(partition, offset) of ``event_id`` in the events topic, looked for from ``since_ms`` on."""
    topic = config.kafka.events_topic
    tps = await browser.partitions(topic)
    if not tps:
        return None
    _firsts, ends = await browser.bounds(tps)
    starts = await browser.offsets_for_time(tps, since_ms)
    windows = {
        tp: (starts[tp], min(ends[tp], starts[tp] + EVENT_SEARCH_WINDOW))
        for tp in tps
        if starts[tp] is not None
    }
    wanted = event_id.encode()
    for tp, records in (await browser.read(windows)).items():
        for record in records:
            if _event_id_is(record, wanted):
                return tp.partition, record.offset
    return None


def _event_id_is(record: Any, wanted: bytes) -> bool:
    """By streams' routing header, without decoding; by the envelope for a record without one."""
    for key, value in record.headers or ():
        if key == EVENT_ID_HEADER:
            return value == wanted
    try:
        return decode_raw_event(record.value, record.headers).event_id.encode() == wanted
    except Exception:  # not an event: not the one looked for
        return False


async def event_status(
    config: Config,
    browser: TopicBrowser,
    event_id: str,
    raw_timestamp_ms: int,
    replayed: set[tuple[str, str]],
) -> dict[str, Any]:
    """Per configured consumer: handled, pending or dead-lettered; ``replayed`` holds the
    (consumer, event id) pairs this console replayed."""
    position = await events_position(config, browser, event_id, raw_timestamp_ms)
    rows = []
    for name in config.consumers:
        row: dict[str, Any] = {"consumer": name, "replayed": (name, event_id) in replayed}
        letters = [e for e in await list_dead_letters(config.kafka, name, include_redriven=True) if e.letter]
        mine = [e for e in letters if e.letter and e.letter.event_id == event_id]
        if position is None:
            row["state"] = "not in the events topic yet"
        else:
            tp = TopicPartition(config.kafka.events_topic, position[0])
            async with consumers_admin(config.kafka) as admin:
                committed = (await admin.committed_offsets(group_id(name), [tp])).get(tp)
            handled = committed is not None and committed > position[1]
            row["state"] = "handled" if handled else "pending"
        if mine:
            last = mine[-1]
            assert last.letter is not None
            row["state"] = "dead-lettered" if last.pending else row["state"] + " (redriven from the DLQ)"
            row["error"] = last.letter.error
            row["attempts"] = last.letter.attempts
        rows.append(row)
    return {
        "events_position": None if position is None else {"partition": position[0], "offset": position[1]},
        "consumers": rows,
    }

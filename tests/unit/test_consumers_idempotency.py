"""The processed-id helper for your own handlers, and its deliberate bypass during replay."""

from __future__ import annotations

import pytest

from hookstream.consumers import ProcessedIds
from hookstream.consumers.events import Event, current_event
from hookstream.sample_events import make_raw_event


def event(event_id: str, *, replay: bool) -> Event:
    raw = make_raw_event({}, event_id=event_id)
    return Event(
        raw=raw, payload={}, typed=None, consumer="c", topic="t", partition=0, offset=0, replay=replay
    )


def test_marked_ids_are_remembered_across_reopening(tmp_path):
    store = ProcessedIds(tmp_path / "state" / "ids.sqlite")
    assert not store.already_processed("evt_1")
    store.mark_processed("evt_1")
    store.mark_processed("evt_1")
    assert store.already_processed("evt_1")
    store.close()
    again = ProcessedIds(tmp_path / "state" / "ids.sqlite")
    assert again.already_processed("evt_1") and not again.already_processed("evt_2")
    again.forget("evt_1")
    assert not again.already_processed("evt_1")


def test_a_replayed_event_is_let_through_and_only_that_one(tmp_path):
    store = ProcessedIds(tmp_path / "ids.sqlite")
    store.mark_processed("evt_1")
    store.mark_processed("evt_2")
    token = current_event.set(event("evt_1", replay=True))
    try:
        assert not store.already_processed("evt_1")
        assert store.already_processed("evt_2")
    finally:
        current_event.reset(token)
    token = current_event.set(event("evt_1", replay=False))
    try:
        assert store.already_processed("evt_1")
    finally:
        current_event.reset(token)


def test_the_effect_and_the_mark_can_share_one_transaction(tmp_path):
    store = ProcessedIds(tmp_path / "ids.sqlite")
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS shipments (order_id TEXT)")
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO shipments VALUES ('6735')")
        store.mark_processed("evt_9", conn)
        raise RuntimeError("crash before commit")
    assert not store.already_processed("evt_9")
    with store.transaction() as conn:
        conn.execute("INSERT INTO shipments VALUES ('6735')")
        store.mark_processed("evt_9", conn)
    assert store.already_processed("evt_9")

"""The postgres action against a real PostgreSQL and a real broker. The PostgreSQL is
$HOOKSTREAM_TEST_POSTGRES_DSN if set, else a throwaway server of the installed binaries (the
``postgres_dsn`` fixture, tests/integration/conftest.py); with neither the test fails, never skips."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from hookstream.config import parse_config
from hookstream.consumers.registry import resolve_consumers
from hookstream.consumers.replay import replay
from hookstream.sample_events import make_raw_event
from tests.integration.support import create_topic, produce_events, running_consumers, wait_until
from tests.payloads import stripe_payment_intent

pytestmark = pytest.mark.kafka


async def test_postgres_action_upserts_by_event_id(kafka_bootstrap, postgres_dsn):
    suffix = uuid.uuid4().hex[:8]
    name, table = f"pg-{suffix}", f"hookstream_test_{suffix}"
    config = parse_config(
        {
            "kafka": {"bootstrap_servers": kafka_bootstrap, "events_topic": f"test.events.{suffix}"},
            "consumers": {name: {"action": "postgres", "dsn": postgres_dsn, "table": table}},
        }
    )
    await create_topic(kafka_bootstrap, config.kafka.events_topic, 2)
    events = [
        make_raw_event(
            stripe_payment_intent(f"evt_{i}_{suffix}", f"pi_{i % 3}", amount=100 * i),
            event_id=f"evt_{i}_{suffix}",
            ordering_key=f"pi_{i % 3}",
        )
        for i in range(12)
    ]
    await produce_events(kafka_bootstrap, config.kafka.events_topic, events)

    async def count() -> int:
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as conn:
            cursor = await conn.execute(f"SELECT count(*) FROM {table}")
            return (await cursor.fetchone())[0]

    async def rows() -> list[tuple]:
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as conn:
            cursor = await conn.execute(
                f"SELECT event_id, event_type, ordering_key, payload -> 'data' -> 'object' -> 'amount', body "
                f"FROM {table} ORDER BY event_id"
            )
            return await cursor.fetchall()

    try:
        async with running_consumers(config, [name]):
            await wait_until(lambda: _exists_and(count, 12), 30, "12 rows")
        first = await rows()
        assert [r[0] for r in first] == sorted(e.event_id for e in events)
        by_id = {e.event_id: e for e in events}
        assert all(r[3] == int(r[0].split("_")[1]) * 100 and bytes(r[4]) == by_id[r[0]].body for r in first)

        # Delivered again (a replay bypasses idempotency): the upsert leaves one row per id, unchanged.
        [spec] = resolve_consumers(config, [name])
        report = await replay(config.kafka, spec, from_offsets={0: 0, 1: 0})
        assert report.handled == 12
        assert await rows() == first
    finally:
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")


async def _exists_and(count, expected: int) -> bool:
    try:
        return await count() == expected
    except Exception:  # the table is created when the consumer opens its action
        return False

"""The topics the streams stage reads and writes, created before the worker subscribes.

faust ignores a topic that does not exist when it subscribes, so they are created first:

* the raw topic and the repartition topic must have ``kafka.partitions`` partitions, because
  the tables are co-partitioned with them (and the count must never change after go-live);
* the events topic is created with the same count when missing, but any existing count is fine.

Each is created to take records of ``kafka.max_message_bytes`` (``message_size``), as ingest
creates the raw topic: the worker copies every record ingest accepted to the repartition and events
topics, and one they refused would stop it. Existing topics are not changed; one that takes
smaller records is reported.

The tables' changelog topics are created here too, with the settings faust would give them
(``changelog_topics``), and their metadata awaited. Left to faust, a changelog is created while
the worker starts, and its consumer can hold metadata from before that for minutes: the first
table write then fails with "changelog topic has 0 partitions" and the worker crashes (seen on
a fresh broker with ``make dev``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from hookstream.config import Config
from hookstream.errors import ConfigError
from hookstream.kafka_topics import admin_client, create_missing_topics, ensure_sized_topics

METADATA_WAIT_S = 15


def repartition_topic(config: Config) -> str:
    return f"{config.streams.app_id}-by-ordering-key"


Changelogs = Mapping[str, tuple[int, Mapping[str, str]]]
"""Changelog topic name → (partitions, topic configs)."""


def changelog_topics(app: Any) -> dict[str, tuple[int, dict[str, str]]]:
    """The changelog topics of ``app``'s tables, with the configs faust's own declaration uses
    (``cleanup.policy`` from compacting/deleting, ``retention.ms`` from the table's expiry)."""
    from mode.utils.times import want_seconds

    out = {}
    for table in app.tables.values():
        topic = table.changelog_topic
        configs = {}
        policy = [flag for flag, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on]
        if policy:
            configs["cleanup.policy"] = ",".join(sorted(policy))
        if topic.retention:
            configs["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        configs.update({k: str(v) for k, v in (topic.config or {}).items()})
        out[topic.get_topic_name()] = (topic.partitions or app.conf.topic_partitions, configs)
    return out


async def create_topics(config: Config, changelogs: Changelogs | None = None) -> list[str]:
    """Create the missing topics (and ``changelogs``, see ``changelog_topics``); returns a warning
    for each existing one that takes too small records."""
    k = config.kafka
    changelogs = changelogs or {}
    copartitioned = {k.raw_topic: k.partitions, repartition_topic(config): k.partitions}
    strict = {**copartitioned, **{name: partitions for name, (partitions, _) in changelogs.items()}}
    async with admin_client(k.bootstrap_servers, f"{k.client_id}-streams") as admin:
        _, warnings = await ensure_sized_topics(admin, k, {**copartitioned, k.events_topic: k.partitions})
        await create_missing_topics(admin, k, changelogs)  # small records: faust's configs only
        counts = await _partition_counts(admin, list(strict))
    for name, expected in strict.items():
        if counts[name] != expected:
            raise ConfigError(
                f"topic {name} has {counts[name]} partitions but kafka.partitions is {expected}; the "
                "streams tables are co-partitioned with it, so set kafka.partitions to match"
            )
    return warnings


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partition counts, waiting for a just-created topic's metadata to show its partitions."""
    deadline = asyncio.get_running_loop().time() + METADATA_WAIT_S
    while True:
        described = await admin.describe_topics(topics)
        counts = {d["topic"]: len(d.get("partitions") or ()) for d in described}
        if all(counts.get(t) for t in topics) or asyncio.get_running_loop().time() > deadline:
            return {t: counts.get(t, 0) for t in topics}
        await asyncio.sleep(0.1)

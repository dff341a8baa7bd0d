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
table write then fails with "changelog topic has 0 partitions" and the worker crashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hookstream.config import Config
from hookstream.kafka.admin import Admin


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
    for each existing one that takes too small records or has fewer replicas than configured."""
    k = config.kafka
    changelogs = changelogs or {}
    copartitioned = {k.raw_topic: k.partitions, repartition_topic(config): k.partitions}
    strict = {**copartitioned, **{name: partitions for name, (partitions, _) in changelogs.items()}}
    async with Admin(k, "streams") as admin:
        _, warnings = await admin.ensure_sized_topics({**copartitioned, k.events_topic: k.partitions})
        await admin.create_missing_topics(changelogs)  # small records: faust's configs only
        await admin.require_partitions(
            strict, "the streams tables are co-partitioned with it, so set kafka.partitions to match"
        )
    return [*warnings, *(w for w in admin.warnings if w not in warnings)]

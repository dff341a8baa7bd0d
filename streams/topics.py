"""The topics the streams stage reads and writes, created before the worker subscribes.

faust ignores a topic that does not exist when it subscribes, so they are created first:

* the raw topic and the repartition topic must have ``kafka.partitions`` partitions, because
  the tables are co-partitioned with them (and the count must never change after go-live);
* the events topic is created with the same count when missing, but any existing count is fine.

Each is created to take records of ``kafka.max_message_bytes`` (``message_size``), as ingest
creates the raw topic: the worker copies every record ingest accepted to the repartition and events
topics, and one they refused would stop it. Existing topics are not changed; one that takes
smaller records is reported.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from hookstream.config import Config
from hookstream.errors import ConfigError
from hookstream.kafka_topics import ensure_sized_topics

METADATA_WAIT_S = 15


def repartition_topic(config: Config) -> str:
    return f"{config.streams.app_id}-by-ordering-key"


async def create_topics(config: Config) -> list[str]:
    """Create the missing topics; returns a warning for each existing one that takes too small records."""
    k = config.kafka
    strict = {k.raw_topic: k.partitions, repartition_topic(config): k.partitions}
    wanted = {**strict, k.events_topic: k.partitions}
    admin = AIOKafkaAdminClient(bootstrap_servers=k.bootstrap_servers, client_id=f"{k.client_id}-streams")
    await admin.start()
    try:
        _, warnings = await ensure_sized_topics(admin, k, wanted)
        counts = await _partition_counts(admin, list(strict))
    finally:
        await admin.close()
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

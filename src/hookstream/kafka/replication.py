"""How many copies of every hookstream topic a cluster keeps, and how many must have a record
before it counts as written.

``kafka.replication_factor`` and ``kafka.min_insync_replicas`` apply to every topic hookstream
creates (raw, repartition, changelogs, events, DLQs): all creation goes through ``Admin``, which
resolves them here against the cluster it talks to. Unset, they follow the cluster's size:
``min(3, brokers)`` replicas, and a min ISR one lower (but at least 1), so that one broker can be
lost without refusing writes, and a write acknowledged with ``acks=all`` (every producer of
hookstream's) is on at least two brokers as soon as there are three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hookstream.config import KafkaConfig
from hookstream.kafka.errors import KafkaLayerError

MIN_INSYNC = "min.insync.replicas"


def default_replication_factor(brokers: int) -> int:
    return max(1, min(3, brokers))


def default_min_insync(replication_factor: int) -> int:
    return replication_factor - 1 if replication_factor >= 2 else 1


@dataclass(frozen=True)
class Replication:
    factor: int
    min_insync: int
    brokers: int
    """Brokers known to the cluster: those answering, and any that existing topics place replicas on."""

    def topic_config(self) -> dict[str, str]:
        return {MIN_INSYNC: str(self.min_insync)}


def resolve(kafka: KafkaConfig, brokers: int) -> Replication:
    """``kafka``'s replication on a cluster of ``brokers``; a KafkaLayerError of one line naming
    the fix when the cluster cannot hold it."""
    factor = kafka.replication_factor or default_replication_factor(brokers)
    where = f"the Kafka cluster at {kafka.bootstrap_servers}"
    if factor > brokers:
        noun = "broker" if brokers == 1 else "brokers"
        raise KafkaLayerError(
            f"kafka.replication_factor is {factor} but {where} has {brokers} {noun}: "
            f"set replication_factor = {brokers} (or leave it unset) in [kafka], or add brokers"
        )
    min_insync = kafka.min_insync_replicas or default_min_insync(factor)
    if min_insync > factor:
        raise KafkaLayerError(
            f"kafka.min_insync_replicas is {min_insync} but topics get {factor} replicas, so no write "
            f"could succeed: set min_insync_replicas to {max(1, factor - 1)} or raise replication_factor"
        )
    return Replication(factor, min_insync, brokers)


def known_brokers(live: Iterable[int], replicas: Mapping[str, Iterable[Iterable[int]]]) -> int:
    """How many brokers the cluster has: those answering now, and those existing topics' replicas
    sit on (one that is down for a moment is still part of the cluster)."""
    ids = set(live)
    for partitions in replicas.values():
        for partition in partitions:
            ids.update(partition)
    return len(ids)


def under_replicated_warning(topic: str, factor: int, replication: Replication) -> str:
    return (
        f"topic {topic} has {factor} replicas, fewer than the {replication.factor} of "
        f"kafka.replication_factor: losing a broker can lose or stop it; raise it with "
        f"kafka-reassign-partitions (a topic's replicas are not changed here)"
    )

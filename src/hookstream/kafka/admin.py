"""Every topic and group operation hookstream performs goes through one ``Admin``.

Two things aiokafka's ``AIOKafkaAdminClient`` leaves to its caller, done here once:

* ``create_topics`` does not raise per-topic errors: it returns them in the response (error 36
  for a topic that exists, 38 for a replication factor the cluster cannot meet, ...). Ignoring
  the response hides a topic that was never created.
* A topic just created takes a moment to show its partitions in the metadata the broker
  answers with. ``partition_counts`` polls ``describe_topics`` until it does, so no caller needs
  a client's private metadata refresh. A topic that may not exist is looked up with
  ``list_topics`` first: a metadata request naming a missing topic lets a broker with
  ``auto.create.topics.enable`` create it, with the broker's default partition count.

Every topic is created with the replication of ``kafka.replication`` (``replication_factor``
replicas, ``min.insync.replicas``), resolved against the cluster once per ``Admin``; creating
topics also checks that replication against the cluster (one line naming the fix when it cannot
hold it) and warns about an existing topic with fewer replicas (``warnings``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TypeVar

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code

from hookstream.config import KafkaConfig
from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.message_size import TOPIC_LIMIT, below_limit_warning, topic_config
from hookstream.kafka.replication import Replication, known_brokers, resolve, under_replicated_warning

T = TypeVar("T")

METADATA_WAIT_S = 15.0
"""How long a just-created topic may take to show its partitions."""


def unreachable(bootstrap_servers: str, exc: BaseException) -> str:
    """The one wording of "no broker answered", for errors the CLI shows as one line."""
    return f"cannot reach Kafka at {bootstrap_servers}: {exc}"


async def retrying(call: Callable[[], Awaitable[T]], what: str, timeout: float = 60) -> T:
    """``call()``, again on Kafka's retriable errors (a coordinator not elected yet on a fresh
    cluster, a leader moving) for up to ``timeout`` seconds; then a KafkaLayerError naming ``what``."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return await call()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise KafkaLayerError(f"{what}: {exc}") from None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def with_cluster_replication(kafka: KafkaConfig) -> KafkaConfig:
    """``kafka`` with ``replication_factor`` and ``min_insync_replicas`` resolved against its
    cluster, for a client that hands them to code creating topics on its own (faust)."""
    async with Admin(kafka, "replication") as admin:
        replication = await admin.replication()
    return replace(kafka, replication_factor=replication.factor, min_insync_replicas=replication.min_insync)


@dataclass(frozen=True)
class SizedTopic:
    created: bool
    """Created now (with ``kafka.max_message_bytes``)."""
    record_limit: int
    """The largest record batch the topic takes: ``kafka.max_message_bytes``, or less for an
    existing topic made with a smaller ``max.message.bytes``."""


@dataclass(frozen=True)
class GroupState:
    state: str
    """Kafka's word: Empty, Stable, PreparingRebalance, CompletingRebalance, Dead (= never existed)."""
    members: tuple[str, ...]
    """``client-id@host`` of each active member."""


class Admin:
    """A started admin client for ``kafka``'s cluster, as ``async with Admin(kafka, purpose)``.

    With ``unreachable_is_error``, a cluster that cannot be reached is a KafkaLayerError with one
    readable line; without, aiokafka's error passes through, for callers that retry on it.
    """

    def __init__(self, kafka: KafkaConfig, purpose: str, *, unreachable_is_error: bool = False) -> None:
        self.kafka = kafka
        self.unreachable_is_error = unreachable_is_error
        self.client = AIOKafkaAdminClient(
            bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-{purpose}"
        )
        """aiokafka's admin client, for a call this class has no method for (tests alter configs)."""
        self.warnings: list[str] = []
        """One line for each existing topic with fewer replicas than the config asks for, found
        while creating topics; ``ensure_sized_topics``/``ensure_sized_topic`` report them."""
        self._replication: Replication | None = None

    async def __aenter__(self) -> Admin:
        try:
            await self.client.start()
        except (KafkaError, OSError) as exc:
            await self.client.close()
            if not self.unreachable_is_error:
                raise
            raise KafkaLayerError(unreachable(self.kafka.bootstrap_servers, exc)) from None
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.close()

    # -- topics -----------------------------------------------------------------------------
    async def topic_exists(self, topic: str) -> bool:
        return topic in await self.client.list_topics()

    async def replication(self, existing: Iterable[str] = ()) -> Replication:
        """The replication topics get on this cluster (see ``kafka.replication``), counting the
        brokers that answer and those the ``existing`` topics place replicas on; a
        KafkaLayerError when the cluster cannot hold it. Resolved once per Admin."""
        if self._replication is None:
            # Retried: a just-started client may have no broker connection ready yet.
            cluster = await retrying(self.client.describe_cluster, "cannot describe the Kafka cluster")
            live = [b["node_id"] for b in cluster["brokers"]]
            names = list(existing)
            replicas = await self.replicas(names) if names else {}
            self._replication = resolve(self.kafka, known_brokers(live, replicas))
        return self._replication

    async def replicas(self, topics: Iterable[str]) -> dict[str, list[list[int]]]:
        """Per existing topic of ``topics``, each partition's replica broker ids."""
        names = list(topics)
        described = await retrying(lambda: self.client.describe_topics(names), "cannot describe topics")
        return {
            d["topic"]: [list(p.get("replicas") or ()) for p in d.get("partitions") or ()]
            for d in described
            if not d.get("error_code") and d.get("partitions")
        }

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> bool:
        """Create topic ``name``: True if created, False if it already existed; any other error
        raised as its ``KafkaError`` subclass (``.retriable`` tells whether trying again may help)."""
        replication = await self.replication()
        new = NewTopic(
            name,
            partitions,
            replication.factor,
            topic_configs={**replication.topic_config(), **(configs or {})},
        )
        response = await self.client.create_topics([new])
        for _name, code, message, *_ in response.topic_errors:
            if code == 0:
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                return False
            raise error(message or error.__name__)
        return True

    async def create_missing_topics(self, topics: Mapping[str, tuple[int, Mapping[str, str]]]) -> set[str]:
        """Create those of ``topics`` (name → (partitions, topic configs)) that ``list_topics`` does
        not show; returns the names created now. Existing topics are not asked for again, so a
        client without CREATE permission can use topics made for it. An error retrying cannot
        mend is a KafkaLayerError naming the topic; retriable ones pass through."""
        existing = set(await self.client.list_topics())
        old = [name for name in topics if name in existing]
        replicas = await self.replicas(old) if old else {}
        replication = await self.replication(old)
        for name in old:
            factor = min((len(r) for r in replicas.get(name, [])), default=replication.factor)
            warning = under_replicated_warning(name, factor, replication)
            if factor < replication.factor and warning not in self.warnings:
                self.warnings.append(warning)
        created: set[str] = set()
        for name, (partitions, configs) in topics.items():
            if name in existing:
                continue
            try:  # one by one: a topic created meanwhile elsewhere is fine
                if await self.create_topic(name, partitions, configs):
                    created.add(name)
            except KafkaError as exc:
                if exc.retriable:
                    raise
                raise KafkaLayerError(f"cannot create topic {name}: {exc}") from None
        return created

    async def ensure_sized_topics(self, topics: Mapping[str, int]) -> tuple[set[str], list[str]]:
        """Create the missing ``topics`` (name → partitions) to take records of ``kafka.max_message_bytes``.

        Returns the names created now, and a warning for each existing topic that takes smaller
        records. Existing topics are left as they are (altering one would need the old
        alter-configs call, which replaces all its overrides).
        """
        created, too_small = await self._ensure_sized(topics)
        warnings = [below_limit_warning(name, limit, self.kafka) for name, limit in sorted(too_small.items())]
        return created, [*warnings, *self.warnings]

    async def ensure_sized_topic(self, topic: str, partitions: int, log: logging.Logger) -> SizedTopic:
        """``ensure_sized_topics`` for one topic, its warning on ``log``."""
        created, too_small = await self._ensure_sized({topic: partitions})
        if topic in too_small:
            log.warning(below_limit_warning(topic, too_small[topic], self.kafka), extra={"topic": topic})
        for warning in self.warnings:
            log.warning(warning, extra={"topic": topic})
        return SizedTopic(topic in created, too_small.get(topic, self.kafka.max_message_bytes))

    async def _ensure_sized(self, topics: Mapping[str, int]) -> tuple[set[str], dict[str, int]]:
        """The topics created now, and the existing ones that take smaller records (their limit)."""
        sized = topic_config(self.kafka)
        created = await self.create_missing_topics({name: (n, sized) for name, n in topics.items()})
        old = [name for name in topics if name not in created]
        return created, (await self.limits_below_max_message_bytes(old) if old else {})

    async def limits_below_max_message_bytes(self, topics: Iterable[str]) -> dict[str, int]:
        """The topics among ``topics`` that exist and take smaller records than
        ``kafka.max_message_bytes``, with the limit they have. Topics created before the setting
        keep the broker's default."""
        wanted = sorted(set(topics))
        if not wanted:
            return {}
        responses = await self.client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={TOPIC_LIMIT: None}) for topic in wanted]
        )
        below = {}
        for response in responses:
            for error_code, _message, _type, topic, entries in (r[:5] for r in response.resources):
                if error_code:  # e.g. the topic does not exist (any more)
                    continue
                for name, value, *_ in entries:
                    if (
                        name == TOPIC_LIMIT
                        and value is not None
                        and int(value) < self.kafka.max_message_bytes
                    ):
                        below[topic] = int(value)
        return below

    async def partition_counts(
        self, topics: Iterable[str], wait_s: float = METADATA_WAIT_S
    ) -> dict[str, int]:
        """Partition counts of existing ``topics``, waiting up to ``wait_s`` for a just-created
        one's metadata to show its partitions; 0 for one that still shows none."""
        wanted = list(topics)
        deadline = time.monotonic() + wait_s
        while True:
            described = await self.client.describe_topics(wanted)
            counts = {d["topic"]: len(d.get("partitions") or ()) for d in described}
            if all(counts.get(t) for t in wanted) or time.monotonic() > deadline:
                return {t: counts.get(t, 0) for t in wanted}
            await asyncio.sleep(0.1)

    async def partitions(
        self, topic: str, wait_s: float = 2.0, *, missing_ok: bool = False
    ) -> list[TopicPartition]:
        """The partitions of ``topic``, which may not exist: then, after ``wait_s``, a
        KafkaLayerError (or none, with ``missing_ok``). The topic is never created by asking."""
        deadline = time.monotonic() + wait_s
        while not await self.topic_exists(topic):
            if time.monotonic() > deadline:
                if missing_ok:
                    return []
                raise KafkaLayerError(f"topic {topic} does not exist")
            await asyncio.sleep(0.1)
        count = (await self.partition_counts([topic], max(0.0, deadline - time.monotonic())))[topic]
        if not count:
            raise UnknownTopicOrPartitionError(f"no metadata for {topic} yet")
        return [TopicPartition(topic, p) for p in range(count)]

    async def require_partitions(self, expected: Mapping[str, int], why: str) -> None:
        """Each topic of ``expected`` (name → partitions, from ``kafka.partitions``) must have that
        many; else a KafkaLayerError naming the topic, the counts and ``why`` they must match. A
        topic whose metadata shows no partitions yet is aiokafka's retriable error."""
        counts = await self.partition_counts(expected)
        for name, want in expected.items():
            if not counts[name]:
                raise UnknownTopicOrPartitionError(f"no metadata for {name} yet")
            if counts[name] != want:
                raise KafkaLayerError(
                    f"topic {name} has {counts[name]} partitions but kafka.partitions is {want}; {why}"
                )

    # -- groups -----------------------------------------------------------------------------
    async def describe_group(self, group: str) -> GroupState:
        for response in await self.client.describe_consumer_groups([group]):
            for error_code, name, state, _ptype, _protocol, members, *_ in response.groups:
                if name == group:
                    if error_code:
                        raise KafkaLayerError(f"cannot describe group {group}: Kafka error code {error_code}")
                    return GroupState(state, tuple(f"{m[1]}@{m[2]}" for m in members))
        return GroupState("Dead", ())

    async def committed_offsets(
        self, group: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (of ``tps``, else of every partition it committed to);
        a partition without one is left out."""
        wanted = None if tps is None else list(tps)
        committed = await self.client.list_consumer_group_offsets(group, partitions=wanted)
        return {
            tp: meta.offset
            for tp, meta in committed.items()
            if meta.offset >= 0 and (wanted is None or tp in wanted)
        }

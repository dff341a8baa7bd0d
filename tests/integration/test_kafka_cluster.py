"""The guarantees on a real 3-node cluster (``hookstream kafka --brokers 3``), with brokers failing
under load. Every topic gets the defaults: 3 replicas, min ISR 2, and every producer acks=all.

(1) kill -9 one broker under steady signed traffic through ingest → streams → an idempotent
    consumer: ingest keeps answering 2xx (the 503 window is measured and printed), every 2xx'd
    event reaches the consumer exactly once in effect, in per-key order; the broker, restarted
    on its data, is back in every partition's ISR.
(2) kill two brokers (min ISR can no longer be met): ingest answers 503, never 2xx, within
    publish_timeout_seconds; with one back, 2xx resumes, and nothing that was 2xx'd is lost.
(3) a broker restart moves the events and raw topics' leaders under streams and a consumer.
(4) a streams worker, one of two, frozen (SIGSTOP) past its session timeout and woken after its
    partitions moved. (3) and (4) are checked as (1): nothing lost, repeated or reordered.
(5) topics get 3 replicas and min ISR 2; an existing one with fewer is named; a factor larger
    than the cluster is one line naming the fix.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream.config import Config, KafkaConfig, parse_config
from hookstream.ingest.providers import provider_class
from hookstream.kafka.admin import Admin
from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.local_broker import free_port
from hookstream.kafka.replication import under_replicated_warning
from hookstream.schemas.envelope import decode_raw_event
from hookstream.stage_rules import stage_rules
from hookstream.streams.worker_process import WorkerProcess, streams_config_toml

from .cluster import ClusterProcess
from .support import ids_in_jsonl, read_topic, running_consumers, running_ingest, wait_until

pytestmark = pytest.mark.kafka

PUBLISH_TIMEOUT_S = 3
SECRET = "cluster-secret"


def cluster_config(bootstrap: str, tmp_path: Path, **consumer: Any) -> Config:
    suffix = uuid.uuid4().hex[:8]
    return parse_config(
        {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "raw_topic": f"test.raw.{suffix}",
                "events_topic": f"test.events.{suffix}",
                "partitions": 4,
                "publish_timeout_seconds": PUBLISH_TIMEOUT_S,
            },
            "ingest": {"port": free_port()},
            "sources": {"gh": {"provider": "github", "secrets": [SECRET]}},
            "consumers": {f"audit-{suffix}": {"action": "jsonl", "path": str(tmp_path / "out.jsonl")}},
        },
        rules=stage_rules(),
    )


class Traffic:
    """Signed GitHub deliveries, one sender per group of keys; a key's next event is sent once its
    last one got a 2xx, retried after a 503 as GitHub would (same delivery id)."""

    def __init__(self, unique: str, keys: int = 12) -> None:
        self.unique = unique
        self.keys = [f"acme/{unique}-{i}" for i in range(keys)]
        self.accepted: dict[str, list[str]] = {k: [] for k in self.keys}
        self.statuses: list[tuple[float, int, float]] = []  # (monotonic time, status, seconds taken)
        self.provider = provider_class("github")([SECRET])
        self.stop = asyncio.Event()
        self._n = 0

    async def send(self, client: httpx.AsyncClient, key: str, event_id: str) -> int:
        body = json.dumps({"n": event_id, "repository": {"full_name": key}}).encode()
        headers = self.provider.sign(body, timestamp=0) | {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": event_id,
        }
        started = time.monotonic()
        try:
            status = (await client.post("/webhooks/gh", content=body, headers=headers)).status_code
        except httpx.TimeoutException:
            status = 0
        self.statuses.append((started, status, time.monotonic() - started))
        return status

    async def sender(self, client: httpx.AsyncClient, keys: list[str], pause_s: float) -> None:
        while not self.stop.is_set():
            for key in keys:
                self._n += 1
                event_id = f"{self.unique}-e{self._n:05d}"
                while (status := await self.send(client, key, event_id)) != 200:
                    assert status in (503, 0), status
                    await asyncio.sleep(0.2)
                self.accepted[key].append(event_id)
                if self._n % 10 == 0:  # a provider's redelivery of an acknowledged event
                    assert await self.send(client, key, event_id) in (200, 503, 0)
                await asyncio.sleep(pause_s)

    def run(self, client: httpx.AsyncClient, senders: int = 4, pause_s: float = 0.02) -> asyncio.Future[Any]:
        groups = [self.keys[i::senders] for i in range(senders)]
        return asyncio.gather(*(self.sender(client, g, pause_s) for g in groups))

    def window_503(self, since: float) -> tuple[int, float, float]:
        """Of the requests sent after ``since``: how many were not answered 2xx, the seconds during
        which one of those was waiting for its answer (the 503 window: overlapping ones merged),
        and the slowest answer of all."""
        after = [(t, status, took) for t, status, took in self.statuses if t >= since]
        failed = sorted((t, t + took) for t, status, took in after if status != 200)
        window, end = 0.0, float("-inf")
        for start, stop in failed:
            window += max(0.0, stop - max(start, end))
            end = max(end, stop)
        return len(failed), window, max((took for _, _, took in after), default=0.0)

    @property
    def all_accepted(self) -> set[str]:
        return {e for ids in self.accepted.values() for e in ids}


async def isr_of(bootstrap: str, topic: str) -> list[set[int]]:
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap), "testing") as admin:
        described = await admin.client.describe_topics([topic])
    return [set(p["isr"]) for d in described for p in d["partitions"]]


def start_worker(config: Config, tmp_path: Path, name: str) -> WorkerProcess:
    k = config.kafka
    path = tmp_path / f"streams-{name}.toml"
    path.write_text(
        streams_config_toml(
            k.bootstrap_servers,
            raw_topic=k.raw_topic,
            events_topic=k.events_topic,
            partitions=k.partitions,
            app_id=f"test-streams-{k.raw_topic.rsplit('.', 1)[1]}",
            data_dir=tmp_path / f"streams-data-{name}",
            web_port=free_port(),
            max_wait_ms=2000,
            watermark_interval_ms=100,
            watermark_lag_ms=100,
            session_timeout_ms=6000,
            max_hold_ms=12000,
        )
    )
    worker = WorkerProcess(path, tmp_path / f"streams-{name}.log").start()
    worker.wait_for("streams: processing", timeout=120)
    return worker


Fault = Callable[[Config, list[WorkerProcess], Traffic], Awaitable[None]]


async def pipeline_under(
    kafka_cluster: ClusterProcess, tmp_path: Path, unique: str, fault: Fault, workers: int = 1
) -> tuple[Config, Traffic]:
    """Ingest (here), ``workers`` streams workers and an idempotent jsonl consumer (here) on the
    cluster, under steady traffic; ``fault`` runs once 200 events are in. Then every 2xx'd event
    must be consumed, exactly once in effect, each key's in the order ingest acknowledged them."""
    config = cluster_config(kafka_cluster.bootstrap_servers, tmp_path)
    consumer = next(iter(config.consumers))
    out = Path(config.consumers[consumer].options["path"])
    traffic = Traffic(unique)
    running: list[WorkerProcess] = []
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        try:
            for i in range(workers):
                running.append(start_worker(config, tmp_path, f"w{i}"))
            async with running_consumers(config, [consumer]):
                sending = traffic.run(client)
                try:
                    await wait_until(lambda: len(traffic.all_accepted) >= 200, 60, "200 events accepted")
                    await fault(config, running, traffic)
                finally:
                    traffic.stop.set()
                    await sending
                wanted = traffic.all_accepted
                try:
                    await wait_until(
                        lambda: wanted <= set(ids_in_jsonl(out)), 120, "every 2xx'd event consumed"
                    )
                except TimeoutError as exc:
                    missing = sorted(wanted - set(ids_in_jsonl(out)))
                    logs = "\n".join(w.output()[-2000:] for w in running)
                    raise AssertionError(f"{len(missing)} missing: {missing[:10]}\n{logs}") from exc
                await asyncio.sleep(1)  # anything late would land now
        finally:
            for worker in running:
                worker.kill()
    written = ids_in_jsonl(out)
    assert len(written) == len(set(written)), "an effect repeated"  # exactly once in effect
    assert set(written) == wanted
    keys = {e: k for k, ids in traffic.accepted.items() for e in ids}
    for key, ids in traffic.accepted.items():
        assert [e for e in written if keys[e] == key] == ids, key
    # What the consumer's idempotency absorbed: copies and late flags on the events topic.
    events = [
        decode_raw_event(r.value, r.headers)
        for r in await read_topic(config.kafka.bootstrap_servers, config.kafka.events_topic)
    ]
    copies = len(events) - len({e.event_id for e in events})
    print(f"events topic: {len(events)} records, {copies} copies, {sum(e.late for e in events)} late")
    return config, traffic


async def leader_of(config: Config, topic: str, partition: int = 0) -> int:
    async with Admin(config.kafka, "testing") as admin:
        described = await admin.client.describe_topics([topic])
    return next(p["leader"] for p in described[0]["partitions"] if p["partition"] == partition)


@pytest.mark.timeout(300)
async def test_one_broker_killed_under_load_loses_nothing_and_keeps_per_key_order(
    kafka_cluster: ClusterProcess, tmp_path: Path, unique: str
) -> None:
    seen: dict[str, Any] = {}

    async def kill_a_leader(config: Config, workers: list[WorkerProcess], traffic: Traffic) -> None:
        # The leader of raw partition 0: a broker that certainly serves this test's traffic.
        victim = seen["victim"] = await leader_of(config, config.kafka.raw_topic)
        seen["killed_at"] = time.monotonic()
        accepted_before = len(traffic.all_accepted)
        await asyncio.to_thread(kafka_cluster.kill, victim)
        await asyncio.sleep(12)
        seen["accepted_while_down"] = len(traffic.all_accepted) - accepted_before
        assert seen["accepted_while_down"] > 50, f"ingest stopped accepting: {seen}"
        await asyncio.to_thread(kafka_cluster.restart, victim)
        await asyncio.sleep(3)

    config, traffic = await pipeline_under(kafka_cluster, tmp_path, unique, kill_a_leader)
    failed, window, slowest = traffic.window_503(seen["killed_at"])
    print(
        f"\nbroker {seen['victim']} killed: {failed} requests not 2xx'd over a window of {window:.2f} s; "
        f"slowest answer {slowest:.2f} s; {seen['accepted_while_down']} 2xx'd in the 12 s it was down"
    )
    # Each request is answered within the publish timeout (and the machine's slack), 2xx or 503.
    assert slowest < PUBLISH_TIMEOUT_S + 5, slowest
    # The restarted broker caught up: back in the ISR of every partition it holds.
    await wait_until(
        lambda: _all_in_isr(kafka_cluster.bootstrap_servers, config.kafka.raw_topic, seen["victim"]),
        60,
        "the ISR",
    )


@pytest.mark.timeout(300)
async def test_leaders_moving_under_streams_and_a_consumer_lose_and_reorder_nothing(
    kafka_cluster: ClusterProcess, tmp_path: Path, unique: str
) -> None:
    async def move_leaders(config: Config, workers: list[WorkerProcess], traffic: Traffic) -> None:
        # A clean stop hands every partition the broker leads to another replica (controlled
        # shutdown); the events topic's leader first, then the raw topic's.
        for topic in (config.kafka.events_topic, config.kafka.raw_topic):
            node = await leader_of(config, topic)
            os.kill(kafka_cluster.pids[node], signal.SIGTERM)
            await wait_until(lambda n=node: not kafka_cluster.alive(n), 60, f"node {node} to stop")
            await asyncio.sleep(3)
            await asyncio.to_thread(kafka_cluster.restart, node)
            await asyncio.sleep(2)

    await pipeline_under(kafka_cluster, tmp_path, unique, move_leaders)


@pytest.mark.timeout(300)
@pytest.mark.xfail(
    reason="open bug (issue 17): a worker woken after its partitions moved can still release an "
    "event of a key after later ones of that key reached the consumer",
    strict=False,
)
async def test_a_paused_streams_worker_that_wakes_after_its_partitions_moved_repeats_and_reorders_nothing(
    kafka_cluster: ClusterProcess, tmp_path: Path, unique: str
) -> None:
    async def pause_a_worker(config: Config, workers: list[WorkerProcess], traffic: Traffic) -> None:
        zombie = workers[0].process
        assert zombie is not None
        os.killpg(zombie.pid, signal.SIGSTOP)
        await asyncio.sleep(6 + 8)  # past session_timeout_ms: the group gives its partitions to the other
        os.killpg(zombie.pid, signal.SIGCONT)
        await asyncio.sleep(8)  # it wakes, finds itself out of the group, and rejoins

    await pipeline_under(kafka_cluster, tmp_path, unique, pause_a_worker, workers=2)


async def _all_in_isr(bootstrap: str, topic: str, node: int) -> bool:
    return all(node in isr for isr in await isr_of(bootstrap, topic))


@pytest.mark.timeout(240)
async def test_two_brokers_down_is_503_never_2xx_and_one_back_resumes_without_loss(
    kafka_cluster: ClusterProcess, tmp_path: Path, unique: str
) -> None:
    config = cluster_config(kafka_cluster.bootstrap_servers, tmp_path)
    traffic = Traffic(unique)
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for i in range(20):
            assert await traffic.send(client, traffic.keys[i % 12], f"{unique}-before-{i}") == 200
        before = {f"{unique}-before-{i}" for i in range(20)}
        await asyncio.to_thread(kafka_cluster.kill, 3)
        await asyncio.sleep(5)  # fenced, out of the ISRs: min ISR 2 is still met by 1 and 2
        assert await traffic.send(client, traffic.keys[0], f"{unique}-one-down") == 200
        await asyncio.to_thread(kafka_cluster.kill, 2)
        started = time.monotonic()

        async def timed(i: int) -> tuple[int, float]:
            t0 = time.monotonic()
            status = await traffic.send(client, traffic.keys[i % 12], f"{unique}-down-{i}")
            return status, time.monotonic() - t0

        answers = await asyncio.gather(*(timed(i) for i in range(30)))
        assert {status for status, _ in answers} == {503}, answers
        slowest = max(took for _, took in answers)
        assert slowest < PUBLISH_TIMEOUT_S + 2, (
            f"503 took {slowest:.1f} s; publish timeout {PUBLISH_TIMEOUT_S} s"
        )
        await asyncio.sleep(2)
        answers = await asyncio.gather(*(timed(i + 100) for i in range(10)))
        assert {status for status, _ in answers} == {503}, answers
        print(f"\ntwo brokers down: every request 503, the slowest after {slowest:.2f} s")

        await asyncio.to_thread(kafka_cluster.restart, 2)
        back = time.monotonic()
        after: set[str] = set()
        for i in range(40):
            event_id = f"{unique}-after-{i}"
            deadline = time.monotonic() + 60
            while await traffic.send(client, traffic.keys[i % 12], event_id) != 200:
                assert time.monotonic() < deadline, "no 2xx within 60 s of a broker's return"
                await asyncio.sleep(0.2)
            if i == 0:
                print(f"first 2xx {time.monotonic() - back:.2f} s after the broker was back")
            after.add(event_id)
        assert time.monotonic() - started < 200
    raw = await read_topic(kafka_cluster.bootstrap_servers, config.kafka.raw_topic)
    landed = {decode_raw_event(r.value, r.headers).event_id for r in raw}
    assert before | {f"{unique}-one-down"} | after <= landed


async def test_topics_get_three_replicas_and_min_isr_2_and_one_with_fewer_is_named(
    kafka_cluster: ClusterProcess, unique: str
) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    thin, new = f"test.thin.{unique}", f"test.replicated.{unique}"
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap, replication_factor=1), "testing") as admin:
        assert await admin.create_topic(thin, 1)
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap), "testing") as admin:
        _, warnings = await admin.ensure_sized_topics({thin: 1, new: 2})
        replication = await admin.replication()
        assert (replication.factor, replication.min_insync, replication.brokers) == (3, 2, 3)
        assert under_replicated_warning(thin, 1, replication) in warnings  # beside its size warning
        assert not [w for w in warnings if new in w]
        await admin.partition_counts([new])
        assert [len(r) for r in (await admin.replicas([new]))[new]] == [3, 3]
        responses = await admin.client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, new, configs={"min.insync.replicas": None})]
        )
        values = {e[0]: e[1] for r in responses for res in r.resources for e in res[4]}
        assert values["min.insync.replicas"] == "2"
    async with Admin(KafkaConfig(bootstrap_servers=bootstrap, replication_factor=4), "testing") as admin:
        with pytest.raises(KafkaLayerError, match=r"is 4 but .* has 3 brokers: set replication_factor = 3"):
            await admin.ensure_sized_topics({f"{new}.rf4": 1})

"""Ingest against a real broker: what is accepted is in the raw topic byte-exact under its event
id; what is refused published nothing; with Kafka down the answer is 503, never 2xx."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import DefaultPartitioner

from hookstream.errors import PublishError, RecordTooLarge
from hookstream.ingest.providers import provider_class
from hookstream.ingest.publisher import Publisher
from hookstream.schemas.envelope import FINGERPRINT_HEADER, decode_raw_event, schema_fingerprint
from tests.integration.support import wait_until

from .support import free_port, make_config, read_topic, running_ingest

pytestmark = pytest.mark.kafka

SOURCES = {
    "gh": {"provider": "github", "secrets": ["old-secret", "new-secret"]},
    "stripe": {"provider": "stripe", "secrets": ["whsec_test_secret"]},
    "slack": {"provider": "slack", "secrets": ["slack-signing-secret"]},
    "allowlisted": {"provider": "github", "secrets": ["s"], "allowed_ips": ["203.0.113.0/24"]},
    "small": {"provider": "github", "secrets": ["s"], "max_body_bytes": 64},
    "pushes": {"provider": "github", "secrets": ["s"], "events": ["push"], "on_filtered": "reject"},
    "quiet": {"provider": "github", "secrets": ["s"], "events": ["push"]},
}


def signer(name: str, secrets: list[str]):
    return provider_class(name)(secrets)


async def test_accepted_events_are_in_the_raw_topic_byte_exact_under_their_event_id(kafka_bootstrap, unique):
    config = make_config(kafka_bootstrap, SOURCES)
    gh = signer("github", ["new-secret"])
    stripe = signer("stripe", ["whsec_test_secret"])
    bodies = {}
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for i in range(5):
            # Non-ASCII and odd whitespace: the body must survive byte for byte.
            body = f'{{"ref":"refs/heads/main","n":{i},"note":"caf\u00e9 \u2665",  "repository":{{"full_name":"acme/api"}}}}\n'.encode()
            headers = gh.sign(body, timestamp=0) | {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"{unique}-{i}",
            }
            r = await client.post("/webhooks/gh", content=body, headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["event_id"] == f"{unique}-{i}"
            bodies[f"{unique}-{i}"] = body
        sample = stripe.sample("payment_intent.succeeded", now=int(time.time()), event_id=f"evt_{unique}")
        r = await client.post("/webhooks/stripe", content=sample.body, headers=sample.headers)
        assert r.status_code == 200, r.text
        bodies[f"evt_{unique}"] = sample.body

    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert sorted(r.key.decode() for r in records) == sorted(bodies)
    for record in records:
        event = decode_raw_event(record.value)
        assert record.key.decode() == event.event_id
        assert event.body == bodies[event.event_id]
        assert event.verified
        assert dict(record.headers)[FINGERPRINT_HEADER] == schema_fingerprint("raw_event").encode()
        if event.source == "gh":
            assert (event.provider, event.event_type, event.ordering_key) == ("github", "push", "acme/api")
            assert event.matched_secret == 1  # signed with the second configured secret (rotation)
        else:
            assert event.event_type == "payment_intent.succeeded"
            assert event.ordering_key == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
            assert event.created_at is not None


async def test_refused_requests_publish_nothing(kafka_bootstrap, unique):
    config = make_config(kafka_bootstrap, SOURCES)
    gh = signer("github", ["s"])
    body = b'{"repository":{"full_name":"acme/api"}}'
    good = gh.sign(body, timestamp=0) | {"X-GitHub-Event": "issues", "X-GitHub-Delivery": unique}
    stale = signer("stripe", ["whsec_test_secret"]).sample("charge.succeeded", now=int(time.time()) - 3600)
    cases = [
        ("/webhooks/nope", body, good, 404, "unknown_source"),
        ("/webhooks/allowlisted", body, good, 403, "ip_not_allowed"),
        ("/webhooks/small", body * 4, gh.sign(body * 4, timestamp=0), 413, "body_too_large"),
        ("/webhooks/gh", body, {}, 401, "missing_signature"),
        ("/webhooks/gh", body, {"X-Hub-Signature-256": "sha256=zz"}, 401, "malformed_signature"),
        ("/webhooks/gh", body + b" ", good, 401, "signature_mismatch"),
        ("/webhooks/stripe", stale.body, stale.headers, 401, "stale_timestamp"),
        ("/webhooks/small", b"not json", gh.sign(b"not json", timestamp=0), 400, "invalid_payload"),
        ("/webhooks/pushes", body, good, 400, "event_type_not_accepted"),
    ]
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for path, content, headers, status, code in cases:
            r = await client.post(path, content=content, headers=headers)
            assert (r.status_code, r.json()["error"]) == (status, code), (path, r.text)
        r = await client.get("/webhooks/gh")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
        # Filtered by default: answered 2xx (so the provider stops retrying) but not published.
        r = await client.post("/webhooks/quiet", content=body, headers=good)
        assert r.status_code == 200 and r.json()["status"] == "filtered"
        # Slack's url_verification is answered after verification and not published.
        slack = signer("slack", ["slack-signing-secret"])
        challenge = json.dumps(
            {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
        ).encode()
        r = await client.post(
            "/webhooks/slack", content=challenge, headers=slack.sign(challenge, timestamp=int(time.time()))
        )
        assert r.status_code == 200 and r.json() == {
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        }
        metrics = (await client.get("/metrics")).text
        assert (
            'hookstream_ingest_verification_failures_total{reason="signature_mismatch",source="gh"} 1.0'
            in metrics
        )
        assert (await client.get("/readyz")).status_code == 200
    assert await read_topic(kafka_bootstrap, config.kafka.raw_topic) == []


async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(kafka_bootstrap, unique):
    """The test client connects from 127.0.0.1; "allowlisted" admits only 203.0.113.0/24."""
    gh = signer("github", ["s"])
    body = b'{"repository":{"full_name":"acme/api"}}'

    def headers(delivery: str, forwarded_for: str) -> dict[str, str]:
        return gh.sign(body, timestamp=0) | {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Forwarded-For": forwarded_for,
        }

    direct = make_config(kafka_bootstrap, SOURCES)  # no trusted proxies: the peer is the client
    async with running_ingest(direct) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post(
            "/webhooks/allowlisted", content=body, headers=headers(f"{unique}-a", "203.0.113.7")
        )
        assert (r.status_code, r.json()["error"]) == (403, "ip_not_allowed"), r.text
        assert "127.0.0.1" in r.json()["detail"]
    assert await read_topic(kafka_bootstrap, direct.kafka.raw_topic) == []

    proxied = make_config(kafka_bootstrap, SOURCES, ingest={"trusted_proxies": ["127.0.0.1/32"]})
    async with running_ingest(proxied) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        # The proxy appended the address it saw; what the sender wrote to its left proves nothing.
        r = await client.post(
            "/webhooks/allowlisted", content=body, headers=headers(f"{unique}-b", "198.51.100.1, 203.0.113.7")
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            "/webhooks/allowlisted", content=body, headers=headers(f"{unique}-c", "203.0.113.7, 198.51.100.1")
        )
        assert (r.status_code, r.json()["error"]) == (403, "ip_not_allowed"), r.text
        assert "198.51.100.1" in r.json()["detail"]
    records = await read_topic(kafka_bootstrap, proxied.kafka.raw_topic)
    assert [(r.key.decode(), decode_raw_event(r.value).remote_addr) for r in records] == [
        (f"{unique}-b", "203.0.113.7")
    ]


async def test_a_url_signing_provider_sees_the_url_a_trusted_proxy_was_called_at(kafka_bootstrap, unique):
    """Twilio signs the URL it called. Behind a proxy that is the proxy's scheme and host, taken
    from X-Forwarded-Proto/-Host only when the peer is a trusted proxy (here: 127.0.0.1)."""
    twilio = signer("twilio", ["twilio-auth-token"])
    sources = {"tw": {"provider": "twilio", "secrets": ["twilio-auth-token"]}}
    body = f"MessageSid=SM{unique}&Body=hello&From=%2B15005550006".encode()
    headers = twilio.sign(body, timestamp=0, url="https://hooks.example.com/webhooks/tw?n=1") | {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "hooks.example.com",
    }
    direct = make_config(kafka_bootstrap, sources)
    async with running_ingest(direct) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/webhooks/tw?n=1", content=body, headers=headers)
        assert (r.status_code, r.json()["error"]) == (401, "signature_mismatch"), r.text
    proxied = make_config(kafka_bootstrap, sources, ingest={"trusted_proxies": ["127.0.0.1/32"]})
    async with running_ingest(proxied) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/webhooks/tw?n=1", content=body, headers=headers)
        assert r.status_code == 200, r.text
    records = await read_topic(kafka_bootstrap, proxied.kafka.raw_topic)
    assert [decode_raw_event(r.value).body for r in records] == [body]


async def test_a_sender_gone_before_its_body_arrived_publishes_nothing(kafka_bootstrap, unique, caplog):
    caplog.set_level(logging.INFO)
    config = make_config(kafka_bootstrap, SOURCES)
    gh = signer("github", ["new-secret"])
    body = b'{"repository":{"full_name":"acme/api"}}'
    headers = gh.sign(body, timestamp=0) | {"X-GitHub-Event": "push", "X-GitHub-Delivery": unique}
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        # Half the body, then the connection closes: the signature can never be checked.
        reader, writer = await asyncio.open_connection("127.0.0.1", config.ingest.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST /webhooks/gh HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
            + body[:10]
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # The server is unharmed, and the same delivery sent whole is accepted.
        r = await client.post(
            "/webhooks/gh", content=body, headers=headers | {"X-GitHub-Delivery": f"{unique}-2"}
        )
        assert r.status_code == 200, r.text
        metrics = (await client.get("/metrics")).text
        assert metric_value(metrics, 'hookstream_ingest_requests_total{source="gh",status="200"}') == 1
    # Told in one line, not as an application error with a traceback.
    assert "sender went away before its body arrived" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert [r.key.decode() for r in records] == [f"{unique}-2"]


async def test_a_handshake_answered_204_has_no_body_and_is_published_when_it_is_an_event(
    kafka_bootstrap, unique
):
    """Discord webhook events: 204 and no body at all (no Content-Length either, per RFC 9110)."""
    from tests.provider_cases import RFC8032_PUBLIC, RFC8032_SEED

    config = make_config(
        kafka_bootstrap,
        {"discord": {"provider": "discord", "secrets": [RFC8032_PUBLIC]}},
    )
    discord = provider_class("discord")([RFC8032_PUBLIC], options={"signing_key": RFC8032_SEED})
    now = int(time.time())
    ping = json.dumps({"version": 1, "application_id": "1", "type": 0}).encode()
    event = json.dumps(
        {
            "version": 1,
            "application_id": "1",
            "type": 1,
            "event": {
                "type": "APPLICATION_AUTHORIZED",
                "timestamp": "2026-11-23T10:00:00",
                "data": {"user": {"id": "9"}},
            },
        }
    ).encode()
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for body in (ping, event):
            r = await client.post(
                "/webhooks/discord", content=body, headers=discord.sign(body, timestamp=now)
            )
            assert r.status_code == 204, r.text
            assert r.content == b"" and "content-length" not in r.headers
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert [decode_raw_event(r.value).event_type for r in records] == ["APPLICATION_AUTHORIZED"]


async def test_concurrent_requests_share_batches_and_all_are_acknowledged(kafka_bootstrap, unique):
    config = make_config(kafka_bootstrap, SOURCES)
    gh = signer("github", ["old-secret"])
    n = 300

    async def one(client: httpx.AsyncClient, i: int) -> int:
        body = json.dumps({"i": i, "repository": {"full_name": f"acme/r{i % 7}"}}).encode()
        headers = gh.sign(body, timestamp=0) | {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"{unique}-{i}",
        }
        return (await client.post("/webhooks/gh", content=body, headers=headers)).status_code

    limits = httpx.Limits(max_connections=50)
    async with (
        running_ingest(config) as base,
        httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client,
    ):
        statuses = await asyncio.gather(*(one(client, i) for i in range(n)))
        metrics = (await client.get("/metrics")).text
    assert statuses == [200] * n
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert sorted(r.key.decode() for r in records) == sorted(f"{unique}-{i}" for i in range(n))
    assert len({r.partition for r in records}) == config.kafka.partitions
    # Placed exactly where Kafka's default partitioner (murmur2 of the key) puts them.
    all_partitions = list(range(config.kafka.partitions))
    for r in records:
        assert r.partition == DefaultPartitioner()(r.key, all_partitions, all_partitions), r.key
    assert metric_value(metrics, "hookstream_ingest_kafka_batched_records_total") == n
    # Requests share batches: fewer batches than records (how many fewer depends on the pace).
    assert metric_value(metrics, "hookstream_ingest_kafka_batches_total") < n


async def test_records_published_together_share_one_batch_per_partition(kafka_bootstrap, unique):
    config = make_config(kafka_bootstrap, SOURCES)
    publisher = Publisher(config.kafka)
    await publisher.start()
    assert await publisher.wait_ready(30)
    try:
        n = 200
        await asyncio.gather(*(publisher.publish(f"{unique}-{i}".encode(), b"v%d" % i, []) for i in range(n)))
        # All appended within one linger: one batch per partition, each acknowledged once.
        assert publisher.records_sent == n
        assert publisher.batches_sent == config.kafka.partitions
    finally:
        await publisher.stop()
    with pytest.raises(PublishError, match="shutting down"):
        await publisher.publish(b"late", b"v", [])
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert sorted(r.value for r in records) == sorted(b"v%d" % i for i in range(n))


async def test_a_batch_still_open_at_the_publish_timeout_is_answered_503_and_never_sent(
    kafka_bootstrap, unique
):
    # A linger longer than the publish timeout: the batch is still open when the time is up.
    config = make_config(kafka_bootstrap, SOURCES, linger_ms=2000, publish_timeout_seconds=0.3)
    publisher = Publisher(config.kafka)
    await publisher.start()
    assert await publisher.wait_ready(30)
    try:
        started = time.monotonic()
        with pytest.raises(PublishError, match="did not acknowledge within 0.3 s"):
            await publisher.publish(f"{unique}-dropped".encode(), b"dropped", [])
        assert time.monotonic() - started < 1.5
        assert (publisher.batches_abandoned, publisher.batches_sent) == (1, 0)
        # The partition takes new records at once, in a new batch that is sent.
        task = asyncio.create_task(publisher.publish(f"{unique}-kept".encode(), b"kept", []))
        await asyncio.sleep(0)
        await publisher.stop()  # hands over what is open, waits for it
        await task
    finally:
        await publisher.stop()  # when an assertion above failed first (stop is idempotent)
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert [r.value for r in records] == [b"kept"]


async def test_a_batch_kafka_refuses_for_good_does_not_leave_its_partition_refusing_the_rest(
    kafka_bootstrap, unique
):
    """aiokafka's idempotent producer counts a batch's sequence numbers when it sends it; when
    the broker refuses that batch for good, every later batch for the partition is refused as
    out of order. The publisher replaces the producer (a new producer id starts afresh)."""
    config = make_config(kafka_bootstrap, SOURCES, partitions=1, compression="none")
    publisher = Publisher(config.kafka)
    await publisher.start()
    assert await publisher.wait_ready(30)
    try:
        await publisher.publish(f"{unique}-1".encode(), b"before", [])
        # An operator lowers the topic's limit while ingest runs: it learnt the old one.
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            resource = ConfigResource(
                ConfigResourceType.TOPIC, config.kafka.raw_topic, {"max.message.bytes": "50000"}
            )
            await admin.alter_configs([resource])
        finally:
            await admin.close()
        with pytest.raises(PublishError, match="MessageSizeTooLarge"):
            await publisher.publish(f"{unique}-2".encode(), os.urandom(80_000), [])
        await wait_until(lambda: publisher.ready, timeout=30, what="the producer replaced")
        await publisher.publish(f"{unique}-3".encode(), b"after", [])
        # The new producer learnt the topic's new limit: too large is now a 413, sent nowhere.
        with pytest.raises(RecordTooLarge, match="takes records up to 50000 bytes"):
            await publisher.publish(f"{unique}-4".encode(), os.urandom(80_000), [])
    finally:
        await publisher.stop()
    records = await read_topic(kafka_bootstrap, config.kafka.raw_topic)
    assert [r.value for r in records] == [b"before", b"after"]


@pytest.mark.parametrize("sealed_by", ["ack", "cap"])
async def test_a_lingered_batch_stays_open_while_its_leader_has_one_in_flight(local_kafka, unique, sealed_by):
    """While the broker has not answered, records keep joining one open batch per partition.

    The broker is paused (SIGSTOP) so the first batches stay in flight. The second wave still
    goes out as one batch per partition: spread over ~40 linger periods, once the first batches
    are acknowledged (the cap, 30 s, is far away); or, sent at once, when a 0.3 s cap runs out
    while they are not.
    """
    config = make_config(local_kafka.bootstrap_servers, SOURCES, linger_ms=5)
    parts = config.kafka.partitions
    publisher = Publisher(config.kafka, max_defer_s=30.0 if sealed_by == "ack" else 0.3)
    await publisher.start()
    assert await publisher.wait_ready(30)

    def publish(name: str) -> asyncio.Task[float]:
        return asyncio.create_task(publisher.publish(f"{unique}-{name}".encode(), name.encode(), []))

    def partitions(wave: str) -> int:
        return len({publisher.partition_for(f"{unique}-{wave}{i}".encode()) for i in range(4 * parts)})

    first: list[asyncio.Task[float]] = []
    second: list[asyncio.Task[float]] = []
    first_batches, second_batches = partitions("a"), partitions("b")
    try:
        os.kill(local_kafka.pid, signal.SIGSTOP)
        try:
            first = [publish(f"a{i}") for i in range(4 * parts)]
            await wait_until(
                lambda: publisher.batches_sent == first_batches, 10, "the first wave handed over"
            )
            if sealed_by == "ack":
                for i in range(4 * parts):
                    second.append(publish(f"b{i}"))
                    await asyncio.sleep(0.2 / (4 * parts))
                await asyncio.sleep(0.2)
                assert publisher.batches_sent == first_batches  # still open, taking records
            else:
                second = [publish(f"b{i}") for i in range(4 * parts)]
                total = first_batches + second_batches
                await wait_until(
                    lambda: publisher.batches_sent == total, 10, "the cap to seal the second wave"
                )
            assert not any(t.done() for t in first + second)
        finally:
            os.kill(local_kafka.pid, signal.SIGCONT)
        resumed = time.monotonic()
        await asyncio.gather(*first, *second)
        if sealed_by == "ack":
            assert time.monotonic() - resumed < 10, "sealed by the 30 s cap, not on the acknowledgement"
        assert publisher.batches_sent == first_batches + second_batches
        assert publisher.records_sent == 8 * parts
    finally:
        await publisher.stop()
    records = await read_topic(local_kafka.bootstrap_servers, config.kafka.raw_topic)
    names = [f"a{i}" for i in range(4 * parts)] + [f"b{i}" for i in range(4 * parts)]
    assert sorted(r.value for r in records) == sorted(n.encode() for n in names)


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_an_event_too_large_for_kafka_is_refused_with_413_and_not_published(kafka_bootstrap, unique):
    # The body is within max_body_bytes, but with its request headers the envelope is not
    # within kafka.max_message_bytes: Kafka would refuse it on every retry, so say so now.
    config = make_config(
        kafka_bootstrap,
        {"gh": {"provider": "github", "secrets": ["s"], "max_body_bytes": 65_536}},
        max_message_bytes=131_072,
    )
    gh = signer("github", ["s"])
    body = json.dumps({"pad": "x" * 60_000, "repository": {"full_name": "acme/api"}}).encode()
    headers = gh.sign(body, timestamp=0) | {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"{unique}-big"}
    padding = {f"X-Pad-{i}": "y" * 7_000 for i in range(11)}
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/webhooks/gh", content=body, headers=headers | padding)
        assert r.status_code == 413, r.text
        assert r.json()["error"] == "event_too_large"
        assert "kafka.max_message_bytes is 131072" in r.json()["detail"]
        headers["X-GitHub-Delivery"] = f"{unique}-ok"
        r = await client.post("/webhooks/gh", content=body, headers=headers)
        assert r.status_code == 200, r.text
    keys = [r.key.decode() for r in await read_topic(kafka_bootstrap, config.kafka.raw_topic)]
    assert keys == [f"{unique}-ok"]


def incompressible_push(gh, delivery: str, noise_bytes: int) -> tuple[bytes, dict[str, str]]:
    """A signed GitHub push whose body carries ``noise_bytes`` of random data (base64)."""
    noise = base64.b64encode(os.urandom(noise_bytes)).decode()
    body = json.dumps({"noise": noise, "repository": {"full_name": "acme/api"}}).encode()
    return body, gh.sign(body, timestamp=0) | {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery}


async def test_concurrent_large_events_never_make_a_batch_the_topic_refuses(kafka_bootstrap, unique):
    # Each event fits kafka.max_message_bytes, but four of them together do not. Uncompressed
    # and incompressible, a batch of them is as large as it looks: the broker must never be
    # handed one above the topic's limit (it would refuse the whole batch and every request in
    # it would get a 503, however often the providers retried).
    config = make_config(
        kafka_bootstrap,
        {"gh": {"provider": "github", "secrets": ["s"], "max_body_bytes": 65_536}},
        max_message_bytes=131_072,
        compression="none",
        partitions=1,
        linger_ms=50,
    )
    gh = signer("github", ["s"])
    requests = [incompressible_push(gh, f"{unique}-{i}", 30_000) for i in range(12)]
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post("/webhooks/gh", content=body, headers=headers) for body, headers in requests[:8])
        )
        assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
        for body, headers in requests[8:]:  # and the partition still takes events afterwards
            r = await client.post("/webhooks/gh", content=body, headers=headers)
            assert r.status_code == 200, r.text
    keys = sorted(r.key.decode() for r in await read_topic(kafka_bootstrap, config.kafka.raw_topic))
    assert keys == sorted(f"{unique}-{i}" for i in range(12))


async def test_an_event_too_large_for_an_existing_smaller_raw_topic_is_refused_alone(kafka_bootstrap, unique):
    # A raw topic made earlier with a smaller max.message.bytes than the config: ingest warns at
    # start and holds events to the topic's own limit, so the broker never refuses a batch.
    config = make_config(kafka_bootstrap, SOURCES, compression="none", partitions=1, linger_ms=50)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topic = NewTopic(config.kafka.raw_topic, 1, 1, topic_configs={"max.message.bytes": "100000"})
        await admin.create_topics([topic])
    finally:
        await admin.close()
    gh = signer("github", ["new-secret"])
    requests = [incompressible_push(gh, f"{unique}-{i}", 110_000 if i == 0 else 100) for i in range(6)]
    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post("/webhooks/gh", content=body, headers=headers) for body, headers in requests)
        )
    assert answers[0].status_code == 413 and answers[0].json()["error"] == "event_too_large", answers[0].text
    assert f"topic {config.kafka.raw_topic} takes records up to 100000 bytes" in answers[0].json()["detail"]
    assert [r.status_code for r in answers[1:]] == [200] * 5, [r.text for r in answers[1:]]
    keys = sorted(r.key.decode() for r in await read_topic(kafka_bootstrap, config.kafka.raw_topic))
    assert keys == sorted(f"{unique}-{i}" for i in range(1, 6))


@pytest.mark.parametrize("progress_ms", [0, 50], ids=["no-progress-markers", "progress-markers"])
async def test_broker_down_gives_503_never_2xx_and_recovers(local_kafka, unique, progress_ms):
    bootstrap = local_kafka.bootstrap_servers
    config = make_config(
        bootstrap, SOURCES, ingest={"progress_interval_ms": progress_ms}, publish_timeout_seconds=3
    )
    gh = signer("github", ["new-secret"])

    def request(i: int) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"i": i, "repository": {"full_name": "acme/api"}}).encode()
        return body, gh.sign(body, timestamp=0) | {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"{unique}-{i}",
        }

    async with running_ingest(config) as base, httpx.AsyncClient(base_url=base, timeout=60) as client:
        body, headers = request(0)
        assert (await client.post("/webhooks/gh", content=body, headers=headers)).status_code == 200
        await asyncio.to_thread(local_kafka.stop)
        for i in (1, 2):
            body, headers = request(i)
            started = time.monotonic()
            r = await client.post("/webhooks/gh", content=body, headers=headers)
            took = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "kafka_unavailable"
            assert r.headers["Retry-After"] == "5"
            assert took < 3 + 2, f"503 took {took:.1f} s, configured timeout is 3 s"
        # Traffic keeps coming during the outage: batches whose requests were all answered 503
        # are dropped when their turn comes, not queued behind the one aiokafka still retries.
        waves = []
        for wave in range(3):
            waves += [
                asyncio.create_task(client.post("/webhooks/gh", content=b, headers=h))
                for b, h in (request(100 + 10 * wave + j) for j in range(10))
            ]
            await asyncio.sleep(1)
        assert {r.status_code for r in await asyncio.gather(*waves)} == {503}

        async def abandoned() -> bool:
            metrics = (await client.get("/metrics")).text
            return metric_value(metrics, "hookstream_ingest_kafka_abandoned_batches_total") > 0

        if not progress_ms:
            # With markers, the one in flight when the broker went fails first and the producer is
            # replaced: the requests after it are answered 503 at once, without a batch to drop.
            await wait_until(abandoned, 20, "a batch abandoned during the outage")
        await asyncio.to_thread(local_kafka.start)
        # The provider retries; once the broker is back the same events are accepted.
        for i in (1, 2, 3):
            body, headers = request(i)
            for _ in range(60):
                r = await client.post("/webhooks/gh", content=body, headers=headers)
                if r.status_code == 200:
                    break
                assert r.status_code == 503
                await asyncio.sleep(1)
            assert r.status_code == 200, r.text
    keys = {r.key.decode() for r in await read_topic(bootstrap, config.kafka.raw_topic)}
    # Every event that got a 2xx is there (1 and 2 may appear twice: a 503'd send may still land).
    assert {f"{unique}-{i}" for i in range(4)} <= keys


async def test_sigterm_lets_in_flight_requests_finish_with_their_events_durable(
    kafka_bootstrap, unique, tmp_path
):
    # A long linger holds the requests in an open batch when the signal arrives: `hookstream
    # ingest` must stop accepting, let them finish (2xx only once Kafka has them) and stop cleanly.
    port = free_port()
    config = tmp_path / "ingest.toml"
    raw_topic = f"test.raw.{unique}"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\nraw_topic = "{raw_topic}"\n'
        "partitions = 4\nlinger_ms = 1500\n"
        f'[ingest]\nport = {port}\n[sources.gh]\nprovider = "github"\nsecrets = ["s"]\n'
    )
    log = (tmp_path / "ingest.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "hookstream.cli", "ingest", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
    )
    gh = signer("github", ["s"])
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.returncode is None, (tmp_path / "ingest.log").read_text()
                await asyncio.sleep(0.2)

            async def post(i: int) -> int:
                body = json.dumps({"i": i, "repository": {"full_name": "acme/api"}}).encode()
                headers = gh.sign(body, timestamp=0) | {
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": f"{unique}-{i}",
                }
                return (await client.post("/webhooks/gh", content=body, headers=headers)).status_code

            in_flight = [asyncio.create_task(post(i)) for i in range(10)]

            async def all_waiting() -> bool:  # all ten received, their records in the lingering batch
                metrics = (await client.get("/metrics")).text
                return metric_value(metrics, "hookstream_ingest_kafka_waiting_requests") == 10

            await wait_until(all_waiting, 30, "ten requests waiting for Kafka")
            assert not any(t.done() for t in in_flight)
            server.send_signal(signal.SIGTERM)
            statuses = await asyncio.gather(*in_flight)
        assert statuses == [200] * 10
        # uvicorn re-raises the signal once shut down, so a supervisor sees how it ended.
        code = await asyncio.wait_for(server.wait(), 60)
        output = (tmp_path / "ingest.log").read_text()
        assert code in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output and "Traceback" not in output
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        log.close()
    keys = sorted(r.key.decode() for r in await read_topic(kafka_bootstrap, raw_topic))
    assert keys == sorted(f"{unique}-{i}" for i in range(10))

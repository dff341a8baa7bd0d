"""Shared pytest fixtures. Add yours below the Kafka section, in a section of their own."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.local_broker import KAFKA_VERSION, LocalKafka, free_port, server_properties

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

# ==================================================================================================
# Kafka brokers
#
# kafka_bootstrap (session, str): a real broker for the whole session, the first that can be had of
#   1. $KAFKA_BOOTSTRAP_SERVERS (CI or your own broker),
#   2. a Docker engine: apache/kafka:<KAFKA_VERSION> via testcontainers,
#   3. hookstream's own local broker (LocalKafka: Java 17+, and Maven on the very first run).
#   None of them → the test fails with the reasons; it is never skipped.
# local_kafka (function, LocalKafka): always hookstream's local broker, started, for tests that stop,
#   kill or restart it (e.g. to prove ingest answers 503 while Kafka is down). It is one broker per
#   session, shared with kafka_bootstrap when that fell back to it: a test may stop() it, and the
#   fixture starts it again afterwards on the same port, with its data, so use unique topic names.
# ==================================================================================================

KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"


@pytest.fixture(scope="session")
def _session_local_kafka() -> Iterator[LocalKafka]:
    """The session's one LocalKafka, started; closed (data deleted) at the end of the session."""
    kafka = LocalKafka()
    try:
        kafka.start()
    except KafkaLayerError as exc:
        kafka.close()
        failure = f"the local Kafka broker could not start: {exc}"
    else:
        yield kafka
        kafka.close()
        return
    pytest.fail(failure, pytrace=False)  # outside `except`, so the report is just this message


@pytest.fixture
def local_kafka(_session_local_kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalKafka]:
    """The local broker, running; the test may stop/kill/start it, and it runs again after the test.

    Such a test talks to this broker only: a KAFKA_BOOTSTRAP_SERVERS naming another cluster (which
    configs take over their own ``bootstrap_servers``) is unset for it, or the broker it stops
    would not be the one its ingest publishes to.
    """
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    _ensure_running(_session_local_kafka)
    yield _session_local_kafka
    _ensure_running(_session_local_kafka)


def _ensure_running(kafka: LocalKafka) -> None:
    try:
        kafka.start()
    except KafkaLayerError as exc:
        failure = f"the local Kafka broker could not be (re)started: {exc}"
    else:
        return
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap servers ("host:port") of a real broker for the session; see the section comment."""
    if configured := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield configured
        return
    reasons = ["KAFKA_BOOTSTRAP_SERVERS is not set"]
    if _docker_answers():
        try:
            container, bootstrap = _start_kafka_container()
        except Exception as exc:  # whatever went wrong, the local broker may still do
            reasons.append(f"Docker answered but {KAFKA_IMAGE} did not start ({type(exc).__name__}: {exc})")
        else:
            yield bootstrap
            container.stop()
            return
    else:
        reasons.append("no Docker engine answered")
    try:
        kafka: LocalKafka = request.getfixturevalue("_session_local_kafka")  # shared with local_kafka
    except pytest.fail.Exception as exc:
        reasons.append(str(exc))
    else:
        yield kafka.bootstrap_servers
        return
    pytest.fail("no Kafka broker for the tests: " + "; ".join(reasons), pytrace=False)


def _docker_answers() -> bool:
    """Whether a Docker engine answers within a few seconds (false without the docker SDK)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker"
        return False


def _start_kafka_container() -> tuple[DockerContainer, str]:
    """apache/kafka in Docker, configured like LocalKafka; returns (container, bootstrap servers)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    # The same port inside and outside the container, so the one advertised address is right for
    # clients on this machine and for the broker itself.
    port = free_port()
    container = DockerContainer(KAFKA_IMAGE)
    host = container.get_docker_client().host()
    config = _properties(
        server_properties(port=port, controller_port=9093, log_dir=Path("/tmp/kraft-combined-logs"))
    )
    del config["controller.quorum.bootstrap.servers"]
    config |= {
        # The image formats storage without --standalone, which needs a static quorum.
        "controller.quorum.voters": "1@localhost:9093",
        "listeners": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://localhost:9093",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
    }
    # The image turns KAFKA_FOO_BAR into foo.bar; with any KAFKA_ variable set, it uses only those.
    container.with_envs(**{"KAFKA_" + key.upper().replace(".", "_"): value for key, value in config.items()})
    container.with_bind_ports(port, port)
    container.waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(180))
    try:
        container.start()
    except Exception:
        with contextlib.suppress(Exception):
            container.stop()
        raise
    return container, f"{host}:{port}"


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


# ==================================================================================================
# end of Kafka brokers
# ==================================================================================================

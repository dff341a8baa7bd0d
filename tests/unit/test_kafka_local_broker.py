"""The local broker's configuration and preconditions, without starting a JVM."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.local_broker import (
    KAFKA_VERSION,
    LocalKafka,
    cache_dir,
    find_java,
    new_cluster_id,
    resolve_jars,
    server_properties,
)


def parse(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_server_properties_describe_a_single_node_kraft_broker() -> None:
    config = parse(server_properties(port=9092, controller_port=9093, log_dir=Path("/data/kafka")))
    assert config["process.roles"] == "broker,controller"
    assert config["node.id"] == "1"
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert config["controller.listener.names"] == "CONTROLLER"
    assert config["log.dirs"] == "/data/kafka"
    assert config["auto.create.topics.enable"] == "true"
    assert config["num.partitions"] == "1"
    assert config["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert config[key] == "1", key


def test_cache_dir_prefers_hookstream_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOOKSTREAM_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "hookstream"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hookstream"
    monkeypatch.setenv("HOOKSTREAM_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert set(cluster_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_cached_jars_need_neither_maven_nor_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    libs = tmp_path / "cache" / f"kafka-{KAFKA_VERSION}" / "libs"
    libs.mkdir(parents=True)
    (libs / ".hookstream-complete").write_text("done\n")
    monkeypatch.setenv("HOOKSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert resolve_jars(lambda message: pytest.fail(f"resolved again: {message}")) == libs


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(
        KafkaLayerError, match=r"^Java 17\+ not found on PATH: install a JDK \(apt-get install"
    ):
        find_java()


def test_an_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(KafkaLayerError, match="needs Java 17\\+, but .* is Java 11"):
        find_java()


def test_a_busy_port_fails_before_anything_is_started(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        kafka = LocalKafka(port=port, data_dir=tmp_path, progress=lambda _: None)
        with pytest.raises(KafkaLayerError, match=f"^port {port} on 127.0.0.1 is already in use"):
            kafka.start()
    assert not kafka.running
    assert list(tmp_path.iterdir()) == []


def test_server_properties_of_a_cluster_node_name_every_voter_and_replicate_internal_topics() -> None:
    config = parse(
        server_properties(
            port=9093,
            controller_port=9201,
            log_dir=Path("/data/node-2"),
            node_id=2,
            voters={1: 9200, 2: 9201, 3: 9202},
            replication_factor=3,
            min_insync_replicas=2,
        )
    )
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9200,2@127.0.0.1:9201,3@127.0.0.1:9202"
    assert "controller.quorum.bootstrap.servers" not in config
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9201"
    assert config["default.replication.factor"] == "3"
    assert config["min.insync.replicas"] == "2"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        assert config[key] == "3", key
    assert config["transaction.state.log.min.isr"] == "2"


def test_a_cluster_data_dir_is_started_with_the_brokers_and_port_it_was_made_with(tmp_path: Path) -> None:
    from hookstream.kafka.local_cluster import LocalCluster

    first = LocalCluster(3, port=29500, data_dir=tmp_path)
    again = LocalCluster(3, data_dir=tmp_path)  # no port: the saved one
    assert (
        again.bootstrap_servers
        == first.bootstrap_servers
        == ("127.0.0.1:29500,127.0.0.1:29501,127.0.0.1:29502")
    )
    assert [n.controller_port for n in again.nodes.values()] == [
        n.controller_port for n in first.nodes.values()
    ]
    assert [n.data_dir for n in again.nodes.values()] == [tmp_path / f"node-{i}" for i in (1, 2, 3)]
    with pytest.raises(
        KafkaLayerError, match=r"holds a cluster of 3 brokers on port 29500: pass --brokers 3"
    ):
        LocalCluster(2, data_dir=tmp_path)

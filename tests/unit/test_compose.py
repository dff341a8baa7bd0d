"""docker-compose.yml cannot run here (no Docker engine): check what can be checked by hand."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from hookstream.cli import main
from hookstream.config import load_config
from hookstream.kafka.local_broker import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
HOOKSTREAM_SERVICES = [
    name for name, s in SERVICES.items() if s.get("image") == "hookstream:dev" and not s.get("profiles")
]
CLUSTER_BROKERS = [
    name
    for name, s in SERVICES.items()
    if "cluster" in s.get("profiles", ()) and "KAFKA_NODE_ID" in s["environment"]
]
CLUSTER_SERVICES = [
    name
    for name, s in SERVICES.items()
    if s.get("image") == "hookstream:dev" and "cluster" in s.get("profiles", ())
]


def mounted_config(service: dict) -> Path:
    for volume in service["volumes"]:
        host, _, container = volume.partition(":")
        if container.startswith(service["environment"]["HOOKSTREAM_CONFIG"]):
            return ROOT / host
    raise AssertionError("the config file is not mounted at HOOKSTREAM_CONFIG")


def test_services_cover_the_pipeline():
    assert {"kafka", "ingest", "streams", "consumers"} <= set(SERVICES)
    assert set(HOOKSTREAM_SERVICES) == {"ingest", "streams", "consumers"}


def test_kafka_image_matches_the_local_broker_version():
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_hookstream_services_reach_kafka_on_its_advertised_listener():
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    internal = re.search(r"PLAINTEXT://([^,]+)", advertised).group(1)
    for name in HOOKSTREAM_SERVICES:
        service = SERVICES[name]
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == internal, name
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_commands_are_real_subcommands_and_consumers_exist():
    for name in HOOKSTREAM_SERVICES:
        command = SERVICES[name]["command"]
        assert command[0] in main.commands, f"{name}: hookstream {command[0]} is not a command"
        if command[0] == "consume":
            config = load_config(mounted_config(SERVICES[name]))
            assert set(command[1:]) <= set(config.consumers)


def test_ports_agree_with_the_example_config():
    ingest = SERVICES["ingest"]
    config = load_config(mounted_config(ingest))
    command = ingest["command"]
    port = int(command[command.index("--port") + 1])
    assert f"{port}:{port}" in ingest["ports"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert port == config.ingest.port, "the published ingest port should be the one `hookstream send` uses"
    # From the host, the example config's bootstrap address must reach the HOST listener.
    host_port = int(config.kafka.bootstrap_servers.rsplit(":", 1)[1])
    published = {int(p.split(":")[0]): int(p.split(":")[1]) for p in SERVICES["kafka"]["ports"]}
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"HOST://localhost:{host_port}" in advertised
    container_port = published[host_port]
    assert f"HOST://:{container_port}" in SERVICES["kafka"]["environment"]["KAFKA_LISTENERS"]


def test_dockerfile_copies_every_package_directory():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for directory in ("src", "ingest", "schemas", "streams", "consumers"):
        assert f"COPY {directory} ./{directory}" in dockerfile
        assert (ROOT / directory).is_dir()


# -- the "cluster" profile ---------------------------------------------------------------------------
def test_the_cluster_profile_has_three_brokers_in_one_quorum():
    assert CLUSTER_BROKERS == ["kafka-1", "kafka-2", "kafka-3"]
    voters = {f"{i}@kafka-{i}:9093" for i in (1, 2, 3)}
    ids = set()
    for name in CLUSTER_BROKERS:
        broker = SERVICES[name]
        env = broker["environment"]
        assert broker["image"] == f"apache/kafka:{KAFKA_VERSION}"
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert f"PLAINTEXT://{broker['hostname']}:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert env["CLUSTER_ID"] == SERVICES["kafka-1"]["environment"]["CLUSTER_ID"]
        ids.add(env["KAFKA_NODE_ID"])
        host_port = int(broker["ports"][0].split(":")[0])
        assert f"HOST://localhost:{host_port}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert ids == {1, 2, 3}


def test_the_cluster_profile_replicates_every_topic_as_its_config_does():
    config = load_config(mounted_config(SERVICES[CLUSTER_SERVICES[0]]))
    rf, isr = config.kafka.replication_factor, config.kafka.min_insync_replicas
    assert (rf, isr) == (3, 2)
    assert rf <= len(CLUSTER_BROKERS)
    for name in CLUSTER_BROKERS:
        env = SERVICES[name]["environment"]
        for key in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        ):
            assert env[key] == rf, (name, key)
        for key in (
            "KAFKA_MIN_INSYNC_REPLICAS",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        ):
            assert env[key] == isr, (name, key)


def test_the_cluster_profiles_services_reach_every_broker():
    assert sorted(CLUSTER_SERVICES) == ["consumers-cluster", "ingest-cluster", "streams-cluster"]
    every = {f"kafka-{i}:9092" for i in (1, 2, 3)}
    for name in CLUSTER_SERVICES:
        service = SERVICES[name]
        assert set(service["environment"]["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == every, name
        assert set(load_config(mounted_config(service)).kafka.bootstrap_servers.split(",")) == every
        assert {b: d["condition"] for b, d in service["depends_on"].items()} == dict.fromkeys(
            CLUSTER_BROKERS, "service_healthy"
        )
        assert service["command"][0] in main.commands
    published = [p for name in CLUSTER_SERVICES for p in SERVICES[name].get("ports", ())]
    assert published == ["8001:8000"]  # beside the single-broker ingest's 8000

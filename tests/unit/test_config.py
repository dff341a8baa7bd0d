"""Config loading: typed values, secrets from env/file/literal, errors that name the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hookstream.config import CONSUMER_KEYS, BreakerConfig, load_config
from hookstream.errors import ConfigError
from hookstream.stage_rules import stage_rules

BASE = '[sources.gh]\nprovider = "github"\nsecrets = ["literal-secret"]\n'


def test_defaults_and_literal_secret(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    config = load_config(text=BASE)
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert config.kafka.raw_topic == "hookstream.raw" and config.kafka.partitions == 8
    source = config.sources["gh"]
    assert source.secrets == ("literal-secret",)
    assert "literal-secret" not in repr(source)  # secrets never show in a repr or a log line
    assert source.max_body_bytes == 1_048_576 and source.events == ("*",)
    # A body of the default limit, in its envelope, fits through every topic.
    assert config.kafka.max_message_bytes >= source.max_body_bytes + 65_536


def test_env_bootstrap_overrides(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    assert load_config(text=BASE).kafka.bootstrap_servers == "kafka:9092"


def test_secrets_from_env_and_file_relative_to_config(tmp_path, monkeypatch):
    monkeypatch.setenv("GH_SECRET", "from-env")
    (tmp_path / "secret.txt").write_text("from-file\n")
    path = tmp_path / "hookstream.toml"
    path.write_text('[sources.gh]\nprovider = "github"\nsecrets = ["env:GH_SECRET", "file:secret.txt"]\n')
    assert load_config(path).sources["gh"].secrets == ("from-env", "from-file")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sources.gh]\nsecrets = ['s']\n", "sources.gh.provider: missing"),
        (
            "[sources.gh]\nprovider = 'gitbub'\nsecrets = ['s']\n",
            "sources.gh.provider: unknown provider 'gitbub'",
        ),
        ("[sources.gh]\nprovider = 'github'\n", "sources.gh.secrets: at least one secret is required"),
        (BASE + "max_body_bytes = 0\n", "sources.gh.max_body_bytes: must be at least 1"),
        (
            BASE + "max_body_bytes = 2097152\n",
            "sources.gh.max_body_bytes: 2097152 plus 65536 bytes of envelope does not fit in "
            "kafka.max_message_bytes (2097152); lower max_body_bytes or raise kafka.max_message_bytes "
            "to at least 2162688",
        ),
        ("[kafka]\nmax_message_bytes = 1000\n", "kafka.max_message_bytes: must be at least 131072, got 1000"),
        (
            BASE + "allowed_ips = ['10.0.0.300/8']\n",
            "sources.gh.allowed_ips: '10.0.0.300/8' is not an IP address or CIDR",
        ),
        (BASE + "tolerance = 5\n", "sources.gh.tolerance: unknown key"),
        (
            BASE + "ordering_key = 'data.id'\n",
            'sources.gh.ordering_key: must be a JSON pointer ("/data/id") or "header:Name"',
        ),
        (BASE + "on_filtered = 'drop'\n", "sources.gh.on_filtered: must be one of accept, reject"),
        ("[kafka]\npartitions = 'eight'\n", "kafka.partitions: expected an integer, got str 'eight'"),
        (
            "[kafka]\ncompression = 'brotli'\n",
            "kafka.compression: must be one of none, gzip, lz4, zstd, snappy",
        ),
        ("[kafak]\n", "kafak: unknown key"),
        ("[kafka]\nreplication_factor = 0\n", "kafka.replication_factor: must be at least 1, got 0"),
        (
            "[kafka]\nreplication_factor = 2\nmin_insync_replicas = 3\n",
            "kafka.min_insync_replicas: 3 is more than replication_factor (2), so no write could succeed",
        ),
        (
            "[streams]\nsession_timeout_ms = 10000\nmax_hold_ms = 10000\n",
            "streams.max_hold_ms: must be larger than session_timeout_ms (10000), so a dead worker's "
            "partitions have moved before the hold ends; or 0 for no hold",
        ),
        (
            "[sources.sw]\nprovider = 'standard'\nsecrets = ['whsec_not base64!']\n",
            "sources.sw: secrets[0] is not a Standard Webhooks secret",
        ),
        ("not toml = = 1", "not valid TOML"),
        (
            "[sources.dc]\nprovider = 'discord'\nsecrets = ['abcd']\n",
            "sources.dc: secrets[0] is not a 32-byte hex Ed25519 public key: copy the PUBLIC KEY",
        ),
        (
            "[sources.sg]\nprovider = 'sendgrid'\nsecrets = ['nokey']\n",
            "sources.sg: secrets[0] is not a base64 DER P-256 public key: copy the Verification Key",
        ),
        (
            "[sources.pd]\nprovider = 'paddle'\nsecrets = ['sk_live_1']\n",
            "sources.pd: secrets[0] is not a Paddle notification secret",
        ),
    ],
)
def test_errors_name_the_key_and_the_fix(text, message):
    with pytest.raises(ConfigError) as info:
        load_config(text=text, rules=stage_rules())
    assert message in str(info.value)


def test_without_the_stages_rules_config_checks_only_what_it_owns():
    config = load_config(
        text="[sources.x]\nprovider = 'not-a-provider'\nsecrets = ['s']\nsignature_header = 'X'\n"
        "[consumers.'a b']\nevents = ['stripe']\n"
    )
    assert config.sources["x"].options == {"signature_header": "X"}
    assert config.consumers["a b"].events == ("stripe",)
    with pytest.raises(ConfigError, match=r"sources.x.provider: missing$"):
        load_config(text="[sources.x]\nsecrets = ['s']\n")


def test_missing_file_and_missing_env(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.delenv("HOOKSTREAM_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="pass --config FILE or set HOOKSTREAM_CONFIG"):
        load_config(None)
    (tmp_path / "c.toml").write_text('[sources.gh]\nprovider = "github"\nsecrets = ["file:missing.txt"]\n')
    with pytest.raises(ConfigError, match="cannot read secret file"):
        load_config(tmp_path / "c.toml")


def test_example_config_loads():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[2] / "examples" / "dev.toml", rules=stage_rules())
    assert set(config.sources) >= {"stripe", "github"}
    assert "audit" in config.consumers


def test_the_readme_consumer_example_shows_every_option_and_loads():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Consumers", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```toml\n(.*?)```", section, re.DOTALL).group(1)
    shown = set(re.findall(r"^([a-z_]+) =", block, re.MULTILINE)) | set(
        re.findall(r"\[consumers\.\w+\.(\w+)\]", block)
    )
    assert CONSUMER_KEYS <= shown, CONSUMER_KEYS - shown
    config = load_config(text=block, rules=stage_rules())
    billing = config.consumers["billing"]
    assert billing.rate_limit == "50/s" and billing.breaker == BreakerConfig(failures=5, open_seconds=30)
    assert billing.filter["body.data.object.amount"] == {"$gte": 1000}


def test_replication_is_left_to_the_cluster_unless_set():
    assert (
        load_config(text="").kafka.replication_factor,
        load_config(text="").kafka.min_insync_replicas,
    ) == (
        None,
        None,
    )
    kafka = load_config(text="[kafka]\nreplication_factor = 3\nmin_insync_replicas = 2\n").kafka
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)

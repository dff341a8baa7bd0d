"""The CLI contract: `hookstream verify` exit codes and messages, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hookstream.cli import main

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signatures.json").read_text())
ALIASES = {"standard-webhooks": "standard"}


def vector_args(vector: dict, tmp_path: Path) -> list[str]:
    body = tmp_path / f"{vector['id']}.body"
    body.write_bytes(vector["body"].encode("utf-8"))
    args = ["verify", ALIASES.get(vector["provider"], vector["provider"]), "--body-file", str(body)]
    for secret in vector.get("secrets") or [vector["secret"]]:
        args += ["--secret", secret]
    for name, value in vector["headers"].items():
        args += ["--header", f"{name}: {value}"]
    if vector.get("url"):
        args += ["--url", vector["url"]]
    if vector.get("now") is not None:
        args += ["--at", str(vector["now"])]
    return args


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_verify_every_vector(vector, tmp_path):
    result = CliRunner().invoke(main, vector_args(vector, tmp_path))
    if vector["expect"] == "valid":
        assert result.exit_code == 0, result.output
        assert result.output.startswith("verified:")
    else:
        assert result.exit_code == 1, result.output
        assert result.output.startswith("not verified: ")
        assert len(result.output.strip().splitlines()) == 1


def test_verify_says_which_secret_matched(tmp_path):
    body = tmp_path / "b"
    body.write_bytes(b"Hello, World!")
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    result = CliRunner().invoke(
        main,
        [
            "verify",
            "github",
            "--secret",
            "old",
            "--secret",
            "It's a Secret to Everybody",
            "--body-file",
            str(body),
            "--header",
            f"X-Hub-Signature-256: {sig}",
        ],
    )
    assert result.exit_code == 0
    assert result.output.strip() == "verified: github signature matches --secret #2 of 2"


@pytest.mark.parametrize(
    ("headers", "at", "reason"),
    [
        ([], None, "not verified: missing_signature: header Stripe-Signature is missing"),
        (["Stripe-Signature: garbage"], None, "not verified: malformed_signature"),
        (["Stripe-Signature: t=1700000000,v1=" + "00" * 32], None, "not verified: signature_mismatch"),
    ],
)
def test_verify_says_exactly_why_not(tmp_path, headers, at, reason):
    body = tmp_path / "b"
    body.write_bytes(b"{}")
    args = ["verify", "stripe", "--secret", "whsec_x", "--body-file", str(body)]
    for h in headers:
        args += ["--header", h]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.startswith(reason)


def test_verify_stale_and_at(tmp_path):
    from hookstream.ingest.providers import provider_class

    stripe = provider_class("stripe")(["whsec_x"])
    body = b'{"id":"evt_1"}'
    header = stripe.sign(body, timestamp=1_700_000_000)["Stripe-Signature"]
    (tmp_path / "b").write_bytes(body)
    base = [
        "verify",
        "stripe",
        "--secret",
        "whsec_x",
        "--body-file",
        str(tmp_path / "b"),
        "--header",
        f"Stripe-Signature: {header}",
    ]
    now = CliRunner().invoke(main, base)
    assert now.exit_code == 1 and now.output.startswith("not verified: stale_timestamp")
    then = CliRunner().invoke(main, [*base, "--at", "1700000100"])
    assert then.exit_code == 0, then.output
    no_check = CliRunner().invoke(main, [*base, "--tolerance", "0"])
    assert no_check.exit_code == 0


def test_usage_errors_exit_2(tmp_path):
    (tmp_path / "b").write_bytes(b"{}")
    unknown = CliRunner().invoke(
        main, ["verify", "nosuch", "--secret", "s", "--body-file", str(tmp_path / "b")]
    )
    assert unknown.exit_code == 2 and "unknown provider 'nosuch'" in unknown.output
    bad_header = CliRunner().invoke(
        main, ["verify", "github", "--secret", "s", "--body-file", str(tmp_path / "b"), "--header", "nocolon"]
    )
    assert bad_header.exit_code == 2
    bad_secret = CliRunner().invoke(
        main, ["verify", "standard", "--secret", "whsec_!!!", "--body-file", str(tmp_path / "b")]
    )
    assert bad_secret.exit_code == 2 and "secrets[0]" in bad_secret.output
    missing_file = CliRunner().invoke(
        main, ["verify", "github", "--secret", "s", "--body-file", str(tmp_path / "nope")]
    )
    assert missing_file.exit_code == 2


def test_config_errors_are_one_line_without_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[sources.stripe]\nprovider = "stripe"\nsecrets = ["env:HOOKSTREAM_TEST_UNSET_VAR"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "hookstream.cli", "send", "--config", str(config), "stripe"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"hookstream: error: {config}: sources.stripe.secrets[0]: environment variable HOOKSTREAM_TEST_UNSET_VAR is not set (or empty); export it or change the secret"
    ]
    assert "Traceback" not in result.stderr


BAD_CONFIGS = {
    "unknown provider": (
        '[sources.gh]\nprovider = "gitbub"\nsecrets = ["s"]\n',
        "sources.gh.provider: unknown provider 'gitbub'; one of ",
    ),
    "bad secret": (
        '[sources.dc]\nprovider = "discord"\nsecrets = ["abcd"]\n',
        "sources.dc: secrets[0] is not a 32-byte hex Ed25519 public key",
    ),
    "provider option typo": (
        '[sources.gh]\nprovider = "github"\nsecrets = ["s"]\nsignature_heder = "X"\n',
        "sources.gh.signature_heder: unknown key",
    ),
    "bad pattern": ('[consumers.audit]\nevents = ["stripe"]\n', "consumers.audit.events[0]: 'stripe' is not"),
    "bad consumer name": ('[consumers."a b"]\n', "consumers.a b: consumer name 'a b' may only use"),
    "bad filter operator": (
        '[consumers.audit]\nfilter = { body.data.object.amount = { "$gte" = "x", "$more" = 1 } }\n',
        "consumers.audit.filter.body.data.object.amount: unknown operator '$more' (operators: $eq, ",
    ),
    "bad filter operand": (
        '[consumers.audit]\nfilter = \'{"body.type": {"$in": "x"}}\'\n',
        "consumers.audit.filter.body.type: $in: expected a list of values, got 'x'",
    ),
    "bad rate limit": (
        '[consumers.audit]\nrate_limit = "50/day"\n',
        "consumers.audit.rate_limit: '50/day' is not a rate limit",
    ),
    "bad breaker": (
        "[consumers.audit]\nbreaker = { failurs = 3 }\n",
        "consumers.audit.breaker.failurs: unknown key",
    ),
}


@pytest.mark.parametrize("bad", BAD_CONFIGS)
@pytest.mark.parametrize(
    "command",
    [
        ["ingest"],
        ["dev"],
        ["streams"],
        ["send", "gh"],
        ["tail"],
        ["consume", "audit"],
        ["replay", "audit", "--event-id", "x"],
        ["dlq", "list", "audit"],
    ],
    ids=lambda command: command[0],
)
def test_every_command_refuses_a_bad_config_alike_before_starting(tmp_path, command, bad):
    text, message = BAD_CONFIGS[bad]
    config = tmp_path / "bad.toml"
    config.write_text('[kafka]\nbootstrap_servers = "127.0.0.1:1"\n' + text)
    result = CliRunner().invoke(main, [*command, "--config", str(config)])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"hookstream: error: {config}: {message}"), line


@pytest.mark.parametrize(
    "command",
    [["tail", "--timeout", "1"], ["dlq", "list", "audit"]],
    ids=["tail (a consumer)", "dlq list (an admin client)"],
)
def test_a_command_without_a_broker_is_one_line_without_traceback(tmp_path, command):
    config = tmp_path / "hookstream.toml"
    config.write_text('[kafka]\nbootstrap_servers = "127.0.0.1:1"\n')  # nothing listens on port 1
    result = subprocess.run(
        [sys.executable, "-m", "hookstream.cli", *command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("hookstream: error: cannot reach Kafka at 127.0.0.1:1:")
    ), result.stderr


def test_providers_lists_every_provider():
    from hookstream.ingest.providers import PROVIDERS

    result = CliRunner().invoke(main, ["providers", "--json"])
    assert result.exit_code == 0
    assert {row["provider"] for row in json.loads(result.output)} == set(PROVIDERS)


@pytest.mark.parametrize(
    "value, message",
    [("64,abc", "is not a comma-separated list of numbers"), ("64,0", "each must be from 1 to 1024")],
)
def test_bench_ingest_refuses_a_bad_concurrency_list_before_starting_anything(value, message):
    result = CliRunner().invoke(main, ["bench", "ingest", "--concurrency", value])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bench_ingest_passes_the_concurrency_list_on(monkeypatch):
    import hookstream.bench

    seen = {}
    monkeypatch.setattr(hookstream.bench, "run_ingest_bench", lambda **options: seen.update(options) or {})
    result = CliRunner().invoke(
        main, ["bench", "ingest", "--concurrency", "128,32,128", "--out", "/dev/null"]
    )
    assert result.exit_code == 0, result.output
    assert seen["concurrency"] == (128, 32)  # in the order given, once each
    default = CliRunner().invoke(main, ["bench", "ingest", "--help"])
    assert ",".join(map(str, hookstream.bench.CONCURRENCIES)) in default.output


def test_kafka_node_without_a_cluster_is_one_line() -> None:
    result = CliRunner().invoke(main, ["kafka", "--node", "2"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "hookstream: error: --node restarts one node of a cluster: pass --brokers N (2 or more) too"
    )

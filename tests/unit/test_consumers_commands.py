"""The consumer commands' usage and error lines, without a broker."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hookstream.consumers.__main__ import cli
from hookstream.consumers.commands import COMMANDS, consume, dlq, replay


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "hookstream.toml"
    path.write_text(
        '[kafka]\nbootstrap_servers = "127.0.0.1:1"\n[consumers.audit]\naction = "jsonl"\npath = "e.jsonl"\n'
    )
    return path


def run(*args: str, **env: str):
    return CliRunner().invoke(cli, list(args), env=env or None)


def test_an_unknown_consumer_is_one_readable_line_and_exit_1(config_file):
    result = run("consume", "--config", str(config_file), "audti")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("hookstream: error: no consumer named 'audti' in ")
    assert "(known: audit)" in result.output


def test_the_config_comes_from_hookstream_config_too(config_file):
    result = run("consume", "nope", HOOKSTREAM_CONFIG=str(config_file))
    assert result.exit_code == 1 and "no consumer named 'nope'" in result.output
    missing = run("consume", "audit", HOOKSTREAM_CONFIG="/nonexistent/hookstream.toml")
    assert missing.exit_code == 1 and "no such config file" in missing.output


def test_replay_takes_exactly_one_selector(config_file):
    none = run("replay", "--config", str(config_file), "audit")
    assert none.exit_code == 2 and "exactly one of --from-offset" in none.output
    two = run(
        "replay",
        "--config",
        str(config_file),
        "audit",
        "--event-id",
        "x",
        "--from-time",
        "2024-01-01T00:00:00Z",
    )
    assert two.exit_code == 2
    bad = run("replay", "--config", str(config_file), "audit", "--from-offset", "3")
    assert bad.exit_code == 1 and "expected PARTITION:OFFSET, e.g. 0:1200" in bad.output
    when = run("replay", "--config", str(config_file), "audit", "--from-time", "yesterday")
    assert when.exit_code == 1 and "expected ISO 8601" in when.output


def test_every_command_has_help_and_can_join_another_group():
    import click

    group = click.Group("hookstream")
    for command in COMMANDS:
        group.add_command(command)
    assert set(group.commands) == {"consume", "replay", "dlq"}
    assert set(dlq.commands) == {"list", "redrive"}
    for args in (
        ["consume", "--help"],
        ["replay", "--help"],
        ["dlq", "list", "--help"],
        ["dlq", "redrive", "--help"],
    ):
        result = CliRunner().invoke(group, args)
        assert result.exit_code == 0 and "--config" in result.output, args
    assert consume.name == "consume" and replay.name == "replay"

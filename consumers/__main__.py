"""``python -m hookstream.consumers consume|replay|dlq …``: the consumer commands on their own,
with the main CLI's error handling (one line, exit 1)."""

from __future__ import annotations

import click

from hookstream.cli import Group

from .commands import COMMANDS


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """hookstream consumers: consume, replay, dlq."""


for command in COMMANDS:
    cli.add_command(command)

if __name__ == "__main__":
    cli(prog_name="python -m hookstream.consumers")

"""Options shared by the CLI's commands, wherever a stage defines its own."""

from __future__ import annotations

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="HOOKSTREAM_CONFIG",
    help="TOML config file (default: $HOOKSTREAM_CONFIG).",
)

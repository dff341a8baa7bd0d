"""``hookstream console``: serve the web console."""

from __future__ import annotations

import click

from hookstream.cli_options import config_option
from hookstream.errors import ConfigError


def bind_check(host: str, token: object) -> None:
    """A console reachable from other machines must ask for a token."""
    from .auth import is_loopback

    if token is None and not is_loopback(host):
        raise ConfigError(
            f"console: refusing to serve on {host} without a token: set console.token "
            '(e.g. token = "env:HOOKSTREAM_CONSOLE_TOKEN") or bind to 127.0.0.1'
        )


@click.command("console")
@config_option
@click.option("--host", help="Bind address (default: [console].host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [console].port, 8080).")
def console(config_path: str | None, host: str | None, port: int | None) -> None:
    """Serve the web console: events, refusals, consumers, live tail (and, if enabled, actions)."""
    from hookstream.config import load_config
    from hookstream.ingest.server import serve
    from hookstream.logs import configure_logging
    from hookstream.stage_rules import stage_rules

    from .app import create_app

    config = load_config(config_path, rules=stage_rules())
    bind_host = host or config.console.host
    bind_port = port or config.console.port
    bind_check(bind_host, config.console.token)
    configure_logging()
    app = create_app(config)
    mode = "actions on" if config.console.actions else "read-only"
    click.echo(f"console: serving on http://{bind_host}:{bind_port}/ ({mode})", err=True)
    serve(app, bind_host, bind_port, log_config=None, timeout_graceful_shutdown=5)

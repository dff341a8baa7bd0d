"""``python -m hookstream.streams --config F``: the streams worker without the main CLI."""

from __future__ import annotations

import sys

import click

from hookstream.errors import HookstreamError
from hookstream.streams.worker import streams


def main() -> None:
    try:
        streams.main(standalone_mode=False)
    except HookstreamError as exc:
        click.echo(f"hookstream: error: {exc}", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)


if __name__ == "__main__":
    main()

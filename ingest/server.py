"""Running the ingest app: under uvicorn, the same way for ``hookstream ingest`` and the benchmark;
under any ASGI server, from the ``app_from_env`` factory."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from starlette.applications import Starlette

GC_GEN0_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default: 700).

With 64 requests in flight, each holding a few dozen young objects until Kafka acknowledges,
the default threshold is crossed every ~20 requests and every collection walks all those
live objects, a cost that grows with the requests in flight. At 10 000, the in-flight working
set no longer triggers collections, and reference cycles are still collected once that many
objects pile up.
"""


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, config, providers) and raise the gen-0 threshold."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


UVICORN_OPTIONS: dict[str, Any] = {"access_log": False, "proxy_headers": False}
"""How hookstream runs its apps under uvicorn (one process, uvloop and httptools when installed).

``proxy_headers=False``: uvicorn would otherwise believe X-Forwarded-For and X-Forwarded-Proto
from any peer in its own ``forwarded_allow_ips`` (127.0.0.1 by default) and rewrite the client
address before the app sees it. Ingest decides whom to believe itself, from
``[ingest].trusted_proxies`` only: the IP allowlist and the URL-signing providers depend on it.
"""


def uvicorn_config(app: Any, host: str, port: int, **uvicorn_options: Any) -> uvicorn.Config:
    """The config ``serve`` runs with, for running the app in process (tests)."""
    return uvicorn.Config(app, host=host, port=port, **(UVICORN_OPTIONS | uvicorn_options))


def serve(app: Any, host: str, port: int, **uvicorn_options: Any) -> None:
    """Serve ``app`` in the foreground until SIGINT or SIGTERM."""
    tune_gc()
    uvicorn.run(app, host=host, port=port, **(UVICORN_OPTIONS | uvicorn_options))


def app_from_env() -> Starlette:
    """The ingest app for the config file ``$HOOKSTREAM_CONFIG`` names, set up as ``hookstream
    ingest`` sets it up (JSON logs, the garbage collector tuned): the factory to give another
    ASGI server, e.g. ``uvicorn --factory hookstream.ingest.server:app_from_env``."""
    from hookstream.config import load_config
    from hookstream.ingest.app import create_app
    from hookstream.logs import configure_logging
    from hookstream.stage_rules import stage_rules

    config = load_config(rules=stage_rules())
    configure_logging()
    app = create_app(config, connect_timeout=10)
    tune_gc()
    return app

"""Running the ingest app under uvicorn, the same way for ``hookstream ingest`` and the benchmark."""

from __future__ import annotations

import gc
from typing import Any

GC_GEN0_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default: 700).

With 64 requests in flight, each holding a few dozen young objects until Kafka acknowledges,
the default threshold is crossed every ~20 requests and every collection walks all those
live objects: measured with ``hookstream bench ingest``, about a tenth of the server's CPU
went to the collector. At 10 000, the in-flight working set no longer triggers collections,
and reference cycles are still collected once that many objects pile up (resident memory
was unchanged in the same run).
"""


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, config, providers) and raise the gen-0 threshold."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def serve(app: Any, host: str, port: int, **uvicorn_options: Any) -> None:
    """Serve ``app`` with uvicorn (one process, uvloop and httptools when installed)."""
    import uvicorn

    tune_gc()
    uvicorn.run(app, host=host, port=port, access_log=False, **uvicorn_options)

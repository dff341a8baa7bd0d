"""Layers only point down: what sits below the stages (schemas, config) imports no stage."""

from __future__ import annotations

import subprocess
import sys

STAGES = ("hookstream.ingest", "hookstream.consumers", "hookstream.streams")


def stages_imported_by(code: str) -> list[str]:
    """The stage modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(m for m in sys.modules if m.startswith({STAGES!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_schemas_import_no_stage():
    code = "import hookstream.schemas.delivery, hookstream.schemas.envelope, hookstream.schemas.typed_events"
    assert stages_imported_by(code) == []


def test_delivery_helpers_keep_their_old_import_paths():
    from hookstream.ingest import providers
    from hookstream.ingest.providers import base
    from hookstream.schemas import delivery

    assert base.Delivery is providers.Delivery is delivery.Delivery
    assert base.Headers is providers.Headers is delivery.Headers
    assert base.parse_payload is delivery.parse_payload

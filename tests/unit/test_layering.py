"""Layers only point down: what sits below the stages (schemas, config) imports no stage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hookstream.config

STAGES = ("hookstream.ingest", "hookstream.consumers", "hookstream.streams")


def stages_imported_by(code: str) -> list[str]:
    """The stage modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(m for m in sys.modules if m.startswith({STAGES!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def imports_in(path: Path) -> list[str]:
    """Every module an import statement in ``path`` names, those inside functions included,
    not only those an import runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    modules += [
        ("hookstream." if node.level else "") + (node.module or "")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    ]
    return modules


def test_the_kafka_layer_imports_no_stage():
    layer = Path(hookstream.config.__file__).parent / "kafka"
    found = {p.name: [m for m in imports_in(p) if m.startswith(STAGES)] for p in layer.glob("*.py")}
    assert "admin.py" in found and "produce.py" in found  # the layer is where this test looks
    assert {name: stages for name, stages in found.items() if stages} == {}


def test_config_imports_no_stage():
    modules = imports_in(Path(hookstream.config.__file__))
    assert [m for m in modules if m.startswith(STAGES)] == []
    load = (
        "from hookstream.config import parse_config\n"
        "parse_config({'sources': {'gh': {'provider': 'github', 'secrets': ['s']}}, 'consumers': {'audit': {}}})"
    )
    assert stages_imported_by(load) == []


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

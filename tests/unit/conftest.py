"""Unit tests need no broker: a KAFKA_BOOTSTRAP_SERVERS set for the integration tests is unset here.

Configs take that variable over their own ``bootstrap_servers``, and child processes inherit it;
tests of what happens with no broker, or of the example config's ports, would otherwise reach
the cluster it names.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_bootstrap_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)

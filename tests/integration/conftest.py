"""Fixtures for integration tests (the broker fixtures live in tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]

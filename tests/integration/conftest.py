"""Fixtures for integration tests (the broker fixtures live in tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


# ==================================================================================================
# PostgreSQL
#
# postgres_dsn (session, str): the DSN of a real PostgreSQL for the whole session, the first of
#   1. $HOOKSTREAM_TEST_POSTGRES_DSN (CI or your own server; tests create and drop their own tables),
#   2. a throwaway cluster of the installed server binaries (initdb/pg_ctl of the highest
#      /usr/lib/postgresql/<version>/bin, else on PATH): temp dir, free 127.0.0.1 port, trust auth,
#      stopped and deleted at the end of the session (tests/integration/postgres.py).
#   Neither → the test fails saying so; it is never skipped.
# ==================================================================================================

import os  # noqa: E402  (this section's imports are kept in the section)
from collections.abc import Iterator  # noqa: E402

from .postgres import (  # noqa: E402
    DSN_ENV,
    NO_POSTGRES,
    PostgresError,
    ThrowawayPostgres,
    find_server_binaries,
)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A real PostgreSQL's DSN for the session; see the section comment."""
    if configured := os.environ.get(DSN_ENV):
        yield configured
        return
    binaries = find_server_binaries()
    if binaries is None:
        pytest.fail(NO_POSTGRES, pytrace=False)
    server = ThrowawayPostgres(binaries)
    try:
        dsn = server.start()
    except PostgresError as exc:
        failure = f"{NO_POSTGRES}; the throwaway PostgreSQL {binaries.version} did not start: {exc}"
    else:
        try:
            yield dsn
        finally:
            server.stop()
        return
    pytest.fail(failure, pytrace=False)  # outside `except`, so the report is just this message


# ==================================================================================================
# end of PostgreSQL
# ==================================================================================================

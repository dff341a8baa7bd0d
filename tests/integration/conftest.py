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


# ==================================================================================================
# A 3-node Kafka cluster
#
# kafka_cluster (session, ClusterProcess): `hookstream kafka --brokers 3` on free consecutive ports
#   with its own data dir, for the tests that kill, pause and restart brokers. A test gets it whole
#   (every node running) and may leave it broken: the next one mends it. KAFKA_BOOTSTRAP_SERVERS is
#   unset for such a test, or configs would talk to the shared broker instead. It cannot start →
#   the test fails saying why; it is never skipped.
# ==================================================================================================

import shutil  # noqa: E402

from hookstream.kafka.local_cluster import _consecutive_free_ports  # noqa: E402

from .cluster import ClusterError, ClusterProcess  # noqa: E402


@pytest.fixture(scope="session")
def _session_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    data_dir = tmp_path_factory.mktemp("kafka-cluster")
    cluster = ClusterProcess(3, _consecutive_free_ports(3), data_dir)
    try:
        cluster.start()
    except ClusterError as exc:
        cluster.close()
        failure = f"the local 3-node Kafka cluster could not start: {exc}"
    else:
        yield cluster
        cluster.close()
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    pytest.fail(failure, pytrace=False)


@pytest.fixture
def kafka_cluster(_session_cluster: ClusterProcess, monkeypatch: pytest.MonkeyPatch) -> ClusterProcess:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    try:
        _session_cluster.ensure_whole()
    except ClusterError as exc:
        failure = f"the local Kafka cluster could not be made whole again: {exc}"
    else:
        return _session_cluster
    pytest.fail(failure, pytrace=False)


# ==================================================================================================
# end of the 3-node Kafka cluster
# ==================================================================================================

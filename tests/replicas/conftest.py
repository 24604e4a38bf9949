"""Fixtures of the PostgreSQL tests: one real server per session (``scripts/postgres.sh``), started on
first use and stopped at the end; the tests skip only when no PostgreSQL server binaries exist."""

from __future__ import annotations

import pytest
from pg_support import PgServer, ServerUnavailable


@pytest.fixture(scope="session")
def pg_server():
    try:
        server = PgServer()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def pg_database(pg_server):
    """A fresh empty database for one test; its URL."""
    url = pg_server.create_database("db")
    yield url
    pg_server.drop_database(url)

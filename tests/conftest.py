"""Shared fixtures: one throwaway PostgreSQL server per test run, and a fresh database per test
on either backend (`database_url`), so storage contract tests are written once for both."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PostgresServer

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server started once for the whole run (missing binaries fail loudly)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database on the backend named by the param."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'farmhand.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"t{os.getpid()}_{next(_db_counter)}")

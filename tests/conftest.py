"""Shared fixtures: one throwaway PostgreSQL server per test run, a fresh database per test on
either backend (`database_url`), so storage contract tests are written once for both, and a
real master process with a JSON-RPC connection to it (`master`, `api`; a folder's conftest or a
module may define its own `master` with other settings)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PostgresServer
from tests.support import MasterProcess, RpcClient

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


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    """A master with a 0.5 s heartbeat so timeouts happen within a test."""
    process = MasterProcess(tmp_path / "var", "--heartbeat-s", "0.5")
    yield process
    process.stop()


@pytest.fixture
def api(master: MasterProcess) -> Iterator[RpcClient]:
    """A JSON-RPC connection to the `master` fixture (trusted: loopback, no key)."""
    with RpcClient(master.port) as client:
        yield client

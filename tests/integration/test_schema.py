"""One schema: the tables migrations build are the tables models/schema.py declares, on SQLite and
PostgreSQL, whether the database was made fresh or by a farmhand of version 1 and upgraded since;
the storage layer speaks to the drivers through peewee's public API only."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

from models import schema
from models.db import database_from_url
from models.migrations import latest_version, migrate
from models.store import ClientRecord, KeyRecord, Store
from tests.pgserver import PostgresServer
from tests.support import ROOT

_names = itertools.count(1)

# The tables as a farmhand of schema version 1 created them, statement by statement, taken from
# that code (peewee's DDL of its frozen models): the history an upgrade starts from.
VERSION_1_DDL = {
    "sqlite": (
        'CREATE TABLE "schema_version" ("version" INTEGER NOT NULL)',
        'CREATE TABLE "api_key" ("key_id" VARCHAR(32) NOT NULL PRIMARY KEY, "role" VARCHAR(32) '
        'NOT NULL, "name" VARCHAR(200) NOT NULL, "secret_hash" VARCHAR(64) NOT NULL, "created" '
        'REAL NOT NULL, "revoked" INTEGER NOT NULL)',
        'CREATE INDEX "_apikeyv1_role_revoked" ON "api_key" ("role", "revoked")',
        'CREATE TABLE "client" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(200) NOT NULL, '
        '"role" VARCHAR(32) NOT NULL, "host" VARCHAR(255) NOT NULL, "enabled" INTEGER NOT NULL, '
        '"tags" TEXT NOT NULL, "slots" INTEGER NOT NULL, "first_seen" REAL, "last_seen" REAL, '
        '"info" TEXT NOT NULL)',
        'CREATE UNIQUE INDEX "_clientv1_name" ON "client" ("name")',
        'INSERT INTO "schema_version" ("version") VALUES (1)',
    ),
    "postgresql": (
        'CREATE TABLE "schema_version" ("version" INTEGER NOT NULL)',
        'CREATE TABLE "api_key" ("key_id" VARCHAR(32) NOT NULL PRIMARY KEY, "role" VARCHAR(32) '
        'NOT NULL, "name" VARCHAR(200) NOT NULL, "secret_hash" VARCHAR(64) NOT NULL, "created" '
        'DOUBLE PRECISION NOT NULL, "revoked" BOOLEAN NOT NULL)',
        'CREATE INDEX "_apikeyv1_role_revoked" ON "api_key" ("role", "revoked")',
        'CREATE TABLE "client" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(200) NOT NULL, '
        '"role" VARCHAR(32) NOT NULL, "host" VARCHAR(255) NOT NULL, "enabled" BOOLEAN NOT NULL, '
        '"tags" TEXT NOT NULL, "slots" INTEGER NOT NULL, "first_seen" DOUBLE PRECISION, '
        '"last_seen" DOUBLE PRECISION, "info" TEXT NOT NULL)',
        'CREATE UNIQUE INDEX "_clientv1_name" ON "client" ("name")',
        'INSERT INTO "schema_version" ("version") VALUES (1)',
    ),
}
VERSION_1_ROWS = (
    "INSERT INTO client (id, name, role, host, enabled, tags, slots, first_seen, last_seen, info) "
    "VALUES (7, 'old-worker', 'worker', 'h', true, '[\"a\"]', 2, 1.5, 2.5, '{}')",
    "INSERT INTO api_key (key_id, role, name, secret_hash, created, revoked) "
    "VALUES ('k1', 'worker', 'render farm', 'h', 1.0, false)",
)

Columns = list[tuple[str, str, bool, bool]]  # name, type, nullable, primary key; in table order
Indexes = set[tuple[tuple[str, ...], bool]]  # columns, unique


def backend_of(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


@pytest.fixture
def new_database(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], str]:
    """Makes more fresh, empty databases on the backend of `database_url`."""

    def make() -> str:
        number = next(_names)
        if backend_of(database_url) == "sqlite":
            return f"sqlite:///{tmp_path / f'other-{number}.db'}"
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.create_database(f"schema_{number}")

    return make


def open_db(url: str, tmp_path: Path) -> peewee.Database:
    db = database_from_url(url, tmp_path)
    db.connect()
    return db


def tables_of(db: peewee.Database) -> dict[str, tuple[Columns, Indexes, set[str]]]:
    """Every table: its columns in order, its indexes (columns, unique) and their names."""
    found = {}
    for table in db.get_tables():
        columns = [(c.name, c.data_type, c.null, c.primary_key) for c in db.get_columns(table)]
        # The primary key's own index is the table's, not a declared one (SQLite shows none).
        indexes = [i for i in db.get_indexes(table) if not i.name.endswith("_pkey")]
        found[table] = (
            columns,
            {(tuple(i.columns), bool(i.unique)) for i in indexes},
            {i.name for i in indexes},
        )
    return found


@pytest.fixture
def declared(new_database: Callable[[], str], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The tables made straight from models/schema.py, in a database of their own."""
    db = open_db(new_database(), tmp_path)
    try:
        with db.bind_ctx(schema.ALL_MODELS):
            db.create_tables(schema.ALL_MODELS)
        yield {name: (columns, indexes) for name, (columns, indexes, _) in tables_of(db).items()}
    finally:
        db.close()


def without_names(tables: dict[str, tuple[Columns, Indexes, set[str]]]) -> dict[str, Any]:
    return {name: (columns, indexes) for name, (columns, indexes, _) in tables.items()}


def test_a_fresh_database_has_exactly_the_declared_tables_columns_and_indexes(
    database_url: str, tmp_path: Path, declared: dict[str, Any]
) -> None:
    db = open_db(database_url, tmp_path)
    try:
        assert migrate(db) == latest_version()
        assert without_names(tables_of(db)) == declared
    finally:
        db.close()


def test_a_version_1_database_migrates_to_the_declared_schema_and_keeps_its_rows(
    database_url: str,
    new_database: Callable[[], str],
    tmp_path: Path,
    declared: dict[str, Any],
) -> None:
    old = open_db(database_url, tmp_path)
    try:
        for sql in (*VERSION_1_DDL[backend_of(database_url)], *VERSION_1_ROWS):
            old.execute_sql(sql)
    finally:
        old.close()

    store = Store(database_url, tmp_path)
    assert store.open() == latest_version()
    try:
        assert store.load_clients() == [
            ClientRecord(7, "old-worker", "worker", "h", True, ["a"], 2, 1.5, 2.5, {})
        ]
        assert store.load_keys() == [
            KeyRecord("k1", "worker", "", "h", 1.0, False, label="render farm", scope=None)
        ]
        upgraded = store.call(tables_of, store.db)
    finally:
        store.close()
    assert without_names(upgraded) == declared

    # The same index names as a database made fresh: later migrations may name them.
    fresh = open_db(new_database(), tmp_path)
    try:
        migrate(fresh)
        assert {name: t[2] for name, t in upgraded.items()} == {
            name: t[2] for name, t in tables_of(fresh).items()
        }
    finally:
        fresh.close()


@pytest.mark.postgres
def test_postgresql_goes_through_psycopg_3(postgres_server: PostgresServer, tmp_path: Path) -> None:
    import psycopg

    store = Store(postgres_server.create_database(f"driver_{next(_names)}"), tmp_path)
    store.open()
    try:
        assert isinstance(store.call(store.db.connection), psycopg.Connection)
    finally:
        store.close()


# Names peewee keeps to itself: the storage layer must not lean on them (they change unannounced).
PRIVATE_PEEWEE = re.compile(r"__exception_wrapper__|vars\(peewee\)|db\)?\._(state|adapter|close)\b")


def test_the_product_code_uses_only_public_peewee_names() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("models", "farmhand", "dashboard")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_PEEWEE.search(line)
    ]
    assert offenders == []

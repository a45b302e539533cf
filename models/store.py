"""The master's storage: every database call runs in ONE real OS thread that owns the connection.

A sqlite3 call blocks whatever thread makes it (a commit's fsync can take ~100 ms), so running
it in the gevent hub would freeze every peer. Here each call goes to a 1-thread
`gevent.threadpool.ThreadPool`: the calling greenlet waits cooperatively while the hub serves
others, and a single writer means "database is locked" can never reach a user. psycopg2 releases
the GIL during network I/O, so PostgreSQL cooperates with gevent the same way, with no
monkey-patching and no psycogreen wait callback. Hot paths use fixed SQL strings and bulk
statements (sqlite3 executemany, PostgreSQL COPY), because building each statement through peewee
costs 10-25x more than the statement itself.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
import peewee
from gevent.threadpool import ThreadPool

from models.db import database_from_url, database_proxy, redact_url
from models.migrations import migrate

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Translates sqlite3 / psycopg2 exceptions raised by raw cursors into peewee's (IntegrityError,
# OperationalError, …), so callers see the same error types whatever the backend. It is the
# wrapper peewee's own execute_sql uses; peewee's type stubs do not declare it.
_driver_errors: Any = vars(peewee)["__exception_wrapper__"]


@dataclass(slots=True)
class ClientRecord:
    id: int
    name: str
    role: str
    host: str
    enabled: bool
    tags: list[str]
    slots: int
    first_seen: float | None
    last_seen: float | None
    info: dict[str, Any]


@dataclass(slots=True)
class KeyRecord:
    key_id: str
    role: str
    # Agent keys: the client name the key is bound to ('' until its first hello binds it).
    # Api keys: whose key it is (shown in the audit log).
    name: str
    secret_hash: str
    created: float
    revoked: bool
    label: str = ""
    scope: str | None = None  # api keys: "read" or "admin"


_CLIENT_COLUMNS = (
    "id",
    "name",
    "role",
    "host",
    "enabled",
    "tags",
    "slots",
    "first_seen",
    "last_seen",
    "info",
)
# PostgreSQL saves go through COPY into this temp table, then one INSERT … SELECT … ON CONFLICT:
# measured 1.0 s for 100,000 rows against 1.85 s with execute_values (page_size 1000), whose
# client-side mogrify of every row dominates.
_PG_STAGING = "client_staging"
_PG_CREATE_STAGING = f'CREATE TEMP TABLE {_PG_STAGING} (LIKE "client") ON COMMIT DROP'
_PG_DROP_STAGING = f"DROP TABLE {_PG_STAGING}"
# Python 3.11's csv quotes None as "" like an empty string, so the nullable columns say that
# an empty field means NULL (FORCE_NULL); a nullable text column would need another encoding.
_PG_COPY_STAGING = (
    f"COPY {_PG_STAGING} ({', '.join(_CLIENT_COLUMNS)}) FROM STDIN "
    "WITH (FORMAT csv, FORCE_NULL (first_seen, last_seen))"
)
_KEY_COLUMNS = ("key_id", "role", "name", "secret_hash", "created", "revoked", "label", "scope")


@dataclass(frozen=True, slots=True)
class _Statements:
    """Fixed SQL for one backend, built once: placeholders differ (? vs %s), nothing else."""

    select_clients: str
    upsert_clients: (
        str  # SQLite: executemany over rows; PostgreSQL: from the COPY-filled temp table
    )
    delete_client: str
    select_keys: str
    insert_key: str
    revoke_key: str
    bind_key: str

    @classmethod
    def for_param(cls, param: str, *, from_staging: bool) -> _Statements:
        cols = ", ".join(_CLIENT_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _CLIENT_COLUMNS if c != "id")
        row = "(" + ", ".join([param] * len(_CLIENT_COLUMNS)) + ")"
        key_cols = ", ".join(_KEY_COLUMNS)
        key_row = "(" + ", ".join([param] * len(_KEY_COLUMNS)) + ")"
        return cls(
            select_clients=f'SELECT {cols} FROM "client" ORDER BY id',
            upsert_clients=(
                f'INSERT INTO "client" ({cols}) '
                + (f"SELECT {cols} FROM {_PG_STAGING}" if from_staging else f"VALUES {row}")
                + f" ON CONFLICT (id) DO UPDATE SET {updates}"
            ),
            delete_client=f'DELETE FROM "client" WHERE id = {param}',
            select_keys=f'SELECT {key_cols} FROM "api_key" ORDER BY created, key_id',
            insert_key=f'INSERT INTO "api_key" ({key_cols}) VALUES {key_row}',
            revoke_key=f'UPDATE "api_key" SET revoked = {param} WHERE key_id = {param}',
            bind_key=f'UPDATE "api_key" SET name = {param} WHERE key_id = {param}',
        )


def _capture(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    # Runs in the DB thread. Hand exceptions back as values: gevent's ThreadPool would otherwise
    # print every one (an expected IntegrityError included) through the hub's error handler.
    try:
        return True, fn(*args)
    except Exception as exc:
        return False, exc


class Store:
    """Opens the database in its own thread and offers the bulk operations the master needs."""

    def __init__(self, url: str | None, data_dir: Path) -> None:
        self._url = url
        self._db = database_from_url(url, data_dir)
        # Any use outside the DB thread must fail loudly rather than open a second connection.
        self._db.autoconnect = False
        self._is_postgres = isinstance(self._db, peewee.PostgresqlDatabase)
        self._sql = _Statements.for_param(self._db.param, from_staging=self._is_postgres)
        self._pool: ThreadPool | None = None
        self._thread_id: int | None = None

    @property
    def db(self) -> peewee.Database:
        return self._db

    @property
    def backend(self) -> str:
        return "postgresql" if self._is_postgres else "sqlite"

    @property
    def description(self) -> str:
        if self._is_postgres:
            return redact_url(self._url)
        return f"sqlite:{self._db.database}"

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> int:
        """Start the DB thread, connect inside it and migrate; return the schema version."""
        if self._pool is not None:
            raise RuntimeError("store is already open")
        self._pool = ThreadPool(1)
        try:
            self._thread_id = self.call(threading.get_ident)
            self.call(self._db.connect)
            version = self.call(migrate, self._db)
        except BaseException:
            self.close()
            raise
        database_proxy.initialize(self._db)
        logger.info("database opened: %s (schema version %d)", self.description, version)
        return version

    def close(self) -> None:
        """Close the connection in its thread and stop the thread; safe to call twice."""
        pool = self._pool
        if pool is None:
            return
        try:
            if self._thread_id is not None:
                self.call(self._db.close)
        finally:
            self._pool = None
            self._thread_id = None
            pool.kill()
            logger.info("database closed: %s", self.description)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) in the DB thread and return its result; its exceptions propagate."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("store is not open")
        if threading.get_ident() == self._thread_id:
            return fn(*args)  # already in the DB thread (a nested call): waiting would deadlock
        ok, value = pool.spawn(_capture, fn, args).get()
        if not ok:
            raise value
        return cast(T, value)

    # -- clients ---------------------------------------------------------------------------------

    def load_clients(self) -> list[ClientRecord]:
        """Every client, ordered by id, in one query."""
        return self.call(self._load_clients)

    def save_clients(self, records: Sequence[ClientRecord]) -> None:
        """Insert or update `records` by id, all in one transaction.

        The DB thread reads the records while other greenlets run: pass copies (or do not
        mutate them) if a consistent snapshot of each row matters.
        """
        if records:
            self.call(self._save_clients, records)

    def delete_client(self, client_id: int) -> None:
        self.call(self._db.execute_sql, self._sql.delete_client, (client_id,))

    def _load_clients(self) -> list[ClientRecord]:
        rows = self._db.execute_sql(self._sql.select_clients).fetchall()
        loads = orjson.loads
        return [
            ClientRecord(
                id_, name, role, host, bool(en), loads(tags), slots, first, last, loads(info)
            )
            for id_, name, role, host, en, tags, slots, first, last, info in rows
        ]

    def _save_clients(self, records: Sequence[ClientRecord]) -> None:
        # JSON is serialised here, in the DB thread, so the hub never pays for it.
        dumps = orjson.dumps
        rows = [
            (
                r.id,
                r.name,
                r.role,
                r.host,
                r.enabled,
                dumps(r.tags).decode(),
                r.slots,
                r.first_seen,
                r.last_seen,
                dumps(r.info).decode(),
            )
            for r in records
        ]
        with self._db.atomic(), _driver_errors:
            cursor = self._db.cursor()
            if self._is_postgres:
                # CSV with QUOTE_NONNUMERIC: strings quoted (so "" stays empty text), numbers
                # bare, floats written with repr() so they round-trip exactly.
                buf = io.StringIO()
                csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC).writerows(rows)
                buf.seek(0)
                cursor.execute(_PG_CREATE_STAGING)
                cursor.copy_expert(_PG_COPY_STAGING, buf)
                cursor.execute(self._sql.upsert_clients)
                # Dropped now, not only at commit, in case the caller wraps us in its transaction.
                cursor.execute(_PG_DROP_STAGING)
            else:
                cursor.executemany(self._sql.upsert_clients, rows)

    # -- keys ------------------------------------------------------------------------------------

    def load_keys(self) -> list[KeyRecord]:
        return self.call(self._load_keys)

    def insert_key(self, record: KeyRecord) -> None:
        row = (
            record.key_id,
            record.role,
            record.name,
            record.secret_hash,
            record.created,
            record.revoked,
            record.label,
            record.scope,
        )
        self.call(self._db.execute_sql, self._sql.insert_key, row)

    def revoke_key(self, key_id: str) -> bool:
        """Mark the key revoked; False if no such key exists."""
        return self.call(self._revoke_key, key_id)

    def bind_key(self, key_id: str, name: str) -> None:
        """Bind an agent key to the client name it said hello with first."""
        self.call(self._db.execute_sql, self._sql.bind_key, (name, key_id))

    def _load_keys(self) -> list[KeyRecord]:
        rows = self._db.execute_sql(self._sql.select_keys).fetchall()
        return [
            KeyRecord(key_id, role, name, secret_hash, created, bool(revoked), label, scope)
            for key_id, role, name, secret_hash, created, revoked, label, scope in rows
        ]

    def _revoke_key(self, key_id: str) -> bool:
        cursor = self._db.execute_sql(self._sql.revoke_key, (True, key_id))
        return bool(cursor.rowcount > 0)

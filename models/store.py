"""The master's storage: every database call runs in ONE real OS thread that owns the connection.

A sqlite3 call blocks whatever thread makes it (a commit's fsync can take ~100 ms), so running
it in the gevent hub would freeze every peer. Here each call goes to a 1-thread
`gevent.threadpool.ThreadPool`: the calling greenlet waits cooperatively while the hub serves
others, and a single writer means "database is locked" can never reach a user. psycopg 3
releases the GIL while it waits on the network, so PostgreSQL cooperates with gevent the same
way, with no monkey-patching and no wait callback. Hot paths use fixed SQL strings derived from
models/schema.py (models/tables.py) and bulk statements (sqlite3 executemany, PostgreSQL binary
COPY), because building each statement through peewee costs 10-25x more than the statement.

On a PostgreSQL shared by standby masters the active one calls `fence(generation)`: from then on
every call that may write runs in one transaction that first checks the master lease's
generation (models/lease.py), so a master another one took over from writes nothing.

Every call reports to `health` (models/health.py): a lost connection or a full disk marks the
database down, later calls fail at once with DatabaseUnavailable until the backoff says try
again, and the attempt that works (after reconnecting, in this same thread) marks it up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import gevent
import orjson
import peewee
from gevent.threadpool import ThreadPool

from models.db import database_from_url, database_proxy, driver_errors, redact_url
from models.health import RECONNECT_MAX_S, DatabaseHealth, DatabaseUnavailable, classify
from models.lease import FENCE_SQL, MIGRATION_LOCK_KEY, LeaseLost
from models.migrations import migrate
from models.storesql import (
    CLIENT,
    KEY,
    PG_CLIENT_TYPES,
    PG_COPY_STAGING,
    PG_CREATE_STAGING,
    PG_DROP_STAGING,
    Statements,
)
from models.tables import copy_rows, record_fields

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
    schedule: str | None = None  # sleep schedule, canonical text (protocol/schedule.py)


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


# A fetched row is the record's argument list: the fields must be the columns, in order.
record_fields(ClientRecord, CLIENT.columns)
record_fields(KeyRecord, KEY.columns)

# The recovery probe on SQLite must write, because a full disk still answers SELECT 1: a table
# created and dropped in one transaction needs a free page and room in the WAL, like real writes.
# PostgreSQL ends a transaction left open this long (its master frozen, e.g. by SIGSTOP): it
# could hold the lease row's key share lock, keeping a standby from taking over, or rows the new
# master must write. Long enough for the Python work between a big save's statements.
PG_IDLE_IN_TRANSACTION_MS = 10_000

_SQLITE_PROBE = (
    'CREATE TABLE IF NOT EXISTS "farmhand_probe" (x INTEGER)',
    'DROP TABLE "farmhand_probe"',
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

    def __init__(
        self,
        url: str | None,
        data_dir: Path,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._db = database_from_url(url, data_dir)
        # Any use outside the DB thread must fail loudly rather than open a second connection.
        self._db.autoconnect = False
        self._is_postgres = isinstance(self._db, peewee.PostgresqlDatabase)
        self._sql = Statements.for_param(self._db.param, from_staging=self._is_postgres)
        self._pool: ThreadPool | None = None
        self._thread_id: int | None = None
        self._wall = wall
        self._mono = mono
        self.health = DatabaseHealth(wall(), mono())
        self._recovery: gevent.Greenlet | None = None
        # The lease generation every write checks (None: no fence, e.g. SQLite), whether a
        # check failed, and who to tell when it did (in the hub).
        self._fence: int | None = None
        self._fenced = False
        self._on_fenced: Callable[[], None] | None = None

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

    @property
    def url(self) -> str:
        """The database's URL, password redacted."""
        return redact_url(self._url) if self._url else f"sqlite:///{self._db.database}"

    def health_view(self) -> dict[str, Any]:
        """backend, url, healthy, since (wall seconds), last_error, reconnects, … for `status`."""
        return {"backend": self.backend, "url": self.url, **self.health.view(self._mono())}

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> int:
        """Start the DB thread, connect inside it and migrate; return the schema version."""
        if self._pool is not None:
            raise RuntimeError("store is already open")
        self._pool = ThreadPool(1)
        try:
            self._thread_id = self.call(threading.get_ident)
            self.call(self._connect)
            version = self.call(self._migrate)
        except BaseException:
            self.close()
            raise
        database_proxy.initialize(self._db)
        logger.info("database opened: %s (schema version %d)", self.description, version)
        return version

    def _connect(self) -> None:
        self._db.connect()
        if self._is_postgres:
            self._db.execute_sql(
                f"SET idle_in_transaction_session_timeout = {PG_IDLE_IN_TRANSACTION_MS}"
            )

    def _migrate(self) -> int:
        if not self._is_postgres:
            return migrate(self._db)
        # Masters started together on a new database: one migrates, the others wait and see.
        self._db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            return migrate(self._db)
        finally:
            self._db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))

    def fresh_connection(self) -> None:
        """Open a new connection (a standby's may have idled for days before its takeover)."""
        self.call(self._fresh_connection)

    def _fresh_connection(self) -> None:
        self._drop_connection()
        self._connect()

    def fence(self, generation: int, on_fenced: Callable[[], None]) -> None:
        """From now on every call that may write first checks that the master lease still has
        `generation`; when not, the call fails with LeaseLost and `on_fenced` runs (once)."""
        self._fence = generation
        self._fenced = False
        self._on_fenced = on_fenced

    @property
    def fenced(self) -> bool:
        return self._fenced

    def close(self) -> None:
        """Close the connection in its thread and stop the thread; safe to call twice, and
        quiet when the database is gone."""
        pool = self._pool
        if pool is None:
            return
        if self._recovery is not None:
            self._recovery.kill()
            self._recovery = None
        try:
            if self._thread_id is not None:
                pool.spawn(_capture, self._drop_connection, ()).get()
        finally:
            self._pool = None
            self._thread_id = None
            pool.kill()
            logger.info("database closed: %s", self.description)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) in the DB thread and return its result; its exceptions propagate,
        storage failures as DatabaseUnavailable (raised at once while the database is down)."""
        return self._run(fn, args, read=False)

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Like `call` for a statement that only reads: it still runs while SQLite refuses
        writes (a full disk), and its success does not count as the database being back."""
        return self._run(fn, args, read=True)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...], read: bool) -> T:
        pool = self._pool
        if pool is None:
            raise RuntimeError("store is not open")
        if threading.get_ident() == self._thread_id:
            return fn(*args)  # already in the DB thread (a nested call): waiting would deadlock
        ok, value = pool.spawn(self._guarded, fn, args, read).get()
        if not self.health.healthy:
            self._recover_in_background()
        if not ok:
            if isinstance(value, LeaseLost) and self._on_fenced is not None:
                on_fenced, self._on_fenced = self._on_fenced, None
                on_fenced()
            raise value
        return cast(T, value)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """In the DB thread: one transaction and a raw cursor (for executemany and COPY) whose
        driver errors come out as peewee's (IntegrityError, OperationalError, …)."""
        with self._db.atomic(), driver_errors():
            yield self._db.cursor()

    # -- health and recovery ---------------------------------------------------------------------

    def _guarded(self, fn: Callable[..., Any], args: tuple[Any, ...], read: bool) -> Any:
        # Runs in the DB thread; returns (ok, value) like _capture.
        health = self.health
        now = self._mono()
        if not health.may_run(now, read):
            return False, health.unavailable(now, attempted=False)
        if health.needs_reconnect:
            try:
                self._reconnect()
            except Exception as exc:
                return False, self._failure(exc, attempted=False)
        attempts = health.failed_attempts
        try:
            value = fn(*args) if read or self._fence is None else self._fenced_call(fn, args)
        except LeaseLost as exc:
            return False, exc
        except Exception as exc:
            return False, self._failure(exc, attempted=True)
        outage_s = health.succeeded(self._mono(), self._wall(), read)
        if outage_s is not None:
            logger.info(
                "database %s is back after %.1f s (%d failed attempts, %d reconnects so far)",
                self.description,
                outage_s,
                attempts,
                health.reconnects,
            )
        return True, value

    def _fenced_call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        # In the DB thread: fn's statements and the generation check commit together or not at
        # all. The check comes last, so the key share lock it takes on the lease row (which
        # makes a takeover wait) is held only for the commit.
        if self._fenced:
            raise LeaseLost()
        with self._db.atomic():
            value = fn(*args)
            if self._db.execute_sql(FENCE_SQL, (self._fence,)).fetchone() is None:
                self._fenced = True
                raise LeaseLost()
        return value

    def _failure(self, exc: Exception, attempted: bool) -> Exception:
        problem = classify(exc, self.backend)
        if problem is None:
            return exc  # the statement's own error (a constraint, a bug): not the database's
        now = self._mono()
        if self.health.failed(problem, now, self._wall()):
            logger.error(
                "database %s is down: %s; writes are refused until it is back (retrying)",
                self.description,
                problem.describe(),
            )
        unavailable = self.health.unavailable(now, attempted)
        unavailable.__cause__ = exc
        return unavailable

    def _reconnect(self) -> None:
        self._drop_connection()
        self._connect()
        self.health.reconnected()
        logger.debug("database %s: reconnected", self.description)

    def _drop_connection(self) -> None:
        try:
            self._db.close()
        except Exception:
            # peewee refuses to close a connection it believes is in a transaction, and a
            # broken one may fail to close at all: forget it, a new one is opened next.
            self._db.dispose()

    def _probe(self) -> None:
        """The smallest call that proves the database takes writes again."""
        if self._is_postgres:
            self._db.execute_sql("SELECT 1").fetchone()
            return
        with self.transaction() as cursor:
            for sql in _SQLITE_PROBE:
                cursor.execute(sql)

    def _recover_in_background(self) -> None:
        if self._recovery is None or self._recovery.dead:
            self._recovery = gevent.spawn(self._recover)

    def _recover(self) -> None:
        """While down: probe whenever the backoff allows, so the database is seen back even
        when nothing else writes; log a summary now and then."""
        health = self.health
        while not health.healthy and self._pool is not None:
            gevent.sleep(max(health.retry_in(self._mono()), 0.05))
            if health.healthy:
                break
            if health.summary_due(self._mono()):
                logger.warning(
                    "database %s still down after %.0f s: %s (%d failed attempts)",
                    self.description,
                    health.down_for(self._mono()),
                    health.last_error,
                    health.failed_attempts,
                )
            try:
                self.call(self._probe)
            except DatabaseUnavailable:
                pass
            except Exception as exc:
                logger.warning("database %s: recovery probe failed: %r", self.description, exc)
                gevent.sleep(RECONNECT_MAX_S)

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
                id_,
                name,
                role,
                host,
                bool(en),
                loads(tags),
                slots,
                first,
                last,
                loads(info),
                schedule,
            )
            for id_, name, role, host, en, tags, slots, first, last, info, schedule in rows
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
                r.schedule,
            )
            for r in records
        ]
        with self.transaction() as cursor:
            if self._is_postgres:
                cursor.execute(PG_CREATE_STAGING)
                copy_rows(cursor, PG_COPY_STAGING, PG_CLIENT_TYPES, rows)
                cursor.execute(self._sql.upsert_clients)
                # Dropped now, not only at commit, in case the caller wraps us in its transaction.
                cursor.execute(PG_DROP_STAGING)
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

"""The master lease on a shared PostgreSQL database: which master is active, and its fence.

One row of `master_lease` (models/schema.py) names the active master and a `generation` that
grows at every takeover. The active master renews `expires` every few seconds on a connection of
its own (its own OS thread, so a long COPY on the storage connection never delays a renewal) and
holds a session-level advisory lock there too (`locked` says so). A standby takes over when the
lease has expired, or at once when it gets the advisory lock while the row says the holder had
it: the holder's session is gone (killed, or its connection lost). Every write
transaction of the active master's storage thread ends with `FENCE_SQL` before it commits, which
takes a key share lock on the row: a takeover (SELECT … FOR UPDATE) waits for that commit, and
after a takeover no transaction of the old generation commits. Times are the database's clock
(clock_timestamp()).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

from models.db import database_from_url
from models.health import DatabaseUnavailable, StorageProblem

log = logging.getLogger(__name__)

# Any bigint both masters agree on: "farmhand" in ASCII.
ADVISORY_LOCK_KEY = 0x6661726D68616E64
MIGRATION_LOCK_KEY = ADVISORY_LOCK_KEY + 1
# A takeover blocked behind a write in flight gives up after this and tries again.
LOCK_TIMEOUT_MS = 2000

_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
ENSURE_ROW_SQL = (
    'INSERT INTO "master_lease" ("id", "generation", "holder", "acquired", "expires", "locked") '
    "VALUES (1, 0, '', 0, 0, false) ON CONFLICT (\"id\") DO NOTHING"
)
LOCK_ROW_SQL = f'SELECT "expires" < {_NOW}, "locked" FROM "master_lease" WHERE "id" = 1 FOR UPDATE'
TAKE_OVER_SQL = (
    f'UPDATE "master_lease" SET "generation" = "generation" + 1, "holder" = %s, '
    f'"acquired" = {_NOW}, "expires" = {_NOW} + %s, "locked" = %s WHERE "id" = 1 '
    'RETURNING "generation"'
)
RENEW_SQL = (
    f'UPDATE "master_lease" SET "expires" = {_NOW} + %s, "locked" = %s '
    'WHERE "id" = 1 AND "generation" = %s RETURNING "generation"'
)
RELEASE_SQL = 'UPDATE "master_lease" SET "expires" = 0 WHERE "id" = 1 AND "generation" = %s'
VIEW_SQL = f'SELECT "generation", "holder", "acquired", "expires", {_NOW} FROM "master_lease"'
# Run last in every write transaction of the active master (the fence): one row, or fenced.
# Only the generation counts: a master whose lease ran out while nobody took over may go on.
FENCE_SQL = 'SELECT 1 FROM "master_lease" WHERE "id" = 1 AND "generation" = %s FOR KEY SHARE'


class LeaseLost(DatabaseUnavailable):
    """This master is no longer the active one (another took over): it may not write. A kind of
    DatabaseUnavailable, so that every writer handles it as quietly as an outage."""

    def __init__(self) -> None:
        problem = StorageProblem(
            "not the active master", "another master took over the lease", False, True
        )
        # Writers wait as for an outage; the master closes everything within milliseconds.
        super().__init__(problem, attempted=False, retry_in_s=1.0)


@dataclass(frozen=True, slots=True)
class LeaseView:
    generation: int
    holder: str
    acquired: float  # database epoch seconds of the last takeover (0: never)
    expires: float
    now: float  # the database's clock when read


class LeaseStore:
    """The lease's own connection: blocking calls, to be run in one dedicated OS thread."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self._db = database_from_url(url, data_dir)
        if not isinstance(self._db, peewee.PostgresqlDatabase):
            raise ValueError("the master lease needs a postgresql:// database")
        self._db.autoconnect = False
        self._locked = False  # whether this session holds the advisory lock

    def _connected(self) -> peewee.Database:
        if self._db.is_closed():
            self._locked = False
            self._db.connect()
            self._db.execute_sql(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            self._db.execute_sql(ENSURE_ROW_SQL)
        return self._db

    def close(self) -> None:
        self._locked = False
        try:
            self._db.close()
        except Exception:
            self._db.dispose()

    def drop(self) -> None:
        """Forget a connection that failed; the next call opens a new one."""
        self._locked = False
        self._db.dispose()

    def _try_lock(self, db: peewee.Database) -> bool:
        if not self._locked:
            row = db.execute_sql("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
            self._locked = bool(row[0])
        return self._locked

    def _unlock(self, db: peewee.Database) -> None:
        if self._locked:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            self._locked = False

    def try_take_over(self, holder: str, lease_s: float) -> int | None:
        """The new generation when this master is now the active one; None when the lease is
        held (unexpired, and its holder's session alive)."""
        db = self._connected()
        locked = self._try_lock(db)
        with db.atomic():
            row = db.execute_sql(LOCK_ROW_SQL).fetchone()
            expired, holder_locked = bool(row[0]), bool(row[1])
            if expired or (locked and holder_locked):
                (generation,) = db.execute_sql(TAKE_OVER_SQL, (holder, lease_s, locked)).fetchone()
                return int(generation)
        # Held: a standby must not keep the lock, or the holder could never take it back.
        self._unlock(db)
        return None

    def renew(self, generation: int, lease_s: float) -> bool:
        """Extend the lease; False when another master took it over (this one is fenced)."""
        db = self._connected()
        # After a takeover by expiry the old holder's session may still hold the lock.
        locked = self._try_lock(db)
        row = db.execute_sql(RENEW_SQL, (lease_s, locked, generation)).fetchone()
        return row is not None

    def release(self, generation: int) -> None:
        """Let a standby take over at once (a clean stop)."""
        db = self._connected()
        db.execute_sql(RELEASE_SQL, (generation,))
        self._unlock(db)

    def view(self) -> LeaseView | None:
        row: Any = self._connected().execute_sql(VIEW_SQL).fetchone()
        if row is None:
            return None
        return LeaseView(int(row[0]), str(row[1]), float(row[2]), float(row[3]), float(row[4]))

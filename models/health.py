"""The database's health as the storage thread sees it: up, or down since when and why.

Every call the Store runs reports its outcome here. A storage failure (a lost connection, a
full disk, an I/O error …) marks the database down and schedules the next attempt with the
shared Backoff; until then calls fail at once without touching the database, so a failing
caller cannot spin. The first call at or after that time is the attempt (the Store reconnects
first when the connection was lost); its success marks the database up. Time is passed in.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from protocol.backoff import Backoff

# After an outage the backoff starts from its first delay again only once the database has
# stayed up this long: a database that fails at every other write is retried ever more slowly.
STABLE_S = 30.0
# While down, the Store logs one summary line this often (besides one line per state change).
SUMMARY_INTERVAL_S = 60.0
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """Why the database cannot take a call: what the operator reads, and how to recover."""

    reason: str  # "connection lost", "disk full", "read-only", "locked", "I/O error", …
    error: str  # the driver's message, first line
    reconnect: bool  # the connection must be reopened before the next attempt
    reads_work: bool  # reads may go on meanwhile (SQLite full, read-only or locked)

    def describe(self) -> str:
        return f"{self.reason}: {self.error}"


class DatabaseUnavailable(Exception):
    """The database could not take this call; `attempted` says whether it was even tried."""

    def __init__(self, problem: StorageProblem, *, attempted: bool, retry_in_s: float) -> None:
        super().__init__(f"database unavailable ({problem.describe()})")
        self.problem = problem
        self.attempted = attempted
        self.retry_in_s = retry_in_s


# SQLite primary result codes (sqlite3.h) that say the database, not the statement, failed.
_SQLITE_PROBLEMS: dict[int, tuple[str, bool, bool]] = {
    # code: (reason, reconnect, reads_work)
    5: ("locked", False, True),  # SQLITE_BUSY: another process holds the write lock
    6: ("locked", False, True),  # SQLITE_LOCKED
    8: ("read-only", False, True),  # SQLITE_READONLY
    10: ("I/O error", True, False),  # SQLITE_IOERR and its extended codes
    11: ("corrupt", True, False),  # SQLITE_CORRUPT
    13: ("disk full", False, True),  # SQLITE_FULL: the disk, or PRAGMA max_page_count
    14: ("cannot open", True, False),  # SQLITE_CANTOPEN
    26: ("not a database", True, False),  # SQLITE_NOTADB
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def classify(exc: BaseException, backend: str) -> StorageProblem | None:
    """The storage problem behind `exc`, or None when the statement itself failed (a bug, an
    integrity error): those are the caller's to report, not the database's health."""
    # The problem may hide behind a later error: SQLite rolls a transaction back by itself on
    # SQLITE_FULL, so peewee's own ROLLBACK then fails with "no transaction is active".
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        problem = _classify_one(seen, backend)
        if problem is not None:
            return problem
        seen = seen.__cause__ or seen.__context__
    return None


def _classify_one(exc: BaseException, backend: str) -> StorageProblem | None:
    # peewee re-raises driver errors as its own types and keeps the original in `orig`.
    orig: Any = getattr(exc, "orig", None) or exc
    name = type(exc).__name__
    if backend == "sqlite":
        if isinstance(orig, sqlite3.Error):
            code = getattr(orig, "sqlite_errorcode", None)
            found = _SQLITE_PROBLEMS.get(code & 0xFF) if isinstance(code, int) else None
            if found is None:
                return None
            reason, reconnect, reads_work = found
            return StorageProblem(reason, _first_line(orig), reconnect, reads_work)
        if name == "InterfaceError":  # peewee: "database connection not opened"
            return StorageProblem("connection lost", _first_line(exc), True, False)
        return None
    import psycopg  # only PostgreSQL's errors get here, so the extra is installed

    if isinstance(orig, psycopg.InterfaceError) or name == "InterfaceError":
        return StorageProblem("connection lost", _first_line(orig), True, False)
    if isinstance(orig, psycopg.OperationalError):
        code = orig.sqlstate or ""
        if code == "53100":
            reason = "disk full"
        elif code == "57P03":  # cannot connect now: the server is starting or stopping
            reason = "server shutting down or starting"
        else:  # 57P01/57P02: the server ended our session (a restart, a crash), or no answer
            reason = "connection lost"
        return StorageProblem(reason, _first_line(orig), True, False)
    return None


class DatabaseHealth:
    """Up or down, since when, why, and when the next attempt is due. Written by the DB thread
    (`failed`, `succeeded`, `reconnected`), read by any (`view`, under a lock)."""

    def __init__(self, now_wall: float, now_mono: float, backoff: Backoff | None = None) -> None:
        self._backoff = backoff or Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S)
        self._lock = threading.Lock()
        self.healthy = True
        self.since = now_wall
        self.problem: StorageProblem | None = None
        self.last_error: str | None = None
        self.reconnects = 0
        self.failed_attempts = 0  # attempts that failed during this outage
        self.outages = 0
        self._up_since = now_mono
        self._down_since = now_mono
        self._next_attempt = now_mono
        self._next_summary = now_mono

    # -- the DB thread -------------------------------------------------------------------------
    def may_run(self, now_mono: float, read: bool) -> bool:
        """Whether a call may touch the database now; else it fails at once."""
        if self.healthy:
            return True
        if read and self.problem is not None and self.problem.reads_work:
            return True
        return now_mono >= self._next_attempt

    def failed(self, problem: StorageProblem, now_mono: float, now_wall: float) -> bool:
        """Record a storage failure; True when this one took the database down."""
        with self._lock:
            went_down = self.healthy
            if went_down:
                if now_mono - self._up_since >= STABLE_S:
                    self._backoff.reset()
                self.healthy = False
                self.since = now_wall
                self.failed_attempts = 0
                self.outages += 1
                self._down_since = now_mono
                self._next_summary = now_mono + SUMMARY_INTERVAL_S
            else:
                self.failed_attempts += 1
            self.problem = problem
            self.last_error = problem.describe()
            self._next_attempt = now_mono + self._backoff.next_delay()
            return went_down

    def succeeded(self, now_mono: float, now_wall: float, read: bool) -> float | None:
        """Record a call that worked; the outage's length when this one ended it, else None.
        A read proves nothing while reads were allowed through a write failure."""
        if self.healthy or (read and self.problem is not None and self.problem.reads_work):
            return None
        with self._lock:
            self.healthy = True
            self.since = now_wall
            self.problem = None
            self.failed_attempts = 0
            self._up_since = now_mono
            return now_mono - self._down_since

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1

    def unavailable(self, now_mono: float, attempted: bool) -> DatabaseUnavailable:
        assert self.problem is not None, "the database is up"
        return DatabaseUnavailable(
            self.problem, attempted=attempted, retry_in_s=self.retry_in(now_mono)
        )

    # -- anyone --------------------------------------------------------------------------------
    @property
    def needs_reconnect(self) -> bool:
        problem = self.problem
        return not self.healthy and problem is not None and problem.reconnect

    def retry_in(self, now_mono: float) -> float:
        """Seconds until the next attempt may run (0 when up or due)."""
        return 0.0 if self.healthy else max(0.0, self._next_attempt - now_mono)

    def down_for(self, now_mono: float) -> float:
        return 0.0 if self.healthy else now_mono - self._down_since

    def summary_due(self, now_mono: float) -> bool:
        """True once per SUMMARY_INTERVAL_S while down (for the periodic log line)."""
        with self._lock:
            if self.healthy or now_mono < self._next_summary:
                return False
            self._next_summary = now_mono + SUMMARY_INTERVAL_S
            return True

    def view(self, now_mono: float) -> dict[str, Any]:
        """A consistent snapshot: times as given (wall seconds), for `status` to format."""
        with self._lock:
            return {
                "healthy": self.healthy,
                "since": self.since,
                "last_error": self.last_error,
                "reconnects": self.reconnects,
                "failed_attempts": self.failed_attempts,
                "outages": self.outages,
                "down_s": round(self.down_for(now_mono), 3),
                "retry_in_s": round(self.retry_in(now_mono), 3),
            }

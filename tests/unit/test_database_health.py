"""The database's health state (models/health.py) with the time passed in, and the
classification of real driver errors into storage problems and statement errors."""

from __future__ import annotations

import random
import sqlite3

import peewee
import psycopg
import psycopg.errors
import pytest

from models.health import (
    STABLE_S,
    SUMMARY_INTERVAL_S,
    DatabaseHealth,
    StorageProblem,
    classify,
)
from protocol.backoff import Backoff

LOST = StorageProblem("connection lost", "connection already closed", True, False)
FULL = StorageProblem("disk full", "database or disk is full", False, True)
WALL, MONO = 1_700_000_000.0, 100.0


def health() -> DatabaseHealth:
    return DatabaseHealth(WALL, MONO, Backoff(initial_s=1.0, maximum_s=8.0, rng=random.Random(3)))


def test_a_failure_takes_it_down_once_and_calls_wait_for_the_backoff() -> None:
    h = health()
    assert h.healthy and h.may_run(MONO, read=False)
    assert h.failed(LOST, MONO, WALL + 1) is True
    assert (h.healthy, h.since, h.last_error) == (False, WALL + 1, LOST.describe())
    wait = h.retry_in(MONO)
    assert 0.5 <= wait <= 1.0
    assert not h.may_run(MONO + wait - 0.01, read=False)  # fail fast: no spinning
    assert not h.may_run(MONO, read=True)  # a lost connection serves no reads either
    assert h.may_run(MONO + wait, read=False)  # the attempt
    assert h.failed(LOST, MONO + wait, WALL + 2) is False  # still down: no new state change
    assert h.failed_attempts == 1 and h.since == WALL + 1
    assert h.unavailable(MONO, attempted=False).problem is LOST


def test_delays_grow_while_it_stays_down() -> None:
    h = health()
    now, waits = MONO, []
    for _ in range(5):
        h.failed(LOST, now, WALL)
        waits.append(h.retry_in(now))
        now += waits[-1]
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True)), waits


def test_success_brings_it_back_and_the_backoff_restarts_only_once_stable() -> None:
    h = health()
    for i in range(3):
        h.failed(LOST, MONO + i * 10, WALL)
    assert h.succeeded(MONO + 40, WALL + 40, read=False) == 40.0
    assert h.healthy and h.since == WALL + 40 and h.failed_attempts == 0
    assert h.last_error == LOST.describe()  # kept for the operator
    assert h.succeeded(MONO + 41, WALL + 41, read=False) is None  # already up
    # Down again at once: the backoff goes on from where it was (a flapping database).
    h.failed(LOST, MONO + 41, WALL + 41)
    assert h.retry_in(MONO + 41) > 4.0 - 1e-9
    h.succeeded(MONO + 50, WALL + 50, read=False)
    # Down again after a long stable spell: from the first delay.
    h.failed(LOST, MONO + 50 + STABLE_S, WALL)
    assert h.retry_in(MONO + 50 + STABLE_S) <= 1.0
    assert h.outages == 3


def test_reads_go_on_through_a_full_disk_but_do_not_count_as_recovery() -> None:
    h = health()
    h.failed(FULL, MONO, WALL)
    assert h.may_run(MONO, read=True)
    assert not h.may_run(MONO, read=False)
    assert h.succeeded(MONO + 1, WALL + 1, read=True) is None
    assert not h.healthy
    assert not h.needs_reconnect
    assert h.succeeded(MONO + 5, WALL + 5, read=False) == 5.0


def test_a_summary_is_due_once_per_interval_while_down() -> None:
    h = health()
    assert not h.summary_due(MONO + 1000)
    h.failed(LOST, MONO, WALL)
    assert not h.summary_due(MONO + 1)
    assert h.summary_due(MONO + SUMMARY_INTERVAL_S)
    assert not h.summary_due(MONO + SUMMARY_INTERVAL_S + 1)
    assert h.summary_due(MONO + 2 * SUMMARY_INTERVAL_S)


def test_view_is_plain_data() -> None:
    h = health()
    h.failed(LOST, MONO, WALL + 3)
    view = h.view(MONO + 2)
    assert view["healthy"] is False and view["since"] == WALL + 3
    assert view["last_error"] == "connection lost: connection already closed"
    assert view["down_s"] == 2.0 and view["reconnects"] == 0


# -- classification of real driver errors -------------------------------------------------------
def sqlite_error(*statements: str) -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    try:
        for sql in statements:
            conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("no error")


def test_sqlite_full_is_a_storage_problem_but_bad_sql_is_not() -> None:
    full = sqlite_error(
        "PRAGMA max_page_count = 2",
        "CREATE TABLE t (b BLOB)",
        "INSERT INTO t VALUES (zeroblob(100000))",
    )
    problem = classify(full, "sqlite")
    assert problem is not None and problem.reason == "disk full" and problem.reads_work
    wrapped = peewee.OperationalError(full, *full.args)  # as peewee re-raises it
    assert classify(wrapped, "sqlite") == problem
    assert classify(sqlite_error("SELEC 1"), "sqlite") is None
    unique = sqlite_error(
        "CREATE TABLE u (x UNIQUE)", "INSERT INTO u VALUES (1)", "INSERT INTO u VALUES (1)"
    )
    assert classify(unique, "sqlite") is None
    closed = peewee.InterfaceError("Error, database connection not opened.")
    assert classify(closed, "sqlite") == StorageProblem(
        "connection lost", "Error, database connection not opened.", True, False
    )


def test_postgresql_connection_errors_are_storage_problems() -> None:
    closed = psycopg.InterfaceError("connection already closed")
    assert classify(peewee.InterfaceError(closed, *closed.args), "postgresql") == LOST
    gone = psycopg.OperationalError("server closed the connection unexpectedly\n\tThis …")
    problem = classify(peewee.OperationalError(gone, *gone.args), "postgresql")
    assert problem == StorageProblem(
        "connection lost", "server closed the connection unexpectedly", True, False
    )
    assert classify(psycopg.ProgrammingError("syntax error"), "postgresql") is None
    assert classify(ValueError("not a database error"), "postgresql") is None


def test_postgresql_ending_a_session_is_a_lost_connection_and_refusing_one_is_not() -> None:
    # psycopg 3 reads the server's last word before the socket closes: a restart says 57P01.
    ended = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    assert classify(peewee.OperationalError(ended, *ended.args), "postgresql") == StorageProblem(
        "connection lost", "terminating connection due to administrator command", True, False
    )
    starting = psycopg.errors.CannotConnectNow("the database system is starting up")
    problem = classify(peewee.OperationalError(starting, *starting.args), "postgresql")
    assert problem is not None and problem.reason == "server shutting down or starting"
    full = psycopg.errors.DiskFull("could not extend file")
    problem = classify(peewee.OperationalError(full, *full.args), "postgresql")
    assert problem is not None and problem.reason == "disk full"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unrelated_exceptions_are_not_storage_problems(backend: str) -> None:
    assert classify(KeyError("x"), backend) is None


def test_a_storage_problem_behind_a_later_error_is_found() -> None:
    full = sqlite_error(
        "PRAGMA max_page_count = 2",
        "CREATE TABLE t (b BLOB)",
        "INSERT INTO t VALUES (zeroblob(100000))",
    )
    try:
        try:
            raise full
        except sqlite3.Error:
            raise peewee.OperationalError("cannot rollback - no transaction is active") from None
    except peewee.OperationalError as masked:
        masked.__context__ = full  # as when peewee's ROLLBACK fails after SQLite rolled back
        problem = classify(masked, "sqlite")
    assert problem is not None and problem.reason == "disk full"

"""Storage contract tests, written once and run against SQLite and PostgreSQL (`database_url`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import peewee
import pytest

from models.db import database_from_url, redact_url
from models.migrations import MIGRATIONS, latest_version, migrate
from models.store import ClientRecord, KeyRecord, Store
from tests.support import ROOT


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(database_url, tmp_path)
    s.open()
    yield s
    s.close()


def client(id_: int, name: str | None = None, **changes: object) -> ClientRecord:
    record = ClientRecord(
        id=id_,
        name=name or f"worker-{id_}",
        role="worker",
        host="build-01",
        enabled=True,
        tags=["linux"],
        slots=2,
        first_seen=1_700_000_000.25,
        last_seen=1_700_000_100.5,
        info={"pid": id_, "version": "0.1.0"},
    )
    for field, value in changes.items():
        setattr(record, field, value)
    return record


def key(key_id: str, role: str = "worker") -> KeyRecord:
    return KeyRecord(key_id, role, f"{role} key", "ab" * 32, 1_700_000_000.0, False)


# -- migrations --------------------------------------------------------------------------------


def test_open_migrates_to_latest_and_is_idempotent(store: Store) -> None:
    assert latest_version() == MIGRATIONS[-1][0] >= 1
    assert store.call(migrate, store.db) == latest_version()
    assert store.call(migrate, store.db) == latest_version()
    assert store.call(store.db.table_exists, "client")
    assert store.call(store.db.table_exists, "api_key")
    rows = store.call(lambda: store.db.execute_sql("SELECT version FROM schema_version").fetchall())
    assert [tuple(r) for r in rows] == [(latest_version(),)]


def test_reopen_keeps_version(database_url: str, tmp_path: Path) -> None:
    for _ in range(2):
        s = Store(database_url, tmp_path)
        assert s.open() == latest_version()
        s.close()


def test_newer_database_is_refused(store: Store, database_url: str, tmp_path: Path) -> None:
    store.call(store.db.execute_sql, "UPDATE schema_version SET version = 999")
    store.close()
    newer = Store(database_url, tmp_path)
    with pytest.raises(RuntimeError, match="schema version 999 is newer"):
        newer.open()
    with pytest.raises(RuntimeError, match="not open"):
        newer.load_clients()  # a failed open leaves no thread or connection behind


# -- clients -----------------------------------------------------------------------------------


def test_save_then_load_round_trips_every_field(store: Store) -> None:
    records = [
        client(1),
        client(
            2,
            "Ψ-capteur-été-🚀",
            role="hardware",
            host="",
            enabled=False,
            tags=["gpu", "ünïcode", "a,b"],
            slots=0,
            first_seen=None,
            last_seen=None,
            info={"devices": [{"port": "/dev/ttyUSB0", "baud": 115200}], "note": "tab\there\n"},
        ),
        client(3, 'quote "and" back\\slash', tags=[], info={}),
        client(4, schedule="mon-fri 09:00-19:00, 22:00-06:00"),  # sleep schedule (migration 11)
    ]
    store.save_clients(records)
    assert store.load_clients() == records


def test_save_upserts_existing_and_new_in_one_call(store: Store) -> None:
    store.save_clients([client(1), client(2)])
    changed = client(2, enabled=False, last_seen=1_700_000_999.0, info={"pid": 7})
    store.save_clients([changed, client(3)])
    assert store.load_clients() == [client(1), changed, client(3)]


def test_save_of_no_rows_is_a_no_op(store: Store) -> None:
    store.save_clients([])
    assert store.load_clients() == []


def test_load_is_ordered_by_id(store: Store) -> None:
    store.save_clients([client(5), client(2), client(9)])
    assert [r.id for r in store.load_clients()] == [2, 5, 9]


def test_delete_client(store: Store) -> None:
    store.save_clients([client(1), client(2)])
    store.delete_client(1)
    store.delete_client(42)  # unknown id: nothing to do
    assert [r.id for r in store.load_clients()] == [2]


def test_names_are_unique_and_a_failed_save_changes_nothing(store: Store) -> None:
    store.save_clients([client(1, "alpha")])
    with pytest.raises(peewee.IntegrityError):
        store.save_clients([client(2, "beta"), client(3, "alpha")])
    assert store.load_clients() == [client(1, "alpha")]
    store.save_clients([client(2, "beta")])  # the store is still usable
    assert [r.name for r in store.load_clients()] == ["alpha", "beta"]


def test_reopened_store_sees_the_data(store: Store, database_url: str, tmp_path: Path) -> None:
    store.save_clients([client(1), client(2, tags=["x"])])
    store.insert_key(key("k1"))
    store.close()
    again = Store(database_url, tmp_path)
    again.open()
    try:
        assert again.load_clients() == [client(1), client(2, tags=["x"])]
        assert again.load_keys() == [key("k1")]
    finally:
        again.close()


# -- keys --------------------------------------------------------------------------------------


def test_keys_insert_load_revoke(store: Store) -> None:
    store.insert_key(key("k1"))
    store.insert_key(key("k2", role="api"))
    assert store.load_keys() == [key("k1"), key("k2", role="api")]
    assert store.revoke_key("k2") is True
    assert store.revoke_key("nope") is False
    loaded = {k.key_id: k for k in store.load_keys()}
    assert loaded["k2"].revoked is True
    assert loaded["k1"].revoked is False


def test_duplicate_key_id_is_refused(store: Store) -> None:
    store.insert_key(key("k1"))
    with pytest.raises(peewee.IntegrityError):
        store.insert_key(key("k1"))


# -- the DB thread -----------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_call_propagates_exceptions_and_the_store_survives(store: Store) -> None:
    def fail(x: int) -> int:
        raise Boom(f"boom {x}")

    with pytest.raises(Boom, match="boom 3"):
        store.call(fail, 3)
    assert store.call(lambda a, b: a + b, 2, 3) == 5
    assert store.load_clients() == []


def test_call_runs_transactions_in_the_db_thread(store: Store) -> None:
    def save_twice_then_fail() -> None:
        with store.db.atomic():
            store.save_clients([client(1)])  # nested: runs inline in the DB thread
            raise Boom("roll back")

    with pytest.raises(Boom):
        store.call(save_twice_then_fail)
    assert store.load_clients() == []


def test_many_greenlets_at_once_are_serialised(store: Store) -> None:
    def work(n: int) -> int:
        store.save_clients([client(n), client(1000 + n, last_seen=float(n))])
        return len(store.load_clients())

    jobs = [gevent.spawn(work, n) for n in range(1, 51)]
    gevent.joinall(jobs, timeout=50, raise_error=True)
    assert all(j.successful() for j in jobs)
    assert len(store.load_clients()) == 100


def test_hub_keeps_serving_during_a_big_save(store: Store) -> None:
    records = [client(i) for i in range(1, 50_001)]
    ticks: list[float] = []

    def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.005)

    ticking = gevent.spawn(ticker)
    try:
        gevent.sleep(0.02)
        started = time.monotonic()
        store.save_clients(records)
        finished = time.monotonic()
    finally:
        ticking.kill()
    during = [t for t in ticks if started < t < finished]
    # Behaviour, not timing: the hub ran other greenlets while the save was in progress.
    assert len(during) >= 3, (len(during), finished - started)
    assert len(store.load_clients()) == 50_000


def test_call_before_open_and_close_twice(tmp_path: Path) -> None:
    s = Store(None, tmp_path)
    with pytest.raises(RuntimeError, match="not open"):
        s.load_clients()
    s.open()
    s.close()
    s.close()
    assert (tmp_path / "farmhand.db").exists()


# -- URLs (backend-independent) ----------------------------------------------------------------


def test_database_from_url(tmp_path: Path) -> None:
    default = database_from_url(None, tmp_path / "data")
    assert isinstance(default, peewee.SqliteDatabase)
    assert default.database == str(tmp_path / "data" / "farmhand.db")
    assert database_from_url("sqlite:///:memory:", tmp_path).database == ":memory:"
    pg = database_from_url("postgres://u:p%40ss@db.example:5433/farm", tmp_path)
    assert isinstance(pg, peewee.PostgresqlDatabase)
    assert pg.database == "farm"
    assert pg.connect_params == {
        "user": "u",
        "password": "p@ss",
        "host": "db.example",
        "port": 5433,
        "connect_timeout": 5,  # a reconnect must not hang the storage thread for minutes
    }
    tuned = database_from_url("postgresql://h/farm?sslmode=require&connect_timeout=9", tmp_path)
    assert tuned.connect_params == {"host": "h", "sslmode": "require", "connect_timeout": "9"}
    capped = database_from_url(f"sqlite:///{tmp_path}/c.db?max_page_count=100", tmp_path)
    assert capped.database.endswith("/c.db")
    assert dict(capped._pragmas)["max_page_count"] == "100"
    assert dict(capped._pragmas)["journal_mode"] == "wal"
    with pytest.raises(ValueError, match="bad SQLite pragma"):
        database_from_url("sqlite:///x.db?journal_mode=wal;drop", tmp_path)
    for bad in ("mysql://x/y", "sqlite://relative.db", "postgresql://host/", "farmhand.db"):
        with pytest.raises(ValueError, match="unsupported database URL"):
            database_from_url(bad, tmp_path)


def test_a_postgresql_url_without_the_driver_is_one_clear_error(tmp_path: Path) -> None:
    # psycopg is the `postgres` extra: a plain `pip install farmhand` does not have it.
    hide_driver = "import sys; sys.modules['psycopg'] = None; "
    run = "from farmhand.master.main import main; sys.exit(main(sys.argv[1:]))"
    argv = ["--port", "0", "--data-dir", str(tmp_path), "--db", "postgresql://127.0.0.1:1/farm"]
    result = subprocess.run(
        [sys.executable, "-c", hide_driver + run, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'farmhand[postgres]'" in lines[0], result.stderr


def test_redact_url() -> None:
    assert redact_url("postgresql://u:secret@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert redact_url(None) == ""
    assert "secret" not in Store("postgresql://u:secret@h/d", Path("/nonexistent")).description

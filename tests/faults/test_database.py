"""Fault scenarios for the database under a running master (issue 10, finding 2).

PostgreSQL is restarted, stopped and started again under a real master process (its own server,
so no other test is disturbed); SQLite runs out of room, either at a page limit set in its URL
(`?max_page_count=N`, works everywhere) or on a small tmpfs (needs root and mount(2)). Each time:
writes get a clear error (-32603, reason `database_unavailable`) and never a false OK, reads keep
working, nothing queued is lost, `status`, the console and /metrics show the outage, the log
does not flood, and SIGTERM exits 0 once everything is stored (3 when it could not be).
"""

from __future__ import annotations

import itertools
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import psycopg
import pytest

from dashboard.app import create_app
from dashboard.runtime import Dashboard, Settings
from dashboard.testclient import WsgiClient
from farmhand.master.audit import AuditLog
from farmhand.master.devices.readings import ReadingSink
from farmhand.master.durability import Durability
from farmhand.master.events import EventBus
from farmhand.master.jobs.journal import Journal
from farmhand.master.registry import ClientRegistry
from farmhand.master.saver import ClientSaver
from farmhand.options import MasterAddress
from models.auditstore import AuditStore
from models.devicestore import DeviceStore
from models.health import DatabaseUnavailable
from models.jobstore import JobStore
from models.store import ClientRecord, Store
from protocol.errors import RpcError
from tests.pgserver import PostgresServer
from tests.support import ConsoleClient, MasterProcess, RpcClient, agent, wait_for

pytestmark = pytest.mark.timeout(90)

UNAVAILABLE = "database_unavailable"
EXIT_UNSAVED = 3  # master.py's documented status when it stopped with changes it could not store
_names = itertools.count(1)


# -- helpers -----------------------------------------------------------------------------------
def is_unavailable(reply: dict[str, Any]) -> bool:
    """A clear "the database is unavailable" error, not an internal error or a false OK."""
    error = reply.get("error")
    return bool(
        error and error["code"] == -32603 and error.get("data", {}).get("reason") == UNAVAILABLE
    )


def database_of(api: RpcClient) -> dict[str, Any]:
    return api.call("status")["database"]


def down(api: RpcClient) -> dict[str, Any] | None:
    """The `database` part of `status` while it says down, else None."""
    database = database_of(api)
    return None if database["healthy"] else database


def submit(api: RpcClient, name: str, frames: str = "1-3") -> dict[str, Any]:
    return api.request("jobs.submit", name=name, argv=["true"], frames=frames)


def write_config(tmp_path: Path, **settings: float) -> Path:
    path = tmp_path / "master.toml"
    path.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
    return path


def metrics_of(master: MasterProcess) -> str:
    dash = Dashboard(Settings(master=MasterAddress(master.host, master.port)))
    dash.start()
    try:
        assert dash.master.wait_connected(10)
        return WsgiClient(create_app(dash)).get("/metrics").text
    finally:
        dash.stop()


def new_log_lines(master: MasterProcess, since: int) -> list[str]:
    return master.log().splitlines()[since:]


def wait_in_hub(condition: Any, timeout: float = 15.0, what: str = "condition") -> None:
    """wait_for for in-process tests: gevent.sleep lets the Store's recovery greenlet run."""
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {what}")):
        while not condition():
            gevent.sleep(0.02)


def count_runs(runs: list[int]) -> Any:
    def statement() -> int:
        runs.append(1)
        return len(runs)

    return statement


# -- PostgreSQL --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A server of our own: these tests stop and restart it."""
    with PostgresServer("farmhand_faults") as server:
        yield server


@pytest.fixture
def pg_url(pg: PostgresServer) -> str:
    if not pg.running:
        pg.resume()
    return pg.create_database(f"fault_{next(_names)}")


def pg_rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = psycopg.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def pg_client_enabled(url: str, name: str) -> bool | None:
    rows = pg_rows(url, 'SELECT enabled FROM "client" WHERE name = %s', name)
    return bool(rows[0][0]) if rows else None


@pytest.mark.postgres
def test_store_reconnects_after_a_postgresql_restart(
    pg: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    store = Store(pg_url, tmp_path)
    store.open()
    try:
        assert store.load_clients() == []
        pg.restart()
        with pytest.raises(DatabaseUnavailable) as caught:
            store.load_clients()
        assert caught.value.attempted and caught.value.problem.reason == "connection lost"
        assert not store.health.healthy
        runs: list[int] = []
        with pytest.raises(DatabaseUnavailable) as caught:
            store.call(count_runs(runs))  # refused at once: the backoff has not passed
        assert not caught.value.attempted and runs == []
        wait_in_hub(lambda: store.health.healthy, what="the recovery probe to reconnect")
        assert store.load_clients() == []
        view = store.health_view()
        assert view["reconnects"] == 1 and view["backend"] == "postgresql"
    finally:
        store.close()


@pytest.mark.postgres
def test_postgresql_restart_under_a_running_master(
    pg: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    master = MasterProcess(tmp_path / "var", "--db", pg_url)
    try:
        with RpcClient(master.port) as api, agent(master.port, "w1"):
            assert "result" in submit(api, "before")
            pg.restart()
            replies: list[dict[str, Any]] = []

            def submitted() -> bool:
                replies.append(submit(api, "after"))
                return "result" in replies[-1]

            wait_for(submitted, timeout=20, interval=0.1, what="jobs.submit to work again")
            refused = [reply for reply in replies if "error" in reply]
            assert refused, "the restart cut the connection: the first submit must fail"
            assert all(is_unavailable(reply) for reply in refused), refused
            names = [job["name"] for job in api.call("jobs.list")["jobs"]]
            assert sorted(names) == ["after", "before"]  # a refused submit added nothing

            reply = api.request("clients.disable", select="w1")
            assert reply["result"]["changed"] == ["w1"]
            assert pg_client_enabled(pg_url, "w1") is False  # stored before the OK
            database = database_of(api)
            assert database["healthy"] is True
            assert database["reconnects"] >= 1
        assert master.stop() == 0
    finally:
        master.kill()
    assert sorted(r[0] for r in pg_rows(pg_url, 'SELECT name FROM "job"')) == ["after", "before"]
    assert pg_client_enabled(pg_url, "w1") is False
    assert "Traceback" not in master.log()


@pytest.mark.postgres
def test_postgresql_down_then_back(pg: PostgresServer, pg_url: str, tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "var", "--db", pg_url)
    try:
        with RpcClient(master.port) as api, agent(master.port, "w1"):
            assert "result" in submit(api, "before")
            assert database_of(api)["healthy"] is True
            assert "farmhand_database_up 1" in metrics_of(master)
            pg.halt()
            lines_before = len(master.log().splitlines())

            reply = submit(api, "while-down")
            assert is_unavailable(reply), reply
            assert api.call("jobs.list")["total"] == 1  # nothing half-added

            database = wait_for(lambda: down(api), what="status to show the database down")
            assert database["backend"] == "postgresql"
            assert database["url"].startswith("postgresql://") and "@127.0.0.1:" in database["url"]
            assert database["last_error"] and database["since"]

            # An operator write is refused and changes nothing (not a false OK).
            reply = api.request("clients.disable", select="w1")
            assert is_unavailable(reply), reply
            assert reply["error"]["data"]["changed"] is False
            assert api.call("clients.list", select="w1")["clients"][0]["enabled"] is True

            # An agent coming online is kept in memory and stored after the reconnect.
            with agent(master.port, "w2"):
                wait_for(lambda: database_of(api)["pending_writes"] >= 1, what="a pending write")
                with ConsoleClient(master.port) as console:
                    text = console.command("status")
                assert "DOWN" in text, text
                assert "farmhand_database_up 0" in metrics_of(master)
                # Let the saver and the reconnect loop fail a few times: no flood.
                wait_for(
                    lambda: database_of(api)["failed_attempts"] >= 3,
                    timeout=20,
                    what="a few failed reconnects",
                )
                outage = new_log_lines(master, lines_before)
                assert not [line for line in outage if "Traceback" in line], outage
                assert len(outage) < 40, "\n".join(outage)

                pg.resume()
                wait_for(
                    lambda: database_of(api)["healthy"], timeout=20, what="the database back up"
                )
                wait_for(lambda: database_of(api)["pending_writes"] == 0, what="pending stored")
                assert pg_client_enabled(pg_url, "w2") is True

                assert "result" in submit(api, "after")
                reply = api.request("clients.disable", select="w1")
                assert reply["result"]["changed"] == ["w1"]
                assert pg_client_enabled(pg_url, "w1") is False
                assert "farmhand_database_up 1" in metrics_of(master)
        assert master.stop() == 0
    finally:
        master.kill()
    assert sorted(r[0] for r in pg_rows(pg_url, 'SELECT name FROM "job"')) == ["after", "before"]
    assert "Traceback" not in master.log()


@pytest.mark.postgres
def test_sigterm_waits_for_the_database_to_come_back(
    pg: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, shutdown_timeout_s=20)
    master = MasterProcess(tmp_path / "var", "--db", pg_url, "--config", str(config))
    try:
        with RpcClient(master.port) as api:
            # Speak first: a peer silent for the master's dialect wait gets the console.
            assert database_of(api)["healthy"] is True
            pg.halt()
            with agent(master.port, "late"):
                wait_for(lambda: database_of(api)["pending_writes"] >= 1, what="a pending write")
                wait_for(lambda: down(api), what="the saver to find the database down")
        master.signal(signal.SIGTERM)
        wait_for(lambda: "waiting up to" in master.log(), what="the master to wait for it")
        pg.resume()
        assert master.proc.wait(30) == 0
    finally:
        master.kill()
    assert pg_client_enabled(pg_url, "late") is True
    assert "Traceback" not in master.log()


@pytest.mark.postgres
def test_sigterm_with_the_database_gone_says_what_was_not_stored(
    pg: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, shutdown_timeout_s=1)
    master = MasterProcess(tmp_path / "var", "--db", pg_url, "--config", str(config))
    try:
        with RpcClient(master.port) as api:
            # Speak first: a peer silent for the master's dialect wait gets the console.
            assert database_of(api)["healthy"] is True
            pg.halt()
            with agent(master.port, "unsaved-1"):
                wait_for(lambda: database_of(api)["pending_writes"] >= 1, what="a pending write")
                wait_for(lambda: down(api), what="the saver to find the database down")
        assert master.stop(timeout=20) == EXIT_UNSAVED
    finally:
        master.kill()
    log = master.log()
    assert "Traceback" not in log
    assert "could not be stored" in log and "unsaved-1" in log


# -- SQLite ------------------------------------------------------------------------------------
def sqlite_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def check_sqlite_outage(
    master: MasterProcess, db_path: Path, fill: Any, free: Any, big_frames: str
) -> None:
    """The SQLite scenario: full → clear errors, reads served, pending kept → freed → stored."""
    with RpcClient(master.port) as api, agent(master.port, "h1", role="hardware") as h1:
        assert "result" in submit(api, "before")
        h1.call("reading", sensor="cellar", kind="temperature", value=12.5, unit="C")
        wait_for(lambda: database_of(api)["pending_writes"] == 0, what="the reading stored")
        fill()

        reply = submit(api, "too-big", frames=big_frames)
        assert is_unavailable(reply), reply
        database = database_of(api)
        assert database["healthy"] is False and database["backend"] == "sqlite"
        assert "full" in database["last_error"]

        # Reads keep working: from memory and from the database.
        assert api.call("jobs.list")["total"] == 1
        assert api.call("clients.list", select="h1")["clients"][0]["online"] is True
        assert api.call("readings.query", sensor="cellar")["readings"]
        reply = api.request("clients.disable", select="h1")
        assert is_unavailable(reply) and reply["error"]["data"]["changed"] is False, reply

        # Queued writes wait in memory.
        for value in (13.0, 13.5):
            h1.call("reading", sensor="cellar", kind="temperature", value=value, unit="C")
        with agent(master.port, "w2"):
            wait_for(lambda: database_of(api)["pending_writes"] >= 2, what="pending writes")
            free()
            wait_for(lambda: database_of(api)["healthy"], timeout=20, what="the database back")
            wait_for(lambda: database_of(api)["pending_writes"] == 0, what="pending stored")
            values = [r[0] for r in sqlite_rows(db_path, 'SELECT "value" FROM "reading"')]
            assert sorted(values) == [12.5, 13.0, 13.5]
            assert sqlite_rows(db_path, "SELECT enabled FROM client WHERE name = 'w2'") == [(1,)]
            assert "result" in submit(api, "fits-now", frames=big_frames)
            reply = api.request("clients.disable", select="h1")
            assert reply["result"]["changed"] == ["h1"]
            assert sqlite_rows(db_path, "SELECT enabled FROM client WHERE name = 'h1'") == [(0,)]
    assert master.stop() == 0
    assert "Traceback" not in master.log()
    names = sorted(r[0] for r in sqlite_rows(db_path, "SELECT name FROM job"))
    assert names == ["before", "fits-now"]
    assert sqlite_rows(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_store_refuses_writes_at_the_sqlite_page_limit_and_recovers(tmp_path: Path) -> None:
    db_path = tmp_path / "farmhand.db"
    store = Store(f"sqlite:///{db_path}?max_page_count=200", tmp_path)
    store.open()
    filler = sqlite3.connect(db_path, timeout=10)
    try:
        filler.execute("CREATE TABLE filler (b BLOB)")
        filler.execute("INSERT INTO filler VALUES (zeroblob(?))", (300 * 4096,))
        filler.commit()
        grow = "INSERT INTO api_key VALUES (?, 'api', 'k', ?, 0, 0, '', 'admin')"
        with pytest.raises(DatabaseUnavailable) as caught:
            store.call(store.db.execute_sql, grow, ("k0", "x" * 20_000))
        assert caught.value.problem.reason == "disk full" and caught.value.attempted
        runs: list[int] = []
        with pytest.raises(DatabaseUnavailable):
            store.call(count_runs(runs))  # refused without touching the database
        assert runs == []
        assert store.read(count_runs(runs)) == 1  # reads go on
        count = "SELECT COUNT(*) FROM filler"
        assert store.read(lambda: store.db.execute_sql(count).fetchone()[0]) == 1
        assert not store.health.healthy  # a read is no proof of recovery
        filler.execute("DROP TABLE filler")
        filler.commit()
        wait_in_hub(lambda: store.health.healthy, what="the probe to see free pages")
        store.call(store.db.execute_sql, grow, ("k1", "x" * 20_000))
        assert [k.key_id for k in store.load_keys()] == ["k1"]
        assert store.health_view()["reconnects"] == 0  # SQLite kept its connection
    finally:
        filler.close()
        store.close()


def test_a_write_whose_commit_fails_says_it_is_kept_in_memory(tmp_path: Path) -> None:
    """The barrier's other half: the database fails after the gate let a write through."""
    db_path = tmp_path / "farmhand.db"
    store = Store(f"sqlite:///{db_path}?max_page_count=200", tmp_path)
    store.open()
    registry = ClientRegistry(EventBus())
    saver = ClientSaver(registry, store, interval_s=0.2)
    journal = Journal(JobStore(store))
    readings = ReadingSink(DeviceStore(store), EventBus())
    audit = AuditLog(AuditStore(store), retention_days=0, wall=time.time)
    durability = Durability(store, registry, saver, journal, readings, audit, mono=time.monotonic)
    journal.start()
    filler = sqlite3.connect(db_path, timeout=10)
    try:
        # 300 clients with 4 KB of info each need new pages: more than the limit leaves.
        records = [
            ClientRecord(i, f"c{i}", "worker", "h", True, [], 1, None, None, {"x": "y" * 4000})
            for i in range(1, 301)
        ]
        registry.load(records)
        filler.execute("CREATE TABLE filler (b BLOB)")
        filler.execute("INSERT INTO filler VALUES (zeroblob(?))", (300 * 4096,))
        filler.commit()
        assert store.health.healthy  # nobody has noticed yet: the gate lets the write through
        with pytest.raises(RpcError) as caught:
            durability.call("clients.disable", True, lambda: registry.mark_dirty(records))
        error = caught.value.to_dict()
        assert error["code"] == -32603 and error["data"]["reason"] == UNAVAILABLE
        assert error["data"]["changed"] is True  # applied in memory, stored once back
        assert "disk full" in error["message"]
        assert durability.pending() == 300
        # Now the gate refuses at once, changing nothing.
        ran: list[int] = []
        with pytest.raises(RpcError) as caught:
            durability.call("clients.disable", True, count_runs(ran))
        assert caught.value.to_dict()["data"]["changed"] is False and ran == []
        assert durability.call("clients.list", False, lambda: "reads still answer") == (
            "reads still answer"
        )
        filler.execute("DROP TABLE filler")
        filler.commit()
        wait_in_hub(lambda: store.health.healthy, what="the database back")
        assert saver.run_once() == 300 and durability.pending() == 0
        assert len(store.load_clients()) == 300
    finally:
        journal.stop()
        filler.close()
        store.close()


def test_sqlite_at_its_page_limit(tmp_path: Path) -> None:
    db_path = tmp_path / "db" / "farmhand.db"
    url = f"sqlite:///{db_path}?max_page_count=400"

    def fill() -> None:  # from another connection, which has no page limit
        conn = sqlite3.connect(db_path, timeout=10)
        conn.execute("CREATE TABLE filler (b BLOB)")
        conn.execute("INSERT INTO filler VALUES (zeroblob(?))", (500 * 4096,))
        conn.commit()
        conn.close()

    def free() -> None:
        conn = sqlite3.connect(db_path, timeout=10)
        conn.execute("DROP TABLE filler")
        conn.commit()
        conn.close()

    master = MasterProcess(tmp_path / "var", "--db", url)
    try:
        check_sqlite_outage(master, db_path, fill, free, big_frames="1-3000")
    finally:
        master.kill()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs mounted for this test (skipped where mount(2) is not allowed)."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_sqlite_on_a_full_disk(small_tmpfs: Path, tmp_path: Path) -> None:
    db_path = small_tmpfs / "farmhand.db"
    filler = small_tmpfs / "filler"

    def fill() -> None:
        with filler.open("wb", buffering=0) as handle:
            chunk = b"\0" * 65536
            try:
                while True:
                    handle.write(chunk)
            except OSError:
                pass  # ENOSPC: the disk is full

    def free() -> None:
        filler.unlink()

    master = MasterProcess(tmp_path / "var", "--db", f"sqlite:///{db_path}")
    try:
        check_sqlite_outage(master, db_path, fill, free, big_frames="1-5000")
    finally:
        master.kill()

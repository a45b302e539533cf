"""Standby masters on the suite's real PostgreSQL (issue 16): two master.py processes on one
database, real workers given both addresses. kill -9 of the active master under load → the
standby takes over within 15 s, the workers move, nothing acknowledged is lost and no task runs
twice (the tasks' own ledger says so); the killed master, restarted, stands by. SIGSTOP of the
active master past its lease → the standby takes over; the old one, woken, writes nothing (a
trigger records which master's session wrote what) and steps down. And the fence itself, in
process: a write after a takeover fails and stores nothing."""

from __future__ import annotations

import itertools
import queue
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from dashboard.app import create_app
from dashboard.runtime import Dashboard, Settings
from dashboard.testclient import WsgiClient
from farmhand.client import Client, MasterUnavailable, RpcError
from farmhand.options import MasterAddress, MasterList
from models.lease import LeaseLost, LeaseStore
from models.store import ClientRecord, Store
from tests.faults.harness import free_port, ledger_argv, read_ledger
from tests.faults.proxy import PartitionProxy
from tests.pgserver import PostgresServer
from tests.support import ConsoleClient, Program, RpcClient, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

TAKEOVER_LIMIT_S = 15.0
_names = itertools.count(1)


class Master(Program):
    """master.py on a fixed port; its stdout lines are read in a thread."""

    def __init__(self, root: Path, name: str, port: int, url: str, *flags: str) -> None:
        self.name = name
        self.port = port
        data_dir = root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            "master.py",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--db",
            url,
            "--log-level",
            "info",
            *flags,
            log_path=data_dir / "master.log",
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace"))

    def wait_line(self, pattern: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"{self.name}: no {pattern!r} line\n{self.log()}") from None
            if re.search(pattern, line):
                return line


def start_pair(root: Path, url_a: str, url_b: str, *flags: str) -> tuple[Master, Master]:
    a = Master(root, "a", free_port(), url_a, *flags)
    a.wait_line("listening on")
    b = Master(root, "b", free_port(), url_b, *flags)
    b.wait_line("standing by")
    return a, b


def addresses(*masters: Master) -> str:
    return ",".join(f"127.0.0.1:{m.port}" for m in masters)


def master_view(port: int) -> dict[str, Any]:
    with RpcClient(port) as api:
        view: dict[str, Any] = api.call("status")["master"]
        return view


def refuses_connections(port: int) -> bool:
    try:
        RpcClient(port, timeout=1.0).close()
    except OSError:
        return True
    return False


def start_worker(root: Path, name: str, masters: str) -> Program:
    return Program(
        "worker.py",
        "--master",
        masters,
        "--name",
        name,
        "--slots",
        "3",
        "--work-dir",
        str(root / "work" / name),
        "--log-level",
        "info",
        log_path=root / f"{name}.log",
    )


def online_on(port: int, names: list[str]) -> bool:
    try:
        with RpcClient(port) as api:
            rows = api.call("clients.list", select=" ".join(names))["clients"]
    except OSError:
        return False
    return sum(row["online"] for row in rows) == len(names)


class Submitter(threading.Thread):
    """Submits ledger jobs through farmhand.client with both addresses; keeps the acked ones."""

    def __init__(self, masters: str, ledger: Path) -> None:
        super().__init__(daemon=True)
        self.client = Client(masters, reconnect_s=1.0, timeout=10.0)
        self.argv = ledger_argv(ledger, 0.05)
        self.acked: dict[int, int] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                job = self.client.call("jobs.submit", name="ledger", argv=self.argv, frames="1-3")
                self.acked[job["job_id"]] = job["tasks"]
            except (MasterUnavailable, RpcError, OSError):
                self.stopping.wait(0.1)
                continue
            self.stopping.wait(0.03)
        self.client.close()


def dashboard_metrics(*masters: Master) -> str:
    listed = MasterList(MasterAddress("127.0.0.1", m.port) for m in masters)
    dash = Dashboard(Settings(master=listed))
    dash.start()
    try:
        assert dash.master.wait_connected(10), dash.master.last_error
        return WsgiClient(create_app(dash)).get("/metrics").text
    finally:
        dash.stop()


def all_completed(port: int) -> dict[int, dict[str, Any]] | None:
    with RpcClient(port) as api:
        jobs = api.call("jobs.list", limit=10_000)["jobs"]
    if any(job["status"] != "completed" for job in jobs):
        return None
    return {job["id"]: job for job in jobs}


# -- the fence, in process -------------------------------------------------------------------
def test_a_write_after_a_takeover_fails_and_stores_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"standby_fence_{next(_names)}")
    store = Store(url, tmp_path)
    store.open()
    first, second = LeaseStore(url, tmp_path), LeaseStore(url, tmp_path)
    try:
        generation = first.try_take_over("first", 0.5)
        assert generation == 1
        fenced: list[int] = []
        store.fence(generation, lambda: fenced.append(1))
        record = ClientRecord(1, "w1", "worker", "h", True, [], 1, 1.0, 1.0, {})
        store.save_clients([record])
        assert second.try_take_over("second", 5.0) is None  # held: unexpired, holder alive
        # The holder is alive (it holds the advisory lock) but stopped renewing: after 0.5 s
        # its lease has expired and the second takes over.
        took = wait_for(lambda: second.try_take_over("second", 5.0), timeout=10, what="expiry")
        assert took == 2
        changed = ClientRecord(1, "w1-renamed", "worker", "h", False, [], 1, 1.0, 2.0, {})
        with pytest.raises(LeaseLost):
            store.save_clients([changed])
        assert fenced == [1]
        with pytest.raises(LeaseLost):  # and every later write, at once
            store.delete_client(1)
        assert rows(url, 'SELECT name, enabled FROM "client"') == [("w1", True)]
        assert first.renew(generation, 5.0) is False
    finally:
        first.close()
        second.close()
        store.close()


def test_a_holder_whose_session_is_gone_is_taken_over_at_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"standby_lock_{next(_names)}")
    migrated = Store(url, tmp_path)
    migrated.open()
    migrated.close()
    first, second = LeaseStore(url, tmp_path), LeaseStore(url, tmp_path)
    try:
        assert first.try_take_over("first", 3600.0) == 1
        assert second.try_take_over("second", 3600.0) is None
        first.close()  # like kill -9: the session ends, PostgreSQL frees the advisory lock
        # (as soon as the server process of that session has exited: a moment later)
        took = wait_for(lambda: second.try_take_over("second", 3600.0), timeout=5, what="lock")
        assert took == 2  # an hour before the lease would have expired
        view = second.view()
        assert view is not None and view.holder == "second" and view.generation == 2
    finally:
        first.close()
        second.close()


# -- kill -9 under load, and the killed master restarted ------------------------------------
def test_kill_9_of_the_active_master_under_load(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"standby_kill_{next(_names)}")
    ledger = tmp_path / "ledger.txt"
    a, b = start_pair(tmp_path, url, url)
    programs: list[Program] = [a, b]
    try:
        assert master_view(a.port)["role"] == "active"
        assert refuses_connections(b.port)  # a standby holds no port open
        both = addresses(a, b)
        workers = [start_worker(tmp_path, f"w{n}", both) for n in (1, 2)]
        programs += workers
        wait_for(lambda: online_on(a.port, ["w1", "w2"]), timeout=30, what="workers on a")
        submitter = Submitter(both, ledger)
        submitter.start()
        wait_for(lambda: len(submitter.acked) >= 10, timeout=60, what="jobs acknowledged by a")
        wait_for(lambda: len(read_ledger(ledger)) >= 10, timeout=60, what="tasks run on a")

        killed_at = time.monotonic()
        a.kill()
        b.wait_line("listening on", timeout=TAKEOVER_LIMIT_S)
        took_s = time.monotonic() - killed_at
        assert took_s < TAKEOVER_LIMIT_S
        view = master_view(b.port)
        assert view["role"] == "active" and view["generation"] == 2 and view["last_takeover"]
        with ConsoleClient(b.port) as console:
            assert "role:        active, lease generation 2 held by" in console.command("status")
        metrics = dashboard_metrics(a, b)  # a dashboard given both finds b, and says so
        assert "farmhand_master_active 1" in metrics
        assert "farmhand_master_lease_generation 2" in metrics
        assert f'listen="127.0.0.1:{b.port}"' in metrics
        assert "farmhand_master_last_takeover_timestamp_seconds 1" in metrics
        wait_for(lambda: online_on(b.port, ["w1", "w2"]), timeout=30, what="workers on b")
        acked_by_a = len(submitter.acked)
        wait_for(lambda: len(submitter.acked) >= acked_by_a + 10, timeout=60, what="b acks")
        submitter.stopping.set()
        submitter.join(30)

        # The killed master, started again, is a standby now.
        again = Master(tmp_path, "a", a.port, url)
        programs.append(again)
        again.wait_line("standing by")
        assert refuses_connections(again.port)

        stored = wait_for(lambda: all_completed(b.port), timeout=120, what="every job done")
        runs = read_ledger(ledger)
        for job_id, tasks in submitter.acked.items():
            assert stored[job_id]["status"] == "completed", job_id
            assert all(runs[(job_id, index)] >= 1 for index in range(tasks)), job_id
        assert [key for key, count in runs.items() if count > 1] == []  # none ran twice
        print(f"takeover after kill -9 in {took_s:.2f} s; {len(submitter.acked)} jobs acked")
        assert "Traceback" not in b.log()
        assert again.stop() == 0  # a standby stops cleanly on SIGTERM
    finally:
        for program in programs:
            program.kill()


# -- SIGSTOP past the lease --------------------------------------------------------------------
WRITE_LOG_SQL = """
CREATE TABLE write_log (app text, tbl text, at float8);
CREATE FUNCTION log_write() RETURNS trigger AS $$
BEGIN
  INSERT INTO write_log VALUES (current_setting('application_name'), TG_TABLE_NAME,
                                EXTRACT(EPOCH FROM clock_timestamp()));
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""
WATCHED_TABLES = ("client", "job", "task", "audit_entry")


def watch_writes(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WRITE_LOG_SQL)
        for table in WATCHED_TABLES:
            conn.execute(
                f'CREATE TRIGGER log_{table} AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                "FOR EACH STATEMENT EXECUTE FUNCTION log_write()"
            )


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, params).fetchall())


def test_sigstop_past_the_lease_the_old_master_writes_nothing_and_steps_down(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"standby_stop_{next(_names)}")
    config = tmp_path / "master.toml"
    config.write_text("lease_s = 3.0\n")
    a, b = start_pair(
        tmp_path,
        f"{url}?application_name=master_a",
        f"{url}?application_name=master_b",
        "--config",
        str(config),
    )
    watch_writes(url)
    programs: list[Program] = [a, b]
    try:
        worker = start_worker(tmp_path, "w1", addresses(a, b))
        programs.append(worker)
        wait_for(lambda: online_on(a.port, ["w1"]), timeout=30, what="w1 on a")
        with RpcClient(a.port) as api:
            assert api.call("jobs.submit", name="on-a", argv=["true"], frames="1")["job_id"] == 1
        assert rows(url, "SELECT count(*) FROM write_log WHERE app = 'master_a'")[0][0] > 0

        late = RpcClient(a.port, timeout=30.0)  # a connection open before the freeze
        assert late.call("ping") == "pong"  # (and known to speak JSON-RPC, not the console)
        stopped_at = time.monotonic()
        a.signal(signal.SIGSTOP)
        b.wait_line("listening on", timeout=TAKEOVER_LIMIT_S)
        assert time.monotonic() - stopped_at < TAKEOVER_LIMIT_S
        (took_over,) = rows(url, 'SELECT acquired FROM "master_lease"')[0]
        with RpcClient(b.port) as api:
            assert api.call("jobs.submit", name="on-b", argv=["true"], frames="1")["job_id"] == 2

        # Queued while a sleeps: a write that a, woken, must not store.
        late.send_raw(
            b'{"jsonrpc":"2.0","id":1,"method":"jobs.submit",'
            b'"params":{"name":"from-a","argv":["true"],"frames":"1"}}\n'
        )
        a.signal(signal.SIGCONT)
        a.wait_line("standing by", timeout=30)  # stepped down, and a standby again
        try:
            reply = late.read_message()
            assert "error" in reply, reply  # never an OK for a write it could not store
        except (ConnectionError, OSError):
            pass  # or the connection was closed: also not an OK
        late.close()
        assert refuses_connections(a.port)
        assert re.search(r"stepping down: (another master took over|a write found)", a.log())
        assert "Traceback" not in a.log()

        written_by_a = rows(
            url, "SELECT tbl FROM write_log WHERE app = 'master_a' AND at >= %s", took_over
        )
        assert written_by_a == []
        assert [r[0] for r in rows(url, 'SELECT name FROM "job" ORDER BY id')] == ["on-a", "on-b"]
        assert master_view(b.port)["role"] == "active"
        # w1 stayed connected to the frozen master; now that it stepped down, w1 moves.
        wait_for(lambda: online_on(b.port, ["w1"]), timeout=30, what="w1 on b")

        # A clean stop hands over: b stores what it has, releases the lease, and a (the same
        # process, started over as a standby) takes over with everything b stored.
        assert b.stop(timeout=30) == 0
        a.wait_line("listening on", timeout=TAKEOVER_LIMIT_S)
        with RpcClient(a.port) as api:
            names = [job["name"] for job in api.call("jobs.list")["jobs"]]
        assert sorted(names) == ["on-a", "on-b"]
        assert master_view(a.port)["generation"] == 3
    finally:
        for program in programs:
            if program.proc.poll() is None:
                program.proc.send_signal(signal.SIGCONT)
            program.kill()


# -- the active master loses its database connections ------------------------------------------
def test_an_active_master_cut_from_the_database_is_taken_over_and_steps_down(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"standby_cut_{next(_names)}")
    a, b = start_pair(
        tmp_path, f"{url}?application_name=master_a", f"{url}?application_name=master_b"
    )
    programs: list[Program] = [a, b]
    try:
        worker = start_worker(tmp_path, "w1", addresses(a, b))
        programs.append(worker)
        wait_for(lambda: online_on(a.port, ["w1"]), timeout=30, what="w1 on a")
        cut_at = time.monotonic()
        (cut,) = rows(
            url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'master_a'",
        )[0]
        assert cut == 2  # the storage connection and the lease's
        b.wait_line("listening on", timeout=TAKEOVER_LIMIT_S)
        assert time.monotonic() - cut_at < TAKEOVER_LIMIT_S
        a.wait_line("standing by", timeout=30)  # reconnected, found the takeover, stepped down
        wait_for(lambda: online_on(b.port, ["w1"]), timeout=30, what="w1 on b")
        assert master_view(b.port)["generation"] == 2
        assert "Traceback" not in a.log() and "Traceback" not in b.log()
    finally:
        for program in programs:
            program.kill()


def test_an_active_master_partitioned_from_the_database_steps_down_and_its_agents_move(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Found in review: master a, cut from the database by a partition (bytes dropped, no
    connection closed), kept serving its agents after b took over at the lease's expiry, so the
    workers stayed on a master that could store nothing. Now a steps down when its lease runs
    out by its own clock: it closes its agents' connections and they move to b."""
    url = postgres_server.create_database(f"standby_partition_{next(_names)}")
    parts = urlsplit(url)
    assert parts.port is not None
    proxy = PartitionProxy(parts.port)
    via_proxy = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    a, b = start_pair(tmp_path, via_proxy, url)
    programs: list[Program] = [a, b]
    try:
        worker = start_worker(tmp_path, "w1", addresses(a, b))
        programs.append(worker)
        wait_for(lambda: online_on(a.port, ["w1"]), timeout=30, what="w1 on a")
        cut_at = time.monotonic()
        proxy.cut()
        wait_for(
            lambda: "stepping down: no renewal of the lease answered" in a.log(),
            timeout=TAKEOVER_LIMIT_S,
            what="a stepping down",
        )
        stepped_down_s = time.monotonic() - cut_at
        b.wait_line("listening on", timeout=TAKEOVER_LIMIT_S)
        assert time.monotonic() - cut_at < TAKEOVER_LIMIT_S
        assert stepped_down_s <= 10.5  # lease_s (10 s) from its last renewal, at most
        wait_for(lambda: online_on(b.port, ["w1"]), timeout=30, what="w1 on b")
        assert refuses_connections(a.port)
        assert master_view(b.port)["generation"] == 2
        proxy.reset()  # the partition ends, its stuck connections broken: a stands by
        a.wait_line("standing by", timeout=60)
        assert "Traceback" not in a.log() and "Traceback" not in b.log()
    finally:
        proxy.close()
        for program in programs:
            program.kill()


# -- the PostgreSQL save path (issue 16, "Scale on one master") --------------------------------
def test_client_rows_leave_room_for_hot_updates(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A save rewrites every dirty client row; with half of each page free PostgreSQL keeps
    the new versions on their page (HOT) and skips the index writes (bench/clients_io.py)."""
    url = postgres_server.create_database(f"standby_hot_{next(_names)}")
    store = Store(url, tmp_path)
    store.open()
    try:
        records = [
            ClientRecord(n, f"w{n}", "worker", "h", True, [], 1, 1.0, 1.0, {"pid": n})
            for n in range(1, 2001)
        ]
        store.save_clients(records)
        for record in records:
            record.last_seen = 2.0
        store.save_clients(records)
    finally:
        store.close()
    (options,) = rows(url, "SELECT reloptions FROM pg_class WHERE relname = 'client'")[0]
    assert options == ["fillfactor=50"]

    def updates() -> tuple[Any, ...] | None:  # the session's statistics arrive when it ends
        ((updated, hot),) = rows(
            url,
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'client'",
        )
        return (updated, hot) if updated >= 2000 else None

    updated, hot = wait_for(updates, timeout=10, what="the table's statistics")
    assert hot >= 0.9 * updated, (updated, hot)

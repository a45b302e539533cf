"""Issue 9, Audit: every state-changing call through JSON-RPC, the console or the dashboard is
recorded (time, who, peer, method, params with secrets redacted) in the database, with
retention; read-only calls are not. The set of audited methods is the method table's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.master.api import METHODS
from tests.support import ConsoleClient, MasterProcess, RpcClient, RpcFailure

from .conftest import UNAUTHORIZED, admin_key

pytestmark = pytest.mark.timeout(60)


def entries(admin: RpcClient, **params: object) -> list[dict]:
    return admin.call("audit.list", **params)["entries"]


def test_writes_are_recorded_with_who_peer_and_redacted_params(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    admin.call("users.create", username="alice", password="correct horse battery")
    admin.call("tokens.assign", reader="core.rfid", token="deadbeef01", username="alice")
    job = admin.call(
        "jobs.submit",
        name="render",
        argv=["blender", "--key", "fhk_abc_def"],
        env={"GITHUB_TOKEN": "ghp_x", "AWS_SECRET_ACCESS_KEY": "aws_y", "SCENE": "a.blend"},
    )
    admin.call("jobs.pause", job_id=job["job_id"])
    admin.call("jobs.list")  # a read: not recorded
    admin.call("status")
    newest = entries(admin)
    assert [e["method"] for e in newest] == [
        "jobs.pause",
        "jobs.submit",
        "tokens.assign",
        "users.create",
    ]
    bootstrap = next(k for k in admin.call("keys.list")["keys"] if k["role"] == "api")
    for entry in newest:
        assert entry["who"] == f"key {bootstrap['key_id']} (bootstrap admin)"
        assert entry["key_id"] == bootstrap["key_id"]
        assert re.fullmatch(r"127\.0\.0\.1:\d+", entry["peer"])
        assert entry["via"] == "rpc"
        assert entry["error"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    submit = newest[1]["params"]
    assert submit["env"] == {
        "GITHUB_TOKEN": "[redacted]",
        "AWS_SECRET_ACCESS_KEY": "[redacted]",
        "SCENE": "a.blend",
    }
    assert submit["argv"] == ["blender", "--key", "[redacted]"]
    assert newest[2]["params"] == {
        "reader": "core.rfid",
        "token": "[redacted]",
        "username": "alice",
    }
    assert newest[3]["params"]["password"] == "[redacted]"
    dump = str(newest)
    for secret in ("correct horse", "deadbeef01", "ghp_x", "aws_y", "fhk_abc_def"):
        assert secret not in dump
    # The database holds no password either (the entries were flushed by audit.list); the
    # job's env is stored with the job, which needs it to run.
    raw = b"".join(p.read_bytes() for p in guarded.data_dir.glob("farmhand.db*"))
    assert b"correct horse" not in raw


def test_every_write_in_the_method_table_is_recorded_and_no_read(admin: RpcClient) -> None:
    """Generated from METHODS: a new state-changing method is covered the day it is added."""
    writes = sorted(name for name, entry in METHODS.items() if entry.writes)
    reads = sorted(
        name for name, entry in METHODS.items() if not entry.writes and name != "audit.list"
    )
    assert "jobs.submit" in writes and "keys.create" in writes
    for name in reads + writes:
        admin.request(name)  # without params: most refuse, and that is recorded too
    recorded = [entry["method"] for entry in entries(admin, limit=1000)]
    assert sorted(recorded) == writes
    for entry in entries(admin, limit=1000):
        assert entry["error"] is None or entry["error"]["code"] != -32603, entry


def test_refused_writes_of_authorised_callers_are_recorded_unauthenticated_ones_not(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    reader_key = admin.call("keys.create", role="api", name="intern", scope="read")
    with RpcClient(guarded.port) as reader:
        reader.call("hello", role="api", name="", proto=1, key=reader_key["key"])
        with pytest.raises(RpcFailure):
            reader.call("clients.disable", select="all")
    with RpcClient(guarded.port) as stranger:
        for _ in range(50):
            stranger.request("clients.disable", select="all")
    [entry] = [e for e in entries(admin) if e["method"] == "clients.disable"]
    assert entry["who"] == f"key {reader_key['key_id']} (intern)"
    assert entry["error"]["code"] == UNAUTHORIZED


def test_the_console_is_audited_as_loopback(master: MasterProcess) -> None:
    with ConsoleClient(master.port) as console:
        assert console.command("submit c1 -- true").startswith("submitted")
        console.command("jobs")
        table = console.command("audit")
    assert "jobs.submit" in table and "loopback" in table and "1 entry" in table
    with RpcClient(master.port) as rpc:
        [entry] = entries(rpc)
    assert (entry["who"], entry["via"], entry["key_id"]) == ("loopback", "console", None)
    assert entry["params"]["argv"] == ["true"]


def test_an_admin_connection_says_which_user_acts(guarded: MasterProcess, admin: RpcClient) -> None:
    admin.send_raw(
        b'{"jsonrpc":"2.0","id":"u1","method":"clients.disable","params":{"select":"all"},'
        b'"on_behalf_of":"alice"}\n'
    )
    assert "result" in admin.read_reply()
    [entry] = entries(admin)
    assert entry["user"] == "alice"
    assert entry["who"].startswith("user alice via key ")
    worker_key = admin.call("keys.create", role="worker", name="w1")["key"]
    with RpcClient(guarded.port) as worker:
        worker.call("hello", role="worker", name="w1", proto=1, key=worker_key)
        worker.send_raw(b'{"jsonrpc":"2.0","id":2,"method":"ping","on_behalf_of":"alice"}\n')
        assert worker.read_reply()["error"]["code"] == UNAUTHORIZED
        worker.send_raw(b'{"jsonrpc":"2.0","id":3,"method":"ping","on_behalf_of":7}\n')
        assert worker.read_reply()["error"]["code"] == -32600


def test_entries_survive_a_restart_and_since_filters(tmp_path: Path) -> None:
    first = MasterProcess(tmp_path / "var")
    with RpcClient(first.port) as rpc:
        rpc.call("clients.disable", select="nobody")
    first.stop()
    second = MasterProcess(tmp_path / "var")
    try:
        with RpcClient(second.port) as rpc:
            [old] = entries(rpc)
            assert old["method"] == "clients.disable"
            assert entries(rpc, since="2999-01-01T00:00:00Z") == []
            assert entries(rpc, since=old["time"]) == [old]
            with pytest.raises(RpcFailure) as bad:
                rpc.call("audit.list", since="yesterday")
            assert bad.value.code == -32602
    finally:
        second.stop()


def test_a_read_key_and_agents_cannot_read_the_audit(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    key = admin.call("keys.create", role="api", scope="read")["key"]
    with RpcClient(guarded.port) as reader:
        reader.call("hello", role="api", name="", proto=1, key=key)
        with pytest.raises(RpcFailure) as failure:
            reader.call("audit.list")
        assert failure.value.code == UNAUTHORIZED


# -- retention, in-process against real SQLite and PostgreSQL stores ------------------------


@pytest.fixture
def audit_store(database_url: str, tmp_path: Path) -> Iterator[object]:
    """The audit table on SQLite and on PostgreSQL."""
    from models.auditstore import AuditStore
    from models.store import Store

    store = Store(database_url, tmp_path)
    store.open()
    yield AuditStore(store)
    store.close()


def test_retention_prunes_old_entries(audit_store: object) -> None:
    from farmhand.master.audit import AuditLog
    from farmhand.master.session import Session

    now = [1_700_000_000.0]
    log = AuditLog(audit_store, retention_days=30, wall=lambda: now[0])  # type: ignore[arg-type]
    session = Session("127.0.0.1", 5000, "rpc", trusted=True)
    log.record(session, "clients.disable", {"select": "old"}, None, None)
    now[0] += 31 * 86400
    log.record(session, "clients.disable", {"select": "new"}, None, None)
    assert log.flush() == 2
    assert log.prune(now[0]) == 1
    assert [e["params"]["select"] for e in log.entries(10, None)] == ["new"]
    forever = AuditLog(audit_store, retention_days=0, wall=lambda: now[0] * 10)  # type: ignore[arg-type]
    assert forever.prune(now[0] * 10) == 0


def test_admin_key_file_is_not_in_the_audit(guarded: MasterProcess, admin: RpcClient) -> None:
    admin.call("keys.create", role="worker", name="w5")
    assert admin_key(guarded) not in str(entries(admin))


# -- the dashboard: writes are attributed to the logged-in user; the audit page is for admins --


@pytest.fixture
def dashboard(master: MasterProcess) -> Iterator[object]:
    from dashboard.runtime import Dashboard, Settings
    from farmhand.options import MasterAddress

    with RpcClient(master.port) as rpc:
        rpc.call("users.create", username="carol", password="carol-password-1", admin=True)
        rpc.call("users.create", username="vic", password="vic-password-1")
    dash = Dashboard(Settings(master=MasterAddress(master.host, master.port)))
    dash.start()
    assert dash.master.wait_connected(10)
    yield dash
    dash.stop()


def dashboard_login(dash: object, username: str, password: str) -> tuple[object, str]:
    from dashboard.app import create_app
    from dashboard.testclient import WsgiClient

    client = WsgiClient(create_app(dash))  # type: ignore[arg-type]
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    reply = client.post("/login", form={"username": username, "password": password, "csrf": token})
    assert reply.status == 303, reply.text
    return client, client.get("/api/session").json()["csrf"]


def test_dashboard_writes_are_attributed_to_the_user(
    master: MasterProcess, dashboard: object
) -> None:
    client, csrf = dashboard_login(dashboard, "carol", "carol-password-1")
    headers = {"X-CSRF-Token": csrf}
    reply = client.post("/api/clients.disable", json_body={"select": "x"}, headers=headers)  # type: ignore[attr-defined]
    assert reply.status == 200, reply.text
    job = client.post(  # type: ignore[attr-defined]
        "/api/jobs.submit", json_body={"name": "d", "argv": ["true"]}, headers=headers
    ).json()
    bulk = client.post(  # type: ignore[attr-defined]
        "/api/jobs.bulk", json_body={"action": "pause", "job_ids": [job["job_id"]]}, headers=headers
    )
    assert bulk.status == 200
    with RpcClient(master.port) as rpc:
        newest = entries(rpc, limit=3)
    assert [e["method"] for e in newest] == ["jobs.pause", "jobs.submit", "clients.disable"]
    for entry in newest:
        assert entry["user"] == "carol"
        assert entry["who"] == "user carol via loopback"
    page = client.get("/audit")  # type: ignore[attr-defined]
    assert page.status == 200 and "jobs.pause" in page.text and "carol" in page.text
    assert client.get("/api/audit.list?limit=5").json()["entries"][0]["method"] == "jobs.pause"  # type: ignore[attr-defined]
    viewer, _ = dashboard_login(dashboard, "vic", "vic-password-1")
    assert viewer.get("/audit").status == 403  # type: ignore[attr-defined]
    assert viewer.get("/api/audit.list").status == 403  # type: ignore[attr-defined]
